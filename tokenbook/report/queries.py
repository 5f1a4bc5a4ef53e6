"""Every query the report shows, in one place.

A :class:`Query` is SQL over the marts with ``{table}`` placeholders (``{fct_llm_calls}``,
``{mart_chargeback}``, ...) and date placeholders (``{month}``, ``{prev_month}``, ...) that
:func:`render_sql` fills from a :class:`Period`. The SQL is plain enough to run on DuckDB and
BigQuery alike: date literals, ``sum``/``nullif`` ratios (``/`` gives a float on both), no casts.

The report renders each result as a table or a chart, and stamps every figure with the query,
row and column it came from, so a test can re-run the SQL and compare (tests/test_report.py).

Sections built on marts other parts are still adding (reconciliation, savings levers) are
*optional*: their queries are made from the columns the table actually has (see
:func:`reconciliation_queries` and :data:`LEVERS`); to add a lever, append a :class:`Lever`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

# How many ISO weeks of trend the feature section shows, ending with the report month.
TREND_WEEKS = 8
# Days of actual daily spend drawn before the forecast in the fan chart.
FAN_HISTORY_DAYS = 90
TOP_ANOMALIES = 12
TOP_LEVER_ROWS = 5


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """The dates every query is written against (all derived from the data, never the clock)."""

    month: date  # first day of the report month
    data_end: date  # latest call date in the ledger
    forecast_as_of: date | None  # latest forecast run, if any
    anomaly_as_of: date | None

    @property
    def prev_month(self) -> date:
        return (self.month - timedelta(days=1)).replace(day=1)

    @property
    def next_month(self) -> date:
        return (self.month + timedelta(days=32)).replace(day=1)

    @property
    def month_end(self) -> date:
        return self.next_month - timedelta(days=1)

    @property
    def trend_from(self) -> date:
        """Monday of the first of the TREND_WEEKS weeks ending with the month's last week."""
        last_monday = self.month_end - timedelta(days=self.month_end.weekday())
        return last_monday - timedelta(weeks=TREND_WEEKS - 1)

    @property
    def last_week(self) -> date:
        return self.month_end - timedelta(days=self.month_end.weekday())

    @property
    def fan_to(self) -> date:
        """Last day of the month after the data's last month: the fan chart's horizon."""
        first = (self.data_end.replace(day=1) + timedelta(days=32)).replace(day=1)
        return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)

    @property
    def fan_from(self) -> date:
        return self.data_end - timedelta(days=FAN_HISTORY_DAYS - 1)

    def literals(self) -> dict[str, str]:
        def lit(d: date | None) -> str:
            return "null" if d is None else f"date '{d.isoformat()}'"

        return {
            "month": lit(self.month),
            "prev_month": lit(self.prev_month),
            "next_month": lit(self.next_month),
            "month_end": lit(self.month_end),
            "trend_from": lit(self.trend_from),
            "last_week": lit(self.last_week),
            "data_end": lit(self.data_end),
            "fan_from": lit(self.fan_from),
            "fan_to": lit(self.fan_to),
            "forecast_as_of": lit(self.forecast_as_of),
            "anomaly_as_of": lit(self.anomaly_as_of),
        }


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_sql(query: Query, period: Period, table_name) -> str:
    """Fill the placeholders: dates from ``period``; any other name is a marts table,
    qualified by ``table_name(name)`` (e.g. ``Warehouse.table('marts', name)`` partially)."""
    dates = period.literals()

    def fill(m: re.Match) -> str:
        key = m.group(1)
        return dates[key] if key in dates else table_name(key)

    return _PLACEHOLDER.sub(fill, query.sql)


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


# ---------------------------------------------------------------- optional marts, by their columns


def _first(columns: set[str], *candidates: str) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _month_filter(columns: set[str]) -> str | None:
    """A predicate selecting the report month's rows of a table with some month/period column."""
    grain = _first(columns, "grain", "period", "period_grain")
    day = _first(columns, "month_start", "period_start", "month", "charge_period_start",
                 "usage_month", "usage_date", "call_date", "day", "date")
    if day is None:
        return None
    if grain:
        return f"{grain} = 'month' and {day} = {{month}}"
    if day in ("month_start", "month", "usage_month"):
        return f"{day} = {{month}}"
    return f"{day} between {{month}} and {{month_end}}"


