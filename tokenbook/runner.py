"""The main job as one batch: demo data -> ingest -> dbt build -> forecast -> report -> summary.

``tokenbook run`` calls :func:`run_plan`. A one-night run uses the same step functions the
Airflow DAG calls (``tokenbook.orchestration``); a backfill or the demo loads every file first
and then builds the models ONCE, which is what makes a 120-day history take minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenbook.settings import Settings
from tokenbook.warehouse import Warehouse

console = Console(highlight=False)


@dataclass
class RunPlan:
    data_dir: Path
    demo: bool = False
    demo_days: int = 120
    demo_end: date | None = None
    demo_seed: int = 7
    demo_scale: float = 1.0
    date: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    forecast: bool = True
    report_path: Path | None = None


@dataclass
class RunResult:
    as_of: date | None = None
    steps: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def describe_failure(exc: BaseException) -> str:
    """One line for a person: what failed and, where we know it, what to do."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    hints = {
        "DbtError": "see the dbt log above; `tokenbook transform` reruns just this step",
        "QualityGateFailed": "the loaded data does not look like its history; "
        "see raw.validation_results, or rerun `tokenbook check --date D`",
        "ReaderError": "check the file named above exists and is readable",
    }
    hint = hints.get(name)
    return f"{text}" + (f" ({hint})" if hint else "")


@contextmanager
def _step(result: RunResult, name: str, title: str) -> Iterator[None]:
    console.print(f"[bold cyan]>[/] {title}")
    t0 = time.perf_counter()
    yield
    result.steps[name] = time.perf_counter() - t0
    console.print(f"  [green]done[/] in {result.steps[name]:.1f} s")


def _progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _file_date(path: Path) -> date | None:
    stem = path.name.split(".")[0]
    try:
        return date.fromisoformat(stem[-10:])
    except ValueError:
        return None


def gateway_files(data_dir: Path, date_from: date | None, date_to: date | None) -> list[Path]:
    """Daily gateway files (``gateway-YYYY-MM-DD.*``) in ``data_dir/gateway``, in date order."""
    folder = data_dir / "gateway"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no gateway folder at {folder}: pass --data-dir with a gateway/ folder, "
            "or --demo to generate the demo organisation"
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and _file_date(p) is not None)
    if date_from and date_to:
        files = [p for p in files if date_from <= _file_date(p) <= date_to]
    if not files:
        raise FileNotFoundError(f"no gateway-YYYY-MM-DD files in {folder} for that range")
    return files


def _demo(plan: RunPlan, result: RunResult) -> dict:
    from tokenbook.demo import generate_with_billing

    end = plan.demo_end or (date.today() - timedelta(days=1))
    manifest_path = plan.data_dir / "manifest.json"
    wanted = {"seed": plan.demo_seed, "days": plan.demo_days, "end": end.isoformat(),
              "scale": plan.demo_scale}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if all(str(manifest.get(k)) == str(v) for k, v in wanted.items()):
            if not (plan.data_dir / "config").is_dir():  # demo data written before issue 15
                from tokenbook.demo.orgconfig import write_demo_config

                write_demo_config(plan.data_dir / "config")
            console.print(f"  demo data already in {plan.data_dir} (same seed, days, end, scale)")
            return manifest
    with console.status(f"  writing {plan.demo_days} days of demo gateway logs and vendor bills"):
        manifest = generate_with_billing(plan.data_dir, days=plan.demo_days, end=end,
                                         seed=plan.demo_seed, scale=plan.demo_scale)
    calls = manifest.get("counts", {}).get("calls") or manifest.get("calls")
    console.print(f"  {len(manifest.get('files', []))} daily files, {calls} calls, "
                  f"events: {', '.join(sorted(manifest.get('events', {})))}")
    return manifest


