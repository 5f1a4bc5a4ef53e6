"""`tokenbook transform`: build the dbt models (owner: dbt)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenbook.commands.common import WarehouseOpt, fail, resolve


def transform(
    select: Annotated[
        list[str] | None,
        typer.Option("--select", "-s", help="dbt selection (repeatable), e.g. +fct_llm_calls."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option(
            "--full-refresh",
            help="Rebuild incremental models from scratch: needed after a change to the models "
            "or to the seeds the ledger reads, never for restated days, late records, new "
            "prices or FX rates (the next ordinary run rebuilds the dates they touch).",
        )
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Seed and build the dbt models (staging -> intermediate -> marts) with their tests."""
    from tokenbook.dbt import DbtError, build

    settings, _ = resolve(warehouse)
    try:
        summary = build(settings, select=select or None, full_refresh=full_refresh)
    except DbtError as exc:
        raise fail(str(exc)) from exc
    typer.echo(summary)
