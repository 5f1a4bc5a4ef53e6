"""`tokenbook forecast`: monthly forecasts, backtests and anomaly flags (owner: forecasting)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from core.query import run_query, table_exists
from core.warehouse import WarehouseError
from forecasting.config import ForecastConfig
from tokenbook.commands.common import ConfigDirOpt, WarehouseOpt, fail, resolve

_NO_MARTS = ("the marts have no fct_llm_calls table in {where}: nothing to forecast yet; run "
             "`tokenbook transform` (dbt build) after `tokenbook ingest gateway`")


def _as_of(value: str) -> date:
    """--as-of as a date, or a usage error (exit 2) like any bad date."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"bad --as-of {value!r}: write YYYY-MM-DD") from exc


def _latest_call_date(wh) -> date:
    """Default --as-of: the last day with calls in fct_llm_calls (data decides, not the clock)."""
    sql = f"select max(call_date) as d from {wh.table('marts', 'fct_llm_calls')}"
    if wh.is_bigquery:
        con = None
        if not table_exists(con, wh, "marts", "fct_llm_calls"):
            raise ValueError(_NO_MARTS.format(where=wh.location))
        value = run_query(wh, sql)["d"].iloc[0]
    else:
        con = wh.connect(read_only=True)
        try:
            if not table_exists(con, wh, "marts", "fct_llm_calls"):
                raise ValueError(_NO_MARTS.format(where=wh.location))
            value = run_query(con, sql)["d"].iloc[0]
        finally:
            con.close()
    if value is None or value != value:
        raise ValueError("fct_llm_calls is empty: run `tokenbook run` or `tokenbook transform`")
    return value if isinstance(value, date) and not isinstance(value, datetime) else value.date()


