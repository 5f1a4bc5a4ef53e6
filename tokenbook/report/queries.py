"""Every query the report shows, in one place.

A :class:`Query` is SQL over the marts with ``{table}`` placeholders (``{fct_llm_calls}``,
``{mart_chargeback}``, ...) and date placeholders (``{month}``, ``{prev_month}``, ...) that
:func:`render_sql` fills from a :class:`Period` (both in ``sql.py``). The SQL is plain enough to run on DuckDB and
BigQuery alike: date literals, ``sum``/``nullif`` ratios (``/`` gives a float on both), no casts.

The report renders each result as a table or a chart, and stamps every figure with the query,
row and column it came from, so a test can re-run the SQL and compare (tests/test_report.py).

Sections built on marts other parts are still adding (reconciliation, savings levers) are
*optional*: their queries are made from the columns the table actually has
(``optional.py``: :func:`reconciliation_queries` and :data:`LEVERS`); to add a lever, append
a :class:`Lever` there.
"""


from __future__ import annotations

from tokenbook.report.sql import Query

TOP_ANOMALIES = 12

# ----------------------------------------------------------------------------- the core queries

HEADLINE = Query(
    "headline",
    """
    with months as (
        select month_start, sum(effective_cost_usd) as spend_usd
        from {mart_chargeback}
        where month_start in ({month}, {prev_month})
        group by month_start
    ),
    unattributed as (
        select sum(case when feature = '(unattributed)' or customer_segment = '(unattributed)'
                        then effective_cost_usd end) as unattributed_usd,
               sum(effective_cost_usd) as ledger_usd
        from {fct_llm_calls}
        where call_month = {month}
    ),
    cache as (
        select sum(cache_savings_usd) as cache_savings_usd,
               sum(missed_cache_savings_usd) as missed_cache_savings_usd,
               sum(could_hit_calls_with_cache_read) / nullif(sum(could_hit_calls), 0)
                   as cache_hit_rate
        from {mart_cache_efficiency}
        where week_start between {month} and {month_end}
    ),
    budget as (
        select sum(case when budget_level = 'feature' and budget_status = 'over' then 1 else 0
                   end) as features_over_budget,
               sum(case when budget_level = 'feature' and budget_status in ('no budget', 'not configured')
                        then actual_effective_cost_usd end) as no_budget_usd
        from {mart_budget_vs_actual}
        where month_start = {month}
    )
    select
        cur.spend_usd as spend_usd,
        prev.spend_usd as previous_spend_usd,
        cur.spend_usd - prev.spend_usd as spend_change_usd,
        (cur.spend_usd - prev.spend_usd) / nullif(prev.spend_usd, 0) as spend_change_pct,
        unattributed.unattributed_usd as unattributed_usd,
        unattributed.unattributed_usd / nullif(unattributed.ledger_usd, 0) as unattributed_share,
        cache.cache_savings_usd as cache_savings_usd,
        cache.missed_cache_savings_usd as missed_cache_savings_usd,
        cache.cache_hit_rate as cache_hit_rate,
        budget.features_over_budget as features_over_budget,
        budget.no_budget_usd as no_budget_usd
    from unattributed
    cross join cache
    cross join budget
    left join months as cur on cur.month_start = {month}
    left join months as prev on prev.month_start = {prev_month}
    """,
    ("mart_chargeback", "fct_llm_calls", "mart_cache_efficiency", "mart_budget_vs_actual"),
)

FEATURES_MONTH = Query(
    "features_month",
    """
    select feature, effective_cost_usd, effective_cost_change_pct, outcomes,
           cost_per_outcome_usd, cost_per_outcome_change_pct, budget_per_outcome_usd,
           budget_status, net_value_per_outcome_usd
    from {mart_cost_per_outcome}
    where period = 'month' and period_start = {month}
    order by effective_cost_usd desc, feature
    """,
    ("mart_cost_per_outcome",),
)

FEATURES_WEEKLY = Query(
    "features_weekly",
    """
    select feature, period_start as week_start, effective_cost_usd, outcomes,
           cost_per_outcome_usd, effective_cost_change_pct, cost_per_outcome_change_pct
    from {mart_cost_per_outcome}
    where period = 'week' and period_start between {trend_from} and {last_week}
    order by feature, period_start
    """,
    ("mart_cost_per_outcome",),
)

BUDGET = Query(
    "budget",
    """
    select month_start, budget_level, cost_centre, feature, is_month_complete, as_of_date,
           monthly_budget_usd, actual_effective_cost_usd, projected_month_end_usd,
           budget_burned_share, variance_usd, variance_pct, budget_status
    from {mart_budget_vs_actual}
    where month_start in ({month}, {next_month})
      and (budget_level = 'total' or (budget_level = 'feature' and budget_status not in ('no budget', 'not configured')))
    order by month_start, case when budget_level = 'total' then 0 else 1 end,
             variance_usd desc, cost_centre, feature
    """,
    ("mart_budget_vs_actual",),
)