@dataclass(frozen=True)
class ReconColumns:
    provider: str
    gateway: str
    invoice: str
    variance: str | None
    gap: str | None
    detail: str | None
    flagged: str | None
    model: str | None


def reconciliation_columns(columns: set[str]) -> ReconColumns | None:
    provider = _first(columns, "provider")
    # mart_reconciliation compares the invoice's billed cost with the ledger's list cost
    gateway = _first(columns, "gateway_list_cost_usd", "gateway_cost_usd", "ledger_cost_usd",
                     "gateway_effective_cost_usd")
    invoice = _first(columns, "invoice_billed_cost_usd", "invoice_cost_usd", "billed_cost_usd",
                     "vendor_cost_usd")
    if not (provider and gateway and invoice):
        return None
    return ReconColumns(
        provider=provider,
        gateway=gateway,
        invoice=invoice,
        variance=_first(columns, "cost_variance_usd", "variance_usd"),
        gap=_first(columns, "gap_class", "gap_classification", "classification"),
        detail=_first(columns, "gap_detail", "gap_reason"),
        flagged=_first(columns, "is_flagged", "flagged", "is_over_threshold"),
        model=_first(columns, "model", "catalog_model"),
    )


def reconciliation_queries(columns: set[str]) -> tuple[Query, Query] | None:
    """Gateway vs invoice for the month: per provider x model (largest variance first) and the
    month's total; ``None`` when the mart lacks a provider, both costs or a month column."""
    rc = reconciliation_columns(columns)
    where = _month_filter(columns)
    if rc is None or where is None:
        return None
    keys = [rc.provider] + ([rc.model] if rc.model else [])
    variance = f"sum({rc.variance})" if rc.variance else f"sum({rc.invoice}) - sum({rc.gateway})"
    sums = (f"sum({rc.gateway}) as gateway_cost_usd,\n"
            f"           sum({rc.invoice}) as invoice_cost_usd,\n"
            f"           {variance} as variance_usd,\n"
            f"           ({variance}) / nullif(sum({rc.gateway}), 0) as variance_pct")
    extra = []
    if rc.gap:
        extra.append(f"max({rc.gap}) as gap_class")
    if rc.detail:
        extra.append(f"max({rc.detail}) as gap_detail")
    if rc.flagged:
        extra.append(f"max(case when {rc.flagged} then 1 else 0 end) as flagged")
    extra_sql = "".join(f",\n           {e}" for e in extra)
    rows = f"""
    select {', '.join(f'{k} as {k}' for k in keys)},
           {sums}{extra_sql}
    from {{mart_reconciliation}}
    where {where}
    group by {', '.join(keys)}
    order by abs({variance}) desc, {', '.join(keys)}
    """
    flagged = (f",\n           sum(case when {rc.flagged} then 1 else 0 end) as flagged_lines"
               if rc.flagged else "")
    total = f"""
    select {sums}{flagged}
    from {{mart_reconciliation}}
    where {where}
    """
    return (Query("reconciliation", rows, ("mart_reconciliation",)),
            Query("reconciliation_total", total, ("mart_reconciliation",)))


CHARGEBACK_RECONCILED = Query(
    "chargeback_reconciled",
    """
    select cost_centre, team,
           sum(gateway_effective_cost_usd) as gateway_effective_cost_usd,
           sum(reconciled_cost_usd) as reconciled_cost_usd,
           sum(reconciled_cost_usd) - sum(gateway_effective_cost_usd) as difference_usd
    from {mart_chargeback_reconciled}
    where month_start = {month}
    group by cost_centre, team
    order by reconciled_cost_usd desc, cost_centre, team
    """,
    ("mart_chargeback_reconciled",),
)
CHARGEBACK_RECONCILED_COLUMNS = {"month_start", "cost_centre", "team",
                                 "gateway_effective_cost_usd", "reconciled_cost_usd"}


@dataclass(frozen=True)
class Lever:
    """A savings lever: a mart with a dollar column, and the columns that say what to do.

    ``rate``: the dollar column is already a monthly rate on every (weekly) row, so the report
    takes the month's last week instead of summing the weeks. ``flagged_only``: keep the rows
    the mart flags (``is_flagged``) when it has that column."""

    table: str
    title: str
    what: str
    dollars: tuple[str, ...]  # candidate dollar columns, first present wins
    dollars_label: str = "Dollars"
    labels: tuple[str, ...] = ("feature", "prompt_template_id", "provider", "model")
    rate: bool = False
    flagged_only: bool = False


