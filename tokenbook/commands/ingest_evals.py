"""`tokenbook ingest evals`: load quality-eval results (CSV / JSONL) into raw.evals.

Register with ``ingest.app.command("evals")(ingest_evals.evals)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ingestion.evals import EvalsError, ingest_evals
from tokenbook.commands.common import ReplaceOpt, WarehouseOpt, fail, parse_date, resolve
from tokenbook.exitcodes import INPUT_REFUSED


def evals(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Eval files (.csv, .jsonl, gzipped too) or folders.", show_default=False
        ),
    ],
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="The run's logical date (load_date); default: the latest eval_date loaded.",
            show_default=False,
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    replace: ReplaceOpt = False,
) -> None:
    """Load quality evals (eval_date, feature, provider, model, eval_name, score, passed,
    quality_bar, cases) into raw.evals: bad lines are quarantined with a reason, a re-load
    replaces the evals it brings, and every file gets a row in raw.load_audit. A delivery with
    no valid line is refused (exit 1) unless --replace."""
    settings, wh = resolve(warehouse)
    if wh.is_bigquery:
        raise fail(
            "tokenbook ingest evals loads into DuckDB warehouses only for now; load the file "
            "into <prefix>_raw.evals with a BigQuery load job (columns: ingestion/evals.py "
            "EVALS_COLUMNS)"
        )

    con = wh.connect(wait_seconds=settings.lock_wait_seconds)
    try:
        result = ingest_evals(con, paths, load_date=parse_date(date_), replace=replace)
    except EvalsError as exc:
        raise fail(str(exc), INPUT_REFUSED) from exc
    finally:
        con.close()
    typer.echo(
        f"evals load {result.load_date}: {len(result.files)} file(s), {result.rows_read} lines "
        f"read, {result.rows_loaded} loaded, {result.rows_quarantined} quarantined, "
        f"{result.rows_duplicate} duplicates"
    )
    for f in [f for f in result.files if f.rows_quarantined][:5]:
        typer.echo(f"  {f.source_file}: {f.rows_quarantined} quarantined (see raw.quarantine)")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    typer.echo(f"written: raw.evals, raw.quarantine, raw.load_audit in {wh.location}")
