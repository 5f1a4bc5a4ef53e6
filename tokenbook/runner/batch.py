"""A backfill or the demo as one batch: every file loaded first, then dbt ONCE, the forecasts,
the report. That is what makes a 120-day history take minutes, not 120 nightly runs."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from core.query import run_query
from core.settings import Settings
from core.warehouse import Warehouse
from forecasting.inputs import load_events_with
from forecasting.job import forecast_warehouse
from ingestion.billing.loader import ingest_billing
from ingestion.evals import ingest_evals
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.gateway.readers import has_known_suffix
from ingestion.quality import check_dates
from tokenbook.commands.check import print_result
from tokenbook.dbt import run_dbt, stage_lines
from tokenbook.demo import generate_with_billing
from tokenbook.demo.orgconfig import write_demo_config
from tokenbook.orchestration.forecast import forecast_config
from tokenbook.orchestration.models import AFTER_FORECAST_SELECTOR
from tokenbook.orgconfig import read_config
from tokenbook.orgconfig.load import describe
from tokenbook.report import write_report
from tokenbook.runner.console import console, progress, step
from tokenbook.runner.plan import RunPlan, RunResult


def run_batch(plan: RunPlan, settings: Settings, wh: Warehouse, result: RunResult) -> date:
    """The demo (when asked), every gateway file, billing, evals, the quality suites, dbt,
    forecasts and the report; returns the date the run is as of (the last day with calls)."""
    if plan.demo:
        with step(result, "demo", f"1/6 demo organisation in {plan.data_dir}"):
            _demo(plan)
        console.print(describe(read_config(settings.resolved_config_dir)))
    files = gateway_files(plan.data_dir, plan.date_from, plan.date_to)
    with step(result, "ingest", f"2/6 ingest {len(files)} gateway files (one batch)"):
        _ingest_gateway(files, settings, result)
    with step(result, "billing", "3/6 ingest vendor billing exports and quality evals"):
        _ingest_billing(plan.data_dir, wh, result)
        _ingest_evals(plan.data_dir, wh, result)
        _check(settings, result)
    with step(result, "dbt", "4/6 build the models (dbt, once for the whole batch)"):
        _build(settings, result,
               ["--exclude", AFTER_FORECAST_SELECTOR] if plan.forecast else None)
    as_of = plan.date_to or latest_call_date(wh)
    result.as_of = as_of
    if plan.forecast:
        with step(result, "forecast", f"5/6 forecasts and anomaly flags as of {as_of}"):
            manifest = plan.data_dir / "manifest.json"
            _forecast(settings, wh, as_of, result,
                      known_events=manifest if plan.demo and manifest.exists() else None)
            _build(settings, result, ["--select", AFTER_FORECAST_SELECTOR],
                   label="dbt after forecast")
    with step(result, "report", "6/6 report"):
        _report(plan, settings, as_of, result)
    return as_of


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
    undated = sorted(p.name for p in folder.iterdir()
                     if p.is_file() and _file_date(p) is None and has_known_suffix(p))
    if undated:  # said, not silently left out of the run
        console.print(f"  [yellow]not loaded[/] (no date at the end of the name, as in "
                      f"gateway-2026-11-10.jsonl.gz; load them with `tokenbook ingest gateway`): "
                      f"{', '.join(undated)}", soft_wrap=True)
    if date_from and date_to:
        files = [p for p in files if date_from <= _file_date(p) <= date_to]
    if not files:
        raise FileNotFoundError(f"no gateway-YYYY-MM-DD files in {folder} for that range")
    return files


def _demo(plan: RunPlan) -> dict:
    end = plan.demo_end or (date.today() - timedelta(days=1))
    manifest_path = plan.data_dir / "manifest.json"
    wanted = {"seed": plan.demo_seed, "days": plan.demo_days, "end": end.isoformat(),
              "scale": plan.demo_scale}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if all(str(manifest.get(k)) == str(v) for k, v in wanted.items()):
            if not (plan.data_dir / "config").is_dir():  # demo data written before issue 15
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
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int, what: str) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:8s}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        report = ingest_gateway([str(f) for f in files], settings, progress=on_progress)
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
    _print_notes(report.notes)


def _ingest_billing(data_dir: Path, wh: Warehouse, result: RunResult) -> None:
    folder = data_dir / "billing"
    if not folder.is_dir():
        console.print(f"  no billing exports in {folder}: skipped")
        return
    vendors = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if wh.is_bigquery:
        raise NotImplementedError("batch billing ingestion on BigQuery: use the nightly DAG")
    con = wh.connect()
    loaded = 0
    notes: list[str] = []
    try:
        for vendor in vendors:
            files = sorted(str(p) for p in (folder / vendor).rglob("*") if p.is_file())
            if not files:
                continue
            for res in ingest_billing(con, vendor, files, window_days_before=10_000,
                                      window_days_after=10_000):
                loaded += int(getattr(res, "rows_loaded", 0) or 0)
                notes += [n for n in getattr(res, "notes", []) if n not in notes]
    finally:
        con.close()
    result.facts["billing_lines"] = loaded
    console.print(f"  {len(vendors)} vendors, {loaded:,} billing lines loaded")
    _print_notes(notes)


def _ingest_evals(data_dir: Path, wh: Warehouse, result: RunResult) -> None:
    """Quality evals (feature x model scores) that the routing and switch marts read."""
    folder = data_dir / "evals"
    files = sorted(str(p) for p in folder.glob("*.csv*")) + sorted(
        str(p) for p in folder.glob("*.jsonl*"))
    if not files:
        console.print(f"  no evals in {folder}: skipped")
        return
    if wh.is_bigquery:
        raise NotImplementedError("evals on BigQuery: load raw.evals with a BigQuery load job")
    con = wh.connect()
    try:
        load = ingest_evals(con, files)
    finally:
        con.close()
    result.facts["evals"] = load.rows_loaded
    console.print(f"  {len(files)} eval files, {load.rows_loaded:,} eval results loaded")
    _print_notes(load.notes)


def _print_notes(notes: list[str]) -> None:
    """What a load reported besides its counts (lines not UTF-8, tiers it did not know, spans
    that are not calls): the same notes `tokenbook ingest` prints."""
    for note in notes:
        console.print(f"  note: {note}", markup=False, highlight=False)


def _check(settings: Settings, result: RunResult) -> None:
    """The data-quality suites over the batch's load dates (``tokenbook check``). A backfill
    reports what failed and goes on (history holds the incidents it is loaded to explain);
    the nightly run (``--date``) stops at a failure instead."""
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


def _build(settings: Settings, result: RunResult, select: list[str] | None = None,
           label: str = "dbt") -> None:
    with console.status("  dbt build (seeds, models, tests, unit tests)"):
        res = run_dbt(["build", "--quiet", *(select or [])], settings)
    nodes = getattr(res.result, "results", None) or []
    counts: dict[str, int] = {}
    for r in nodes:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    result.facts[label] = counts
    for line in stage_lines(res):
        console.print(f"  {label} {line}", soft_wrap=True)


def latest_call_date(wh: Warehouse) -> date:
    """The data decides the run date of a batch: the last day with calls in the ledger."""
    sql = f"select max(call_date) as d from {wh.table('marts', 'fct_llm_calls')}"
    if wh.is_bigquery:
        value = run_query(wh, sql)["d"].iloc[0]
    else:
        # Same configuration as dbt's in-process connection (DuckDB refuses a read-only twin).
        con = wh.connect()
        try:
            (value,) = con.execute(sql).fetchone()
        finally:
            con.close()
    if value is None or value != value:
        raise ValueError("marts.fct_llm_calls is empty after the build: no calls were loaded")
    return value if isinstance(value, date) and not isinstance(value, datetime) else value.date()


def _forecast(settings: Settings, wh: Warehouse, as_of: date, result: RunResult,
              known_events: Path | None = None) -> None:
    """Forecasts and anomaly flags. ``known_events``: a CSV (or the demo's manifest) of deliberate
    changes — launches, model switches — that a real team lists in the forecast_events seed;
    runaway and degraded days are never events: the flags must find them."""
    config = forecast_config(settings)
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase:10s}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        run = forecast_warehouse(wh, as_of, config, progress=on_progress,
                                 events=load_events_with(known_events, config=config.config_dir))
    flagged = 0 if run.anomalies.empty else int(run.anomalies["is_anomaly"].sum())
    result.facts["forecast"] = {"series": int(run.daily["unique_id"].nunique()),
                                "anomalies": flagged}
    console.print(f"  {result.facts['forecast']['series']} series forecast, {flagged} anomaly flags")


def _report(plan: RunPlan, settings: Settings, as_of: date, result: RunResult) -> Path | None:
    out = plan.report_path or Path("reports") / f"tokenbook-{as_of.isoformat()}.html"
    path = write_report(settings, out)
    result.facts["report"] = str(Path(path).resolve())
    return path