def _ingest_gateway(files: list[Path], settings: Settings, result: RunResult) -> None:
    from ingestion.gateway.pipeline import ingest_gateway

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int, what: str) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:8s}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        report = ingest_gateway([str(f) for f in files], settings, progress=progress)
    result.facts["ingest"] = {
        "files": len(files),
        "read": report.rows_read,
        "loaded": report.rows_loaded,
        "quarantined": report.rows_quarantined,
        "duplicates": report.rows_duplicate,
        "load_dates": len(report.load_dates),
        "dates": report.load_dates,
    }
    f = result.facts["ingest"]
    console.print(
        f"  {f['files']} files: read {f['read']:,} = loaded {f['loaded']:,} + quarantined "
        f"{f['quarantined']:,} + duplicates {f['duplicates']:,}"
    )


def _ingest_billing(data_dir: Path, settings: Settings, wh: Warehouse, result: RunResult) -> None:
    folder = data_dir / "billing"
    if not folder.is_dir():
        console.print(f"  no billing exports in {folder}: skipped")
        return
    from ingestion.billing.loader import ingest_billing
    from tokenbook.warehouse import connect_duckdb

    vendors = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if wh.kind != "duckdb":
        raise NotImplementedError("batch billing ingestion on BigQuery: use the nightly DAG")
    con = connect_duckdb(wh)
    loaded = 0
    try:
        for vendor in vendors:
            files = sorted(str(p) for p in (folder / vendor).rglob("*") if p.is_file())
            if not files:
                continue
            for res in ingest_billing(con, vendor, files, window_days_before=10_000,
                                      window_days_after=10_000):
                loaded += int(getattr(res, "rows_loaded", 0) or 0)
    finally:
        con.close()
    result.facts["billing_lines"] = loaded
    console.print(f"  {len(vendors)} vendors, {loaded:,} billing lines loaded")


def _ingest_evals(data_dir: Path, wh: Warehouse, result: RunResult) -> None:
    """Quality evals (feature x model scores) that the routing and switch marts read."""
    folder = data_dir / "evals"
    files = sorted(str(p) for p in folder.glob("*.csv*")) + sorted(
        str(p) for p in folder.glob("*.jsonl*"))
    if not files:
        console.print(f"  no evals in {folder}: skipped")
        return
    if wh.kind != "duckdb":
        raise NotImplementedError("evals on BigQuery: load raw.evals with a BigQuery load job")
    from ingestion.evals import ingest_evals
    from tokenbook.warehouse import connect_duckdb

    con = connect_duckdb(wh)
    try:
        load = ingest_evals(con, files)
    finally:
        con.close()
    result.facts["evals"] = load.rows_loaded
    console.print(f"  {len(files)} eval files, {load.rows_loaded:,} eval results loaded")


def _check(settings: Settings, result: RunResult) -> None:
    """The data-quality suites over the batch's load dates (``tokenbook check``). A backfill
    reports what failed and goes on (history holds the incidents it is loaded to explain);
    the nightly run (``--date``) stops at a failure instead."""
    from ingestion.quality import check_dates
    from tokenbook.commands.check import print_result

    days = result.facts.get("ingest", {}).get("dates") or []
    if not days:
        return
    checked = check_dates(settings, days)
    result.facts["data_quality"] = {
        "dates": len(days), "failed": len(checked.failures()),
        "not_evaluable": len(checked.not_evaluable()),
    }
    print_result(checked)
    if not checked.success:
        console.print("  [yellow]backfill: the failed expectations above are reported, not "
                      "fatal; `tokenbook check --from A --to B` reruns them[/yellow]")


# Models that read the forecast tables carry this tag; they build after the forecast step.
AFTER_FORECAST = "tag:after_forecast"


def _build(settings: Settings, result: RunResult, select: list[str] | None = None,
           label: str = "dbt") -> None:
    from tokenbook.dbt import run_dbt

    with console.status("  dbt build (seeds, models, tests, unit tests)"):
        res = run_dbt(["build", "--quiet", *(select or [])], settings)
    nodes = getattr(res.result, "results", None) or []
    counts: dict[str, int] = {}
    for r in nodes:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    result.facts[label] = counts
    from tokenbook.dbt import stage_lines

    for line in stage_lines(res):
        console.print(f"  {label} {line}", soft_wrap=True)


