"""`tokenbook prices ...`: the effective-dated price book (owner: pricing)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage the effective-dated price book.", no_args_is_help=True)
