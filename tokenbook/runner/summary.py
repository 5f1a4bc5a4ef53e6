"""The summary printed at the end of a run, read back from the marts (so it shows what
landed): spend last month by feature, cost per outcome, cache, next month's forecast with its
interval, anomalies, report and export paths."""

from __future__ import annotations

import math
from typing import Any

import duckdb
from rich.rule import Rule
from rich.table import Table

from core.warehouse import Warehouse
from tokenbook.runner.console import console
from tokenbook.runner.plan import RunResult


def _rows(con, sql: str) -> list[tuple]:
    """The query's rows; a query that fails (a mart not built, a column renamed) is printed
    with its error and gives no rows, so a summary line never goes missing silently."""
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as exc:
        first = " ".join(sql.split())[:80]
        console.print(f"  [yellow]summary query failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0]}): {first}...[/yellow]")
        return []


def _money(v: Any) -> str:
    return "-" if v is None else f"${float(v):,.2f}"


def print_summary(wh: Warehouse, result: RunResult) -> None:
    """Spend last month by feature, cost per outcome, cache hit rate, next month's forecast with
    its interval, anomalies, report path. Read back from the marts, so it shows what landed."""
    # a rule as wide as a table, not as the 1000 columns a piped run lays out lines in
    console.print(Rule("[bold]summary"), width=min(console.width, 100))
    if wh.is_bigquery:
        console.print(f"marts are in BigQuery datasets {wh.schema('marts')}; steps: "
                      + ", ".join(f"{k} {v:.0f}s" for k, v in result.steps.items()))
        return

    con = wh.connect()
    try:
        _summary_tables(con, result)
    finally:
        con.close()
    if "total" in result.steps:
        console.print(f"total time {result.steps['total']:.0f} s ("
                      + ", ".join(f"{k} {v:.0f}s" for k, v in result.steps.items()
                                  if k != "total") + ")")


def _summary_tables(con, result: RunResult) -> None:
    last_month = _rows(con, """
        select max(period_start) from marts.mart_cost_per_outcome
        where period = 'month' and period_start < (
            select date_trunc('month', max(call_date)) from marts.fct_llm_calls)""")
    month = last_month[0][0] if last_month and last_month[0][0] else None
    if month:
        rows = _rows(con, f"""
            select feature, effective_cost_usd, outcomes, cost_per_outcome_usd, budget_status
            from marts.mart_cost_per_outcome
            where period = 'month' and period_start = date '{month}'
            order by effective_cost_usd desc nulls last""")
        t = Table(title=f"Spend in {month:%B %Y} by feature")
        budget = "per-outcome budget"  # not the monthly budget (mart_budget_vs_actual)
        for col in ("feature", "spend", "outcomes", "cost / outcome", budget):
            t.add_column(col, justify="right" if col not in ("feature", budget) else "left")
        total = 0.0
        for feature, spend, outcomes, cpo, status in rows:
            total += float(spend or 0)
            t.add_row(feature, _money(spend), f"{int(outcomes or 0):,}", _unit_money(cpo),
                      status or "")
        t.add_row("[bold]total", f"[bold]{_money(total)}", "", "", "")
        console.print(t)
    cache = _rows(con, """
        select sum(could_hit_calls_with_cache_read)::double / nullif(sum(could_hit_calls), 0),
               sum(cache_read_input_tokens)::double / nullif(sum(input_tokens), 0),
               sum(cache_savings_usd), sum(missed_cache_savings_usd)
        from marts.mart_cache_efficiency
        where week_start >= (select max(week_start) - interval 27 day
                             from marts.mart_cache_efficiency)""")
    if cache and cache[0][0] is not None:
        hit, share, saved, missed = cache[0]
        console.print(f"Cache, last 4 weeks: hit rate {hit:.1%}, {share:.1%} of input tokens "
                      f"from cache, saved {_money(saved)}, still to save {_money(missed)}")
    fc = _rows(con, """
        select month, p10, p50, p90, interval_level, method, backtest_status, backtest_origins,
               backtest_coverage, backtest_mdape, run_rate_mdape from marts.forecast_monthly
        where series_level = 'total' and metric = 'spend' and month_kind = 'future'
          and as_of = (select max(as_of) from marts.forecast_monthly)
        order by month limit 1""")
    if fc:
        m, p10, p50, p90, level, method, status, n, cov, err, rr = fc[0]
        console.print(f"Forecast {m:%B %Y}: {_money(p50)} (p10 {_money(p10)} - p90 {_money(p90)}, "
                      f"{float(level or 0.8):.0%} interval)")
        if status == "backtested":
            console.print(f"  {method}; backtest: {cov:.0%} of {int(n)} months inside the band, "
                          f"median error {err:.1%} vs run-rate {rr:.1%}")
        else:
            console.print(f"  {method}; history too short to backtest a month ahead: the band is "
                          "a rule-of-thumb width, not measured")
    anomalies = _rows(con, """
        select ds, series_level, coalesce(feature, provider, 'total'), actual, lower, upper,
               interval_level, why
        from marts.anomaly_flags
        where is_anomaly and as_of = (select max(as_of) from marts.anomaly_flags)
        order by severity desc limit 5""")
    if anomalies:
        console.print(f"Anomalies ({len(anomalies)} shown, worst first):")
        for ds, level, who, actual, lower, upper, pct, why in anomalies:
            console.print(f"  {ds} {level} {who}: {_money(actual)} outside its "
                          f"{float(pct):.0%} interval [{_money(lower)}, {_money(upper)}]"
                          + (f" - {why}" if why else ""))
    report = result.facts.get("report")
    if report:
        console.print(f"Report: {report}", soft_wrap=True)
    for path in result.facts.get("outputs", []):
        console.print(f"Export: {path}", soft_wrap=True)


def _unit_money(v: Any) -> str:
    """A unit cost (per outcome) with the precision it needs: cents above a dollar, three
    significant digits below ($0.00420), so a cheap outcome never shows as $0.00."""
    if v is None:
        return "-"
    x = float(v)
    if x == 0 or abs(x) >= 1:
        return f"${x:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(abs(x))))
    return f"${x:.{digits}f}"
