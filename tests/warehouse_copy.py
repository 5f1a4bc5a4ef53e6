"""Copies of a DuckDB warehouse built once per session (tests/conftest.py), one per module
that uses it, so a module that writes to its warehouse never changes another's."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.warehouse import connect_duckdb, parse_warehouse


def copy_warehouse_tree(src: Path, dst: Path, url: str) -> str:
    """Copy the folder ``src`` (a built DuckDB warehouse and whatever its build wrote beside
    it) to ``dst`` and return ``url`` pointing into the copy. The file keeps its name: dbt's
    views name the database after it. DuckDB is checkpointed first, so the copy holds every
    committed change even while dbt's in-process connection stays open (its .wal, if one is
    left, is copied with the file)."""
    con = connect_duckdb(parse_warehouse(url))  # dbt-duckdb's configuration: same instance
    try:
        con.execute("checkpoint")
    finally:
        con.close()
    shutil.copytree(src, dst)
    path = Path(url.removeprefix("duckdb:///"))
    return f"duckdb:///{dst / path.relative_to(src)}"
