"""`tokenbook export ...`: files for finance (owner: marts)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Export finance tables (chargeback, FOCUS) as CSV or Parquet.", no_args_is_help=True)