def _latest_call_date(settings: Settings, wh: Warehouse) -> date:
    """The data decides the run date of a batch: the last day with calls in the ledger."""
    from tokenbook.warehouse import connect_duckdb

    if wh.kind != "duckdb":
        from tokenbook.commands.forecast import _latest_call_date as latest

        return latest(wh)
    # Same configuration as dbt's in-process connection (DuckDB refuses a read-only twin).
    con = connect_duckdb(wh)
    try:
        (value,) = con.execute("select max(call_date) from marts.fct_llm_calls").fetchone()
    finally:
        con.close()
    if value is None:
        raise ValueError("marts.fct_llm_calls is empty after the build: no calls were loaded")
    return value


def _forecast(settings: Settings, wh: Warehouse, as_of: date, result: RunResult,
              known_events: Path | None = None) -> None:
    """Forecasts and anomaly flags. ``known_events``: a CSV (or the demo's manifest) of deliberate
    changes — launches, model switches — that a real team lists in the forecast_events seed;
    runaway and degraded days are never events: the flags must find them."""
    from forecasting.config import ForecastConfig
    from forecasting.inputs import load_events_with
    from forecasting.job import forecast_warehouse

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:10s}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        folder = settings.resolved_config_dir
        config_dir = str(folder) if folder is not None else None
        run = forecast_warehouse(wh, as_of, ForecastConfig(anomaly_level=settings.anomaly_level,
                                                           config_dir=config_dir),
                                 progress=progress,
                                 events=load_events_with(known_events, config=config_dir))
    flagged = 0 if run.anomalies.empty else int(run.anomalies["is_anomaly"].sum())
    result.facts["forecast"] = {"series": int(run.daily["unique_id"].nunique()),
                                "anomalies": flagged}
    console.print(f"  {result.facts['forecast']['series']} series forecast, {flagged} anomaly flags")


def _report(plan: RunPlan, settings: Settings, wh: Warehouse, as_of: date,
            result: RunResult) -> Path | None:
    from tokenbook.report import write_report
    out = plan.report_path or Path("reports") / f"tokenbook-{as_of.isoformat()}.html"
    path = write_report(settings, out)
    result.facts["report"] = str(Path(path).resolve())
    return path


def run_plan(plan: RunPlan, settings: Settings, wh: Warehouse) -> RunResult:
    from dataclasses import replace

    from tokenbook.orgconfig import read_config
    from tokenbook.orgconfig.load import describe

    result = RunResult()
    t0 = time.perf_counter()
    console.print(f"[bold]tokenbook[/] on {wh.location}", soft_wrap=True)
    if plan.demo and not settings.config_dir:
        # The demo is one organisation with its own configuration folder.
        settings = replace(settings, config_dir=str(plan.data_dir / "config"))
    if not plan.demo:
        # Refuse to start on an invalid configuration (ConfigInvalid names file, line, column).
        console.print(describe(read_config(settings.resolved_config_dir)))
    if plan.date is not None:
        return _one_night(plan, settings, wh, result)
    if plan.demo:
        with _step(result, "demo", f"1/6 demo organisation in {plan.data_dir}"):
            _demo(plan, result)
        console.print(describe(read_config(settings.resolved_config_dir)))
    files = gateway_files(plan.data_dir, plan.date_from, plan.date_to)
    with _step(result, "ingest", f"2/6 ingest {len(files)} gateway files (one batch)"):
        _ingest_gateway(files, settings, result)
    with _step(result, "billing", "3/6 ingest vendor billing exports and quality evals"):
        _ingest_billing(plan.data_dir, settings, wh, result)
        _ingest_evals(plan.data_dir, wh, result)
        _check(settings, result)
    with _step(result, "dbt", "4/6 build the models (dbt, once for the whole batch)"):
        _build(settings, result, ["--exclude", AFTER_FORECAST] if plan.forecast else None)
    as_of = plan.date_to or _latest_call_date(settings, wh)
    result.as_of = as_of
    if plan.forecast:
        with _step(result, "forecast", f"5/6 forecasts and anomaly flags as of {as_of}"):
            manifest = plan.data_dir / "manifest.json"
            _forecast(settings, wh, as_of, result,
                      known_events=manifest if plan.demo and manifest.exists() else None)
            _build(settings, result, ["--select", AFTER_FORECAST], label="dbt after forecast")
    with _step(result, "report", "6/6 report"):
        _report(plan, settings, wh, as_of, result)
    result.steps["total"] = time.perf_counter() - t0
    print_summary(settings, wh, result)
    return result