CACHE = Query(
    "cache",
    """
    select feature,
           sum(calls) as calls,
           sum(cache_read_input_tokens) / nullif(sum(input_tokens), 0) as cache_read_share,
           sum(could_hit_calls_with_cache_read) / nullif(sum(could_hit_calls), 0)
               as cache_hit_rate,
           sum(cache_savings_usd) as cache_savings_usd,
           sum(missed_cache_savings_usd) as missed_cache_savings_usd
    from {mart_cache_efficiency}
    where week_start between {month} and {month_end}
    group by feature
    order by missed_cache_savings_usd desc, feature
    """,
    ("mart_cache_efficiency",),
)

CHARGEBACK_TEAM = Query(
    "chargeback_team",
    """
    select cost_centre, cost_centre_name, team,
           sum(calls) as calls,
           sum(effective_cost_usd) as effective_cost_usd,
           sum(share_of_month_effective_cost) as share_of_month
    from {mart_chargeback}
    where month_start = {month}
    group by cost_centre, cost_centre_name, team
    order by effective_cost_usd desc, cost_centre, team
    """,
    ("mart_chargeback",),
)

CHARGEBACK_SEGMENT = Query(
    "chargeback_segment",
    """
    select customer_segment,
           sum(calls) as calls,
           sum(effective_cost_usd) as effective_cost_usd,
           sum(share_of_month_effective_cost) as share_of_month
    from {mart_chargeback}
    where month_start = {month}
    group by customer_segment
    order by effective_cost_usd desc, customer_segment
    """,
    ("mart_chargeback",),
)

ACTUAL_DAILY = Query(
    "actual_daily",
    """
    select call_date as ds, sum(effective_cost_usd) as spend_usd
    from {fct_llm_calls}
    where call_date between {fan_from} and {data_end}
    group by call_date
    order by call_date
    """,
    ("fct_llm_calls",),
)

FORECAST_DAILY = Query(
    "forecast_daily",
    """
    select ds, p10, p50, p90, interval_level
    from {forecast_daily}
    where as_of = {forecast_as_of} and series_level = 'total' and metric = 'spend'
      and ds <= {fan_to}
    order by ds
    """,
    ("forecast_daily",),
)

FORECAST_MONTHLY = Query(
    "forecast_monthly",
    """
    select month, month_kind, actual_to_date, p10, p50, p90, interval_level,
           monthly_budget_usd, prob_over_budget, budget_status, method,
           backtest_status, backtest_origins, backtest_coverage, backtest_mdape, run_rate_mdape
    from {forecast_monthly}
    where as_of = {forecast_as_of} and series_level = 'total' and metric = 'spend'
    order by month
    """,
    ("forecast_monthly",),
)

BACKTEST = Query(
    "backtest",
    """
    select interval_level, coverage_calibrated, coverage_raw, mase, mape, n_points, method
    from {forecast_backtest}
    where as_of = {forecast_as_of} and series_level = 'total' and metric = 'spend'
      and phase in ('calibration', 'holdout')
    order by phase desc, method
    """,
    ("forecast_backtest",),
)

# Next month's backtest per level (pooled rows of the monthly competition, forecasting/monthly.py).
MONTHLY_BACKTEST = Query(
    "monthly_backtest",
    """
    select pooled_level, n_series, n_origins, origin_kind, interval_level, monthly_coverage,
           monthly_mdape, run_rate_mdape, methods_chosen
    from {forecast_backtest}
    where as_of = {forecast_as_of} and phase = 'monthly' and series_level = 'pooled'
      and metric = 'spend' and horizon_months = 1
    order by case pooled_level when 'total' then 0 when 'provider' then 1
                               when 'feature' then 2 else 3 end, pooled_level
    """,
    ("forecast_backtest",),
)

# Known changes (planned events, price-book versions) that moved a published month.
FORECAST_EVENTS = Query(
    "forecast_events",
    """
    select distinct events_applied
    from {forecast_monthly}
    where as_of = {forecast_as_of} and metric = 'spend' and events_applied is not null
    order by events_applied
    """,
    ("forecast_monthly",),
)

ANOMALIES = Query(
    "anomalies",
    f"""
    select ds, series_level,
           case when series_level = 'total' then 'total'
                else concat(series_level, ' ', coalesce(feature, provider, '?')) end as series,
           direction,
           actual, expected, lower, upper, interval_level, severity, known_event, why
    from {{anomaly_flags}}
    where as_of = {{anomaly_as_of}} and is_anomaly and ds >= {{month}}
    order by severity desc, ds desc, series
    limit {TOP_ANOMALIES}
    """,
    ("anomaly_flags",),
)

CORE: tuple[Query, ...] = (
    HEADLINE,
    FEATURES_MONTH,
    FEATURES_WEEKLY,
    BUDGET,
    CACHE,
    CHARGEBACK_TEAM,
    CHARGEBACK_SEGMENT,
    ACTUAL_DAILY,
    FORECAST_DAILY,
    FORECAST_MONTHLY,
    BACKTEST,
    MONTHLY_BACKTEST,
    FORECAST_EVENTS,
    ANOMALIES,
)
