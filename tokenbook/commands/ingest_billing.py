"""`tokenbook ingest billing`: load vendor billing exports into raw.billing_lines.

Register with ``ingest.app.command("billing")(ingest_billing.billing)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ingestion.billing.schema import VENDORS
from tokenbook.commands.common import ReplaceOpt, WarehouseOpt, fail, parse_date, resolve
from tokenbook.exitcodes import INPUT_REFUSED


def billing(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Export files, folders (searched recursively) or globs.", show_default=False
        ),
    ],
    vendor: Annotated[
        str,
        typer.Option("--vendor", help="openai | anthropic | gcp | aws | azure", show_default=False),
    ],
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="The run's logical date (Airflow ds): one load dated YYYY-MM-DD; usage outside "
            "the window around it is quarantined.",
            show_default=False,
        ),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(
            "--month",
            help="Invoice month YYYY-MM: replaces the vendor's partition for that month "
            "(monthly exports restated through the month: CUR, GCP, Azure).",
            show_default=False,
        ),
    ] = None,
    window_days: Annotated[
        int | None,
        typer.Option(
            "--window-days", help="Widen the --date window to N days before.", show_default=False
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    replace: ReplaceOpt = False,
) -> None:
    """Load vendor billing exports (usage/cost reports, CUR, billing and cost exports) into
    raw.billing_lines: bad lines are quarantined with a reason, each partition is replaced
    atomically, and every file gets a row in raw.load_audit. A file of another vendor, or a
    load that would shrink a loaded partition by more than 90% without --replace, is refused
    (exit 1, nothing changed)."""
    # The loader pulls duckdb and the parsers: imported when the command runs.
    from ingestion.billing.loader import BillingError, ingest_billing, parse_month

    if vendor not in VENDORS:
        raise typer.BadParameter(f"unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)}")
    settings, wh = resolve(warehouse, window_days_before=window_days)
    load_date = parse_date(date_)
    try:
        month_start = parse_month(month) if month else None
        if not wh.is_bigquery:
            con, sink = wh.connect(wait_seconds=settings.lock_wait_seconds), None
        else:  # stage in an in-memory DuckDB, publish with load jobs + one transaction
            import duckdb

            from core.interrupts import track
            from ingestion.billing.bigquery import BigQueryBillingSink

            con, sink = track(duckdb.connect()), BigQueryBillingSink.from_settings(settings)
        try:
            results = ingest_billing(
                con,
                vendor,
                paths,
                load_date=load_date,
                month=month_start,
                window_days_before=settings.window_days_before,
                window_days_after=settings.window_days_after,
                sink=sink,
                replace=replace,
            )
        finally:
            con.close()
    except BillingError as exc:
        raise fail(str(exc), INPUT_REFUSED) from exc
    for r in results:
        typer.echo(
            f"{vendor} load {r.load_date}: {len(r.files)} file(s), {r.rows_read} lines read, "
            f"{r.rows_loaded} loaded, {r.rows_quarantined} quarantined, "
            f"{r.rows_duplicate} duplicates"
        )
        flagged = [f for f in r.files if f.rows_quarantined]
        for f in flagged[:5]:
            typer.echo(f"  {f.source_file}: {f.rows_quarantined} quarantined (see raw.quarantine)")
        if len(flagged) > 5:
            typer.echo(f"  ... and {len(flagged) - 5} more file(s) with quarantined lines")
        for note in r.notes:
            typer.echo(f"  note: {note}")
    typer.echo(f"written: raw.billing_lines, raw.quarantine, raw.pii_redactions, raw.load_audit "
               f"in {wh.location}")
