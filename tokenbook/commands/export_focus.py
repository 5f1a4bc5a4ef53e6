"""`tokenbook export focus`: one billing month of the FOCUS 1.2 dataset (owner: billing)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenbook.commands.common import WarehouseOpt, check_month, fail, resolve


def focus(
    month: Annotated[
        str, typer.Option("--month", help="Billing month to export, YYYY-MM.", show_default=False)
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="File to write, or a folder (existing, or ending with /).",
            show_default=False,
        ),
    ],
    format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",  # noqa: A002
    warehouse: WarehouseOpt = None,
) -> None:
    """One billing month of FOCUS 1.2 Cost and Usage rows (invoice cost allocated to feature,
    segment and team in Tags), for finance tools and the FOCUS validator."""
    from tokenbook.exports import ExportError
    from tokenbook.focus_export import export_focus

    settings, _ = resolve(warehouse)
    check_month(month)  # a bad month is a usage error (2), before the warehouse is opened
    try:
        result = export_focus(settings, month, out, format)
    except ExportError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"wrote {result.rows} FOCUS rows for {result.month:%Y-%m} to {result.path} "
        f"(billed {result.billed_cost_usd:.2f} USD, effective {result.effective_cost_usd:.2f} "
        f"USD, list {result.list_cost_usd:.2f} USD)"
    )
