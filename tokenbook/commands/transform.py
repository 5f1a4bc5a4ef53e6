"""`tokenbook transform`: build the dbt models (owner: dbt)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenbook.commands.common import ConfigDirOpt, WarehouseOpt, config_failure, fail, resolve
from tokenbook.dbt import DbtError, build
from tokenbook.exitcodes import INPUT_REFUSED, QUALITY_FAILED
from tokenbook.orgconfig import ConfigInvalid


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
    config_dir: ConfigDirOpt = None,
) -> None:
    """Seed and build the dbt models (staging -> intermediate -> marts) with their tests.

    Prints one line per dbt stage; dbt's own log goes to logs/dbt.log under the run's folder
    (TOKENBOOK_OUT_DIR, default out/). Exits 3 when only data tests failed."""
    settings, _ = resolve(warehouse, config_dir=config_dir)
    try:
        summary = build(settings, select=select or None, full_refresh=full_refresh)
    except ConfigInvalid as exc:
        raise config_failure(exc) from exc
    except DbtError as exc:
        # only data tests that found bad rows: the quality gate's code; else a failed build
        code = QUALITY_FAILED if exc.tests_only else INPUT_REFUSED
        raise fail(str(exc), code) from exc
    typer.echo(summary)
