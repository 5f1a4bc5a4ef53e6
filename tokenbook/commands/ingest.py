"""`tokenbook ingest ...`: load sources into raw tables (owner: ingestion).

``gateway`` lives here; ``billing`` is defined in ``ingest_billing.py`` and registered below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ingestion.raw.sinks.bigquery import BigQueryLoadError  # light: google is imported on use
from tokenbook.commands import ingest_billing, ingest_evals
from tokenbook.commands.common import (
    ReplaceOpt,
    WarehouseOpt,
    fail,
    parse_date,
    refuse_dev_key,
    resolve,
)
from tokenbook.errors import explain
from tokenbook.exitcodes import INPUT_REFUSED

app = typer.Typer(help="Load gateway logs and vendor bills into the raw tables.", no_args_is_help=True)



@app.command("gateway")
def gateway(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Gateway-log files (*.jsonl, *.jsonl.gz, *.json, *.parquet), folders "
            "(searched recursively) or globs.",
            show_default=False,
        ),
    ],
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="The run's logical date (Airflow ds), YYYY-MM-DD: all files form one load of "
            "that date. Without it each file is dated by its latest valid record and files "
            "with the same date form one load (a folder of daily files backfills at once).",
            show_default=False,
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    window_days: Annotated[
        int | None,
        typer.Option(
            "--window-days",
            help="Accept calls up to N days before the load date (default: setting "
            "window_days_before, 7). Widen it for a one-off historical file.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto | native | litellm | otel"),
    ] = "auto",
    report_json: Annotated[
        str | None,
        typer.Option(
            "--report-json",
            help="Also write the load report (per-file counts, stage timings, notes) as JSON "
            "to this file, for schedulers and benchmarks.",
            show_default=False,
        ),
    ] = None,
    replace: ReplaceOpt = False,
) -> None:
    """Load gateway logs into raw.gateway_calls (bad records into raw.quarantine), redacting PII.
    The data-quality suites are a separate step: `tokenbook check --date D`.

    Exits 1 when the input is refused and nothing changed (a missing, unreadable or
    wrong-format file, a missing required column, a delivery with no valid record or one that
    would shrink a loaded day without --replace). The data-quality suites run in
    `tokenbook check` (exit 3 when they fail)."""
    # rich and the loader (duckdb, pyarrow): imported when the command runs, not at CLI start.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ingestion.gateway.pipeline import IngestError, ingest_gateway
    from ingestion.gateway.readers import FORMATS, ReaderError

    if fmt not in ("auto", *FORMATS):
        raise typer.BadParameter(f"--format must be auto, {', '.join(FORMATS)}; got {fmt!r}")
    settings, wh = resolve(warehouse)
    run_date = parse_date(date_)
    console = Console(stderr=True)
    refuse_dev_key(settings)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[label]}"),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int, label: str) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(
                    "reading files" if stage == "read" else "publishing dates",
                    total=total,
                    label="",
                )
            bar.update(tasks[stage], completed=done, label=label[-60:])

        refused = None
        try:
            report = ingest_gateway(
                paths,
                settings,
                date=run_date,
                window_days=window_days,
                fmt=None if fmt == "auto" else fmt,
                progress=progress,
                replace=replace,
            )
        except (ReaderError, IngestError, BigQueryLoadError, FileNotFoundError) as exc:
            refused = exc  # reported once the progress display is gone
    if refused is not None:
        code, message = explain(refused) or (INPUT_REFUSED, str(refused))
        raise fail(message, code) from refused
    _print_summary(report)
    if report_json:
        _write_report_json(report, report_json)


def report_as_dict(report) -> dict:
    """The load report as plain JSON-able data (no row values, so no PII)."""
    return {
        "load_id": report.load_id,
        "warehouse": report.warehouse,
        "rows_read": report.rows_read,
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "rows_duplicate": report.rows_duplicate,
        "files": [
            {
                "source_file": f.source_file,
                "source_format": f.source_format,
                "load_date": f.load_date.isoformat(),
                "rows_read": f.rows_read,
                "rows_loaded": f.rows_loaded,
                "rows_quarantined": f.rows_quarantined,
                "rows_duplicate": f.rows_duplicate,
            }
            for f in report.files
        ],
        "timings": {k: round(v, 4) for k, v in report.timings.items()},
        "notes": list(report.notes),
    }


def _write_report_json(report, path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report_as_dict(report), indent=2) + "\n")


def _print_summary(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gateway load {report.load_id[:8]} into {report.warehouse}")
    for col in ("file", "format", "load date", "read", "loaded", "quarantined", "duplicates"):
        numeric = col in {"read", "loaded", "quarantined", "duplicates"}
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for f in report.files:
        table.add_row(
            f.source_file, f.source_format, f.load_date.isoformat(), f"{f.rows_read:,}",
            f"{f.rows_loaded:,}", f"{f.rows_quarantined:,}", f"{f.rows_duplicate:,}",
        )
    if len(report.files) > 1:
        table.add_row(
            "total", "", f"{len(report.load_dates)} dates", f"{report.rows_read:,}",
            f"{report.rows_loaded:,}", f"{report.rows_quarantined:,}", f"{report.rows_duplicate:,}",
            style="bold",
        )
    console = Console()
    console.print(table, soft_wrap=True)
    t = report.timings
    if t.get("total"):
        stages = ", ".join(
            f"{label} {t[key]:.1f}"
            for key, label in (("read_validate", "read+validate"), ("window_dedupe", "dedupe"),
                               ("redact_stage", "redact+stage"), ("publish", "publish"))
            if key in t
        )
        console.print(f"took {t['total']:.1f} s ({stages})")
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(
        "written: raw.gateway_calls, raw.quarantine, raw.pii_redactions, raw.load_audit"
        + f" in {report.warehouse}",
        soft_wrap=True,
    )
    dates = report.load_dates
    if dates:
        span = (f"--date {dates[0]}" if len(dates) == 1
                else f"--from {dates[0]} --to {dates[-1]}")
        console.print(f"next: `tokenbook check {span}` runs the data-quality suites")


app.command("billing")(ingest_billing.billing)
app.command("evals")(ingest_evals.evals)