def _one_night(plan: RunPlan, settings: Settings, wh: Warehouse, result: RunResult) -> RunResult:
    """The DAG's steps for one logical date, in order, outside Airflow."""
    from tokenbook import orchestration as o

    assert plan.date is not None
    inputs = o.RunInputs.from_env(gateway_path=str(plan.data_dir / "gateway"),
                                  billing_path=str(plan.data_dir / "billing"))
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("load_config", lambda: o.load_org_config(plan.date, settings)),
        ("ingest_gateway", lambda: o.ingest_gateway_day(plan.date, settings, inputs)),
        ("ingest_billing", lambda: o.ingest_billing_day(plan.date, settings, inputs)),
        ("data_quality", lambda: o.check_data_quality(plan.date, settings)),
        ("quality_gate", lambda: o.check_quality(plan.date, settings)),
        ("dbt_build", lambda: o.build_models(plan.date, settings)),
        ("score_anomalies", lambda: o.score_anomalies(plan.date, settings)),
    ]
    if plan.forecast and o.is_refit_day(plan.date):
        steps.append(("refit_forecast", lambda: o.refit_forecast(plan.date, settings)))
    steps.append(("publish_outputs", lambda: o.publish_outputs(plan.date, settings, inputs)))
    for i, (name, fn) in enumerate(steps, 1):
        with _step(result, name, f"{i}/{len(steps)} {name} for {plan.date}"):
            result.facts[name] = fn()
    written = list((result.facts.get("publish_outputs") or {}).get("written", []))
    report = next((w for w in written if w.endswith(".html")), None)
    if plan.report_path and report:
        # --report names where the HTML report goes (the month's copy stays under the out dir)
        import shutil

        plan.report_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, plan.report_path)
        report = str(plan.report_path)
    if report:
        result.facts["report"] = str(Path(report).resolve())
    result.facts["outputs"] = [str(Path(w).resolve()) for w in written if w.endswith((".csv",
                                                                                 ".parquet"))]
    result.as_of = plan.date
    print_summary(settings, wh, result)
    return result


# ---------------------------------------------------------------------------------- summary


def _rows(con, sql: str) -> list[tuple]:
    """The query's rows; a query that fails (a mart not built, a column renamed) is printed
    with its error and gives no rows, so a summary line never goes missing silently."""
    import duckdb

    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as exc:
        first = " ".join(sql.split())[:80]
        console.print(f"  [yellow]summary query failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0]}): {first}...[/yellow]")
        return []


def _money(v: Any) -> str:
    return "-" if v is None else f"${float(v):,.2f}"


def print_summary(settings: Settings, wh: Warehouse, result: RunResult) -> None:
    """Spend last month by feature, cost per outcome, cache hit rate, next month's forecast with
    its interval, anomalies, report path. Read back from the marts, so it shows what landed."""
    console.rule("[bold]summary")
    if wh.kind != "duckdb":
        console.print(f"marts are in BigQuery datasets {wh.schema('marts')}; steps: "
                      + ", ".join(f"{k} {v:.0f}s" for k, v in result.steps.items()))
        return
    from tokenbook.warehouse import connect_duckdb

    con = connect_duckdb(wh)
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
    import math

    digits = max(2, 2 - math.floor(math.log10(abs(x))))
    return f"${x:.{digits}f}"
