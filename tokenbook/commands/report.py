"""`tokenbook report`: the self-contained HTML report (owner: report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenbook.commands.common import WarehouseOpt, check_month, fail, resolve


def report(
    month: Annotated[
        str | None,
        typer.Option("--month", help="YYYY-MM; default: the last complete month in the data.",
                     show_default=False),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="HTML file to write, or a folder for "
                     "tokenbook-report-YYYY-MM.html."),
    ] = Path("reports/"),
    warehouse: WarehouseOpt = None,
) -> None:
    """Write one self-contained HTML report (opens offline): spend and cost per outcome by
    feature, budget, cache, chargeback, reconciliation, forecast, anomalies, savings levers."""
    from tokenbook.report import ReportError, write_report

    settings, _ = resolve(warehouse)
    month_start = check_month(month)
    # a path with a suffix is the file; anything else is a folder for the default file name
    target: str | Path = out if out.suffix else f"{out}/"
    try:
        path = write_report(settings, target, month_start)
    except ReportError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"report written: {path}")
