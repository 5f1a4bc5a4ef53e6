"""Shared by the client-export tests: `tokenbook ingest gateway` through the real CLI into a
warehouse of the test's own, and a read-only query of it."""

from __future__ import annotations

from pathlib import Path

import duckdb
from typer.testing import CliRunner

from tokenbook.cli import app


def ingest(tmp_path: Path, *files: Path, day: str):
    """(CliRunner result, warehouse path) of ``tokenbook ingest gateway FILES --date DAY``.

    A terminal wide enough for the notes' file paths: at 80 columns a path longer than the
    line is folded mid-name, and how long the temporary path is depends on the machine and on
    the runner (pytest-xdist adds popen-gwN/), not on what tokenbook says."""
    wh = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(app, ["ingest", "gateway", *map(str, files), "--date", day,
                                      "--warehouse", f"duckdb:///{wh}"], env={"COLUMNS": "1000"})
    return result, wh


def rows(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
