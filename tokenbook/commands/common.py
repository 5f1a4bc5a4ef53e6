"""Options and helpers shared by commands."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from tokenbook.settings import Settings, load_settings
from tokenbook.warehouse import Warehouse, WarehouseError, parse_warehouse

# The demo places its planted events in at least three weeks (tokenbook/demo/events.py):
# `run --demo` and `demo-data` accept the same range of --days.
DEMO_MIN_DAYS = 21

WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="duckdb:///path.duckdb (default duckdb:///warehouse/tokenbook.duckdb) or "
        "bigquery://PROJECT/DATASET_PREFIX. Env: TOKENBOOK_WAREHOUSE.",
        show_default=False,
    ),
]


def resolve(warehouse: str | None = None, **overrides: object) -> tuple[Settings, Warehouse]:
    """Settings and parsed warehouse, or a clean CLI error saying what to fix."""
    try:
        settings = load_settings(warehouse=warehouse, **overrides)
        return settings, parse_warehouse(settings.warehouse)
    except (WarehouseError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def fail(message: str, code: int = 1) -> typer.Exit:  # code: see tokenbook/exitcodes.py
    """Print an error for a person (what went wrong, what to do) and return Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def parse_date(value: str | None, flag: str = "--date") -> date | None:
    """A YYYY-MM-DD option value, or a usage error naming the flag."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{flag} expects YYYY-MM-DD, got {value!r}") from exc