def _money(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


FORECAST_TABLES = ("forecast_daily", "forecast_monthly", "forecast_backtest", "anomaly_flags")
def _pct(x) -> str:
    return "—" if x is None or x != x else f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def _honesty(r) -> tuple[str, str, str]:
    """Backtested coverage, median abs % error and the run-rate's, or why there are none."""
    status = getattr(r, "backtest_status", None)
    if status == "backtested" and r.backtest_coverage == r.backtest_coverage:
        return (f"{_pct(r.backtest_coverage)} of {int(r.backtest_origins)}",
                _pct(r.backtest_mdape), _pct(r.run_rate_mdape))
    if status == "backtested":
        return ("not this far ahead", "—", "—")
    if status == "too_short":
        return ("too short to backtest", "—", "—")
    return ("not backtested", "—", "—")


def monthly_backtest_lines(backtest, level: float) -> list[str]:
    """One line per spend level: next month's backtest (coverage, error vs the run-rate,
    methods chosen), from the pooled ``phase = 'monthly'`` rows."""
    if "phase" not in backtest or "horizon_months" not in backtest:
        return ["Monthly backtest: no series long enough (needs about 2 months of history)."]
    rows = backtest[(backtest["phase"] == "monthly") & (backtest["series_level"] == "pooled")
                    & (backtest["horizon_months"] == 1) & (backtest["metric"] == "spend")]
    if rows.empty:
        return ["Monthly backtest: too short (no series has 3 month-ahead origins yet); "
                "the bands are rule-of-thumb widths, not measured."]
    out = [f"Monthly backtest, next month's spend ({level:.0%} interval, held = share of "
           "actual months inside it):"]
    for r in rows.itertuples():
        out.append(
            f"  {r.pooled_level:<16} held {_pct(r.monthly_coverage)} of {int(r.n_origins)} "
            f"({r.origin_kind} origins); median error {_pct(r.monthly_mdape)} vs run-rate "
            f"{_pct(r.run_rate_mdape)}; methods: {r.methods_chosen}"
        )
    return out


def forecast(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Run date YYYY-MM-DD (default: last call_date in the ledger)."
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    config_dir: ConfigDirOpt = None,
    horizon_months: Annotated[
        int, typer.Option("--horizon-months", min=1, max=12, help="Months after the current one.")
    ] = 3,
    charts: Annotated[
        Path | None, typer.Option("--charts", help="Write fan charts (PNG) into this folder.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Parallel fit processes.")] = 2,
    samples: Annotated[
        int, typer.Option("--samples", min=100, help="Predictive sample paths per series.")
    ] = 1000,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Extra known events: a CSV like dbt_project/seeds/forecast_events.csv, or a "
            "demo manifest.json (its launch, new feature and model switch).",
        ),
    ] = None,
    metrics: Annotated[
        str, typer.Option("--metrics", help="Comma list of metrics: spend,tokens,calls.")
    ] = "spend,tokens,calls",
) -> None:
    """Fit Prophet per series, backtest and calibrate the intervals, flag anomalies, and write
    forecast_daily / forecast_monthly / forecast_backtest / anomaly_flags for the run date."""
    # rich and the forecasting job (pandas): imported when the command runs, not at CLI start.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from forecasting.inputs import load_events_with
    from forecasting.job import forecast_warehouse

    settings, wh = resolve(warehouse, config_dir=config_dir)
    folder = settings.resolved_config_dir
    console = Console()
    try:
        run_date = _as_of(as_of) if as_of else _latest_call_date(wh)
    except WarehouseError:
        raise  # no BigQuery credentials, no warehouse: the CLI's handler says what to do
    except ValueError as exc:  # no marts, or an empty ledger
        raise fail(str(exc)) from exc
    try:
        cfg = ForecastConfig(
            horizon_months=horizon_months,
            anomaly_level=settings.anomaly_level,
            workers=workers,
            n_samples=samples,
            metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
            config_dir=str(folder) if folder is not None else None,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:<10}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        try:
            run = forecast_warehouse(wh, run_date, cfg, progress, events=load_events_with(events, config=cfg.config_dir))
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            raise fail(str(exc)) from exc

    s = run.summary()
    table = Table(
        title=f"Total spend forecast as of {run_date} (USD, {cfg.interval_level:.0%} interval)"
    )
    cols = ("month", "kind", "actual to date", "p10", "p50", "p90", "method",
            "backtest: held", "error", "run-rate error")
    for col in cols:
        table.add_column(col, justify="right" if col not in ("month", "kind", "method") else "left")
    total = run.monthly[(run.monthly["unique_id"] == "spend|total")].sort_values("month")
    for r in total.itertuples():
        table.add_row(
            f"{r.month:%Y-%m}",
            r.month_kind,
            f"{r.actual_to_date:,.0f}",
            f"{r.p10:,.0f}",
            f"{r.p50:,.0f}",
            f"{r.p90:,.0f}",
            r.method,
            *_honesty(r),
        )
    console.print(table)
    for line in monthly_backtest_lines(run.backtest, cfg.interval_level):
        console.print(line)
    if s["next_month"]:
        n = s["next_month"]
        console.print(
            f"Next month ({n['month']:%Y-%m}) total spend: p10 ${n['p10']:,.0f} · "
            f"p50 ${n['p50']:,.0f} · p90 ${n['p90']:,.0f}"
        )
    pooled = run.backtest[run.backtest["unique_id"] == "__pooled__|prophet"]
    hold = pooled[pooled["phase"] == "holdout"]
    if len(hold):
        h = hold.iloc[0]
        console.print(
            f"Backtest (held-out cutoffs, {int(h['n_series'])} Prophet series): coverage of the "
            f"{cfg.interval_level:.0%} interval {h['coverage_raw']:.1%} raw -> "
            f"{h['coverage_calibrated']:.1%} calibrated; MASE {h['mase']:.2f}"
        )
    budgets = run.monthly[
        (run.monthly["series_level"] == "feature")
        & (run.monthly["metric"] == "spend")
        & (run.monthly["month_kind"] == "current")
        & run.monthly["budget_status"].isin(["over", "at_risk"])
    ]
    for r in budgets.itertuples():
        console.print(
            f"[yellow]budget[/]: {r.feature} month-end p50 ${r.p50:,.0f} vs budget "
            f"${r.monthly_budget_usd:,.0f} ({r.budget_status}, P(over) {r.prob_over_budget:.0%})"
        )
    flags = run.anomalies[run.anomalies["is_anomaly"]] if len(run.anomalies) else run.anomalies
    console.print(
        f"Anomalies: {len(flags)} flagged of {s['scored_series_days']} scored series-days "
        f"(level {cfg.anomaly_level:.0%})"
    )
    # no scored day (every series too short): an empty frame without the scoring's columns
    top = flags.sort_values("severity", ascending=False).head(10) if len(flags) else flags
    for r in top.itertuples():
        console.print(
            f"  [red]{r.ds:%Y-%m-%d}[/] {r.unique_id}: ${_money(r.actual)} vs "
            f"[{_money(r.lower)}, {_money(r.upper)}] severity {r.severity:.1f} — {r.why}"
        )
    if charts:
        from forecasting.charts import fan_charts
        from forecasting.series import load_daily_series

        if wh.is_bigquery:
            frame = load_daily_series(wh, run_date, ("total", "feature"), ("spend",))
        else:
            con = wh.connect(read_only=True)
            try:
                frame = load_daily_series(con, run_date, ("total", "feature"), ("spend",))
            finally:
                con.close()
        for path in fan_charts(frame, run, charts):
            console.print(f"chart: {path}")
    console.print(
        f"written: {', '.join(wh.table('marts', t) for t in FORECAST_TABLES)} in {wh.location}",
        soft_wrap=True,
    )