LEVERS: tuple[Lever, ...] = (
    Lever("mart_routing_opportunities", "Route to a cheaper model that passes the bar",
          "Per feature and request class: the cheapest model that passed the feature's quality "
          "bar, and what moving to it saves a month at current volume (latest routing window).",
          ("monthly_saving_usd", "monthly_savings_usd", "savings_usd", "saving_usd"),
          "Saving a month",
          labels=("feature", "request_class", "current_top_model", "cheapest_passing_model")),
    Lever("mart_prompt_drift", "Trim prompts that grew",
          "Flagged prompt templates whose input tokens per call grew against the baseline: "
          "the monthly dollars the growth adds (the month's last week).",
          ("monthly_added_cost_usd", "monthly_growth_cost_usd", "added_cost_usd"),
          "Added a month", labels=("feature", "prompt_template_id"), rate=True,
          flagged_only=True),
    Lever("mart_retry_waste", "Cut retry waste",
          "Spend on attempts after the first (retries and fallbacks) in the weeks of the month.",
          ("retry_cost_usd", "retry_waste_usd", "waste_usd", "wasted_cost_usd"),
          "Retry spend", labels=("feature", "provider", "model")),
    Lever("mart_commit_readiness", "Commit to a provider discount",
          "Per provider and dominant model: the saving a month of the offered commitment "
          "discount at the recommended level, and whether the usage is ready for it.",
          ("saving_per_month_usd", "monthly_saving_usd", "savings_usd"), "Saving a month",
          labels=("provider", "dominant_model", "readiness")),
    Lever("mart_finetune_breakeven", "Fine-tune a smaller model",
          "Fine-tuning candidates: the net saving a month at the current volume after the "
          "fixed costs, and the verdict (never 'go' without a passing eval).",
          ("net_saving_per_month_current_usd", "monthly_saving_usd", "savings_usd"),
          "Saving a month", labels=("feature", "ft_model", "verdict")),
    Lever("mart_cache_efficiency", "Turn on prompt caching where it would hit",
          "Calls that could have read a cached prefix but did not (ISO weeks starting in the "
          "month), at the price difference of each call.",
          ("missed_cache_savings_usd",), "Could save", labels=("feature", "provider", "model")),
)


def lever_query(lever: Lever, columns: set[str]) -> Query | None:
    """Top rows of a lever's mart by its dollar column: the report month's rows where the table
    has a month or week column, else its latest snapshot (``as_of_date``), else all rows."""
    dollars = _first(columns, *lever.dollars)
    if dollars is None:
        return None
    table = "{" + lever.table + "}"
    labels = [c for c in lever.labels if c in columns][:4]
    where = _month_filter(columns)
    week = _first(columns, "week_start", "call_week")
    snapshot = _first(columns, "as_of_date", "as_of")
    if where is None and week and lever.rate:
        where = (f"{week} = (select max({week}) from {table} "
                 f"where {week} between {{month}} and {{month_end}})")
    elif where is None and week:
        where = f"{week} between {{month}} and {{month_end}}"
    elif where is None and snapshot:
        where = f"{snapshot} = (select max({snapshot}) from {table})"
    if lever.flagged_only and "is_flagged" in columns:
        where = f"({where or '1 = 1'}) and is_flagged"
    label_sql = ", ".join(f"{c} as {c}" for c in labels)
    group = f"group by {', '.join(labels)}" if labels else ""
    sql = f"""
    select {label_sql + ', ' if labels else ''}sum({dollars}) as dollars_usd
    from {table}
    where {where or '1 = 1'}
    {group}
    having sum({dollars}) > 0
    order by dollars_usd desc{', ' + ', '.join(labels) if labels else ''}
    limit {TOP_LEVER_ROWS}
    """
    return Query(f"lever__{lever.table}", sql, (lever.table,))


@dataclass
class Catalogue:
    """The marts tables present, with their columns (lower-case)."""

    tables: dict[str, set[str]] = field(default_factory=dict)

    def has(self, *names: str) -> bool:
        return all(n in self.tables for n in names)
