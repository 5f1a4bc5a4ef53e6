"""Options and helpers shared by commands."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from core.settings import Settings, load_settings
from core.warehouse import Warehouse, WarehouseError
from tokenbook.exitcodes import CONFIG_INVALID

# The demo places its planted events in at least three weeks (tokenbook/demo/events.py):
# `run --demo` and `demo-data` accept the same range of --days.
DEMO_MIN_DAYS = 21

WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="duckdb:///relative/path.duckdb (three slashes: under the working directory; "
        "default duckdb:///warehouse/tokenbook.duckdb), duckdb:////absolute/path.duckdb (four) "
        "or bigquery://PROJECT/DATASET_PREFIX. Env: TOKENBOOK_WAREHOUSE.",
        show_default=False,
    ),
]


ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Confirm a deliberate replacement: load even when the delivery has no valid record "
        "or would remove more than 90% of a loaded partition's rows (refused otherwise, "
        "exit 1, nothing changed).",
        show_default=False,
    ),
]


ConfigDirOpt = Annotated[
    str | None,
    typer.Option(
        "--config-dir",
        help="Your organisation's configuration folder (tokenbook init). Env: "
        "TOKENBOOK_CONFIG_DIR; default ./config when it exists, else nothing configured.",
        show_default=False,
    ),
]


def config_failure(exc: Exception) -> typer.Exit:
    """An invalid configuration: every error (file, line, column, what to write), exit 4."""
    return fail(str(exc), CONFIG_INVALID)


def resolve(warehouse: str | None = None, **overrides: object) -> tuple[Settings, Warehouse]:
    """Settings and parsed warehouse, or a clean CLI error saying what to fix."""
    try:
        settings = load_settings(warehouse=warehouse, **overrides)
        return settings, Warehouse.from_settings(settings)
    except (WarehouseError, ValueError) as exc:
        where = ""
        if isinstance(exc, WarehouseError) and warehouse is None and os.environ.get(
            "TOKENBOOK_WAREHOUSE"
        ):
            where = " (the URL comes from TOKENBOOK_WAREHOUSE)"
        raise typer.BadParameter(f"{exc}{where}") from exc


def refuse_dev_key(settings: Settings) -> None:
    """Exit CONFIG_INVALID (4) with how to set the key when a command that pseudonymises would
    run with the development PII key (outside the demo and the tests), or its key file cannot
    be read. A configuration error, not a refused input: no file was looked at, and the same
    command succeeds once the key is set."""
    try:
        settings.require_pii_key()
    except ValueError as exc:  # DevKeyRefused, or TOKENBOOK_PII_KEY_FILE unreadable / empty
        raise fail(str(exc), CONFIG_INVALID) from exc


def fail(message: str, code: int = 1) -> typer.Exit:  # code: see tokenbook/exitcodes.py
    """Print an error for a person (what went wrong, what to do) and return Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True, color=color())
    return typer.Exit(code)


def color() -> bool | None:
    """click's colour switch: off when NO_COLOR is set (https://no-color.org), else click
    decides (colour on a terminal only)."""
    return False if os.environ.get("NO_COLOR") else None


def parse_date(value: str | None, flag: str = "--date") -> date | None:
    """A YYYY-MM-DD option value, or a usage error naming the flag."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{flag} expects YYYY-MM-DD, got {value!r}") from exc


def check_month(value: str | None, flag: str = "--month") -> date | None:
    """A YYYY-MM option value as its first day, or a usage error (exit 2) naming the flag."""
    if value is None:
        return None
    from tokenbook.exports import ExportError, parse_month

    try:
        return parse_month(value)
    except ExportError as exc:
        raise typer.BadParameter(f"{flag}: {exc}") from exc


def refuse_future(last: date, flag: str,
                  advice: str = "check dates up to the last one loaded") -> None:
    """A usage error for a date that has not begun anywhere yet (after tomorrow in UTC: the
    clock only bounds the argument, never the command's logic). Nothing can have been
    delivered or loaded for it: checking it would store a 'missing delivery' for every such
    date, running it would fail at ingest after the setup."""
    today = datetime.now(UTC).date()
    if last > today + timedelta(days=1):
        raise typer.BadParameter(
            f"{flag} {last} is in the future (today is {today} UTC): nothing can have been "
            f"delivered or loaded for it yet; {advice}")
