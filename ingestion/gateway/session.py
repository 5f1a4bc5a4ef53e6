"""The DuckDB side of a gateway load: the staging connection and sink, its settings, SQL
quoting, TEMP-table cleanup and progress on a long statement.

Every stage stages in TEMP tables of one connection: the warehouse file itself for a DuckDB
warehouse (so the calls are published straight from views), an in-memory DuckDB for BigQuery
(what exceeds the memory limit spills under the system temp directory).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb

from core import interrupts
from core.warehouse import Warehouse
from ingestion.raw.sinks.bigquery import BigQuerySink
from ingestion.raw.sinks.duckdb import DuckDBSink


def q(value: str) -> str:
    """SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """SQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def open_staging(settings, con=None, memory_limit: str | None = None):
    """(staging connection, sink, warehouse label, own) for ``settings.warehouse``; with ``con``
    (tests, callers that hold a DuckDB warehouse open) that connection and a DuckDB sink, and
    ``own`` False (the caller closes it). ``memory_limit`` applies to a connection opened here."""
    if con is not None:
        sink = DuckDBSink()
        sink.prepare(con)
        return con, sink, "(given connection)", False
    wh = Warehouse.from_settings(settings)
    if not wh.is_bigquery:
        con = wh.connect(wait_seconds=settings.lock_wait_seconds)
        sink = DuckDBSink()
    else:
        spill = Path(tempfile.gettempdir()) / "tokenbook-duckdb-spill"
        con = interrupts.track(duckdb.connect(config={"temp_directory": str(spill)}))
        sink = BigQuerySink.from_settings(settings)
    if hasattr(sink, "prepare"):
        sink.prepare(con)
    if memory_limit:
        # staged rows spill to DuckDB's temp directory instead of growing the process
        con.execute(f"set memory_limit = {q(memory_limit)}")
    # what was opened: the DuckDB file's absolute path, or the BigQuery project/dataset
    return con, sink, wh.location, True


@contextlib.contextmanager
def unordered(con):
    """Statements in the block may write rows in any order (DuckDB then inserts from all
    threads); the session's order-keeping (``setup``) is back afterwards, whatever happens."""
    con.execute("set preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("set preserve_insertion_order = true")


def setup(con) -> None:
    """Session settings and macros every stage relies on."""
    con.execute("set timezone = 'UTC'")
    # line numbers of positional readers are row positions: order must be kept
    con.execute("set preserve_insertion_order = true")
    # progress is tracked (for Watch) but never printed by DuckDB itself
    con.execute("set enable_progress_bar = true")
    con.execute("set enable_progress_bar_print = false")
    con.execute(
        """
        create or replace temp macro tb_int(x) as (
            case when try_cast(x as DOUBLE) = floor(try_cast(x as DOUBLE))
                 then try_cast(try_cast(x as DOUBLE) as BIGINT) end)
        """
    )


def drop(con, *names: str) -> None:
    """Drop temp tables or views by name (whichever each one is): one catalog lookup for all
    the names, not one per name."""
    if not names:
        return
    kinds = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_schema = 'main' and table_catalog = 'temp' and list_contains(?, table_name)",
        [list(names)],
    ).fetchall()
    for name, kind in kinds:
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} if exists {name}")


# A reader's own progress (0-100) on a connection, for statements DuckDB cannot measure (a
# scan of an Arrow stream reports no progress): id(connection) -> callable.
_READER_PROGRESS: dict[int, Callable[[], float]] = {}


def reader_progress(con, fraction: Callable[[], float] | None) -> None:
    """Report ``fraction()`` (0-100) as the progress of what runs on ``con`` whenever DuckDB
    reports none; None stops it."""
    if fraction is None:
        _READER_PROGRESS.pop(id(con), None)
    else:
        _READER_PROGRESS[id(con)] = fraction


def _progress_of(con) -> float:
    """DuckDB's progress (0-100) on the statement running on ``con``, else the reader's own
    (``reader_progress``); -1 when there is none (or the connection is between statements or
    closing)."""
    try:
        pct = con.query_progress()
    except Exception:
        pct = -1
    if pct < 0 and id(con) in _READER_PROGRESS:
        try:
            pct = _READER_PROGRESS[id(con)]()
        except Exception:  # the reader is gone: no figure this time
            pct = -1
    return pct


class Watch:
    """While a long statement runs, report DuckDB's progress on it: a thread polls
    ``con.query_progress()`` (made for that) and calls ``progress(stage, done, total,
    f"{label} NN%")`` when the percentage moves. No-op without a progress callback."""

    every = 0.5  # seconds between polls

    def __init__(self, con, progress, stage: str, done: int, total: int, label: str) -> None:
        self.con, self.progress = con, progress
        self.args = (stage, done, total, label)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        if self.progress is not None:
            self._thread = threading.Thread(target=self._poll, name="tokenbook-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        stage, done, total, label = self.args
        last = -1
        while not self._stop.wait(self.every):
            pct = int(_progress_of(self.con))
            if pct >= 0 and pct != last:
                last = pct
                self.progress(stage, done, total, f"{label} {pct}%")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
