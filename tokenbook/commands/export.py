"""`tokenbook export ...`: files for finance (owner: marts)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenbook.commands import export_focus
from tokenbook.commands.common import WarehouseOpt, check_month, fail, resolve

app = typer.Typer(
    help="Export finance tables (chargeback, FOCUS) as CSV or Parquet.", no_args_is_help=True
)


@app.command("chargeback")
def chargeback(
    month: Annotated[
        str, typer.Option("--month", help="Month to export, YYYY-MM.", show_default=False)
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="File to write, or a folder (existing, or ending with /).",
            show_default=False,
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    warehouse: WarehouseOpt = None,
) -> None:
    """One month of chargeback (month x cost centre x team x segment, list and effective cost)."""
    from tokenbook.exports import ExportError, export_chargeback

    settings, _ = resolve(warehouse)
    check_month(month)  # a bad month is a usage error (2), before the warehouse is opened
    try:
        result = export_chargeback(settings, month, fmt.lower(), out)
    except ExportError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"wrote {result.rows} chargeback rows for {result.month:%Y-%m} to {result.path} "
        f"(effective {result.effective_cost_usd:.2f} USD, list {result.list_cost_usd:.2f} USD)"
    )


app.command("focus")(export_focus.focus)
