"""`tokenbook ingest ...`: load sources into raw tables (owner: ingestion)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Load gateway logs and vendor bills into the raw tables.", no_args_is_help=True)
