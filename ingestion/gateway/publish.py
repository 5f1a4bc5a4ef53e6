"""Publish a staged load: the shrink guard, the partitions, the audit.

A load date offering no valid record, or under 10% of what its partition holds, is refused
(``guard.py``; ``ctx.replace`` confirms it): nothing is published, the files go to
raw.load_audit with status ``refused``. Otherwise the sink replaces the load dates' partitions
of raw.gateway_calls, raw.quarantine and raw.pii_redactions (``schema.Sink.replace_partitions``:
DuckDB every date in one transaction, straight from the staged views; BigQuery date by date, by
load jobs), then one audit row per file is appended (``loaded``, or ``failed`` when publishing
raised).
"""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC, datetime

from ingestion.gateway.context import SOURCE, LoadContext, LoadRefused
from ingestion.gateway.schema import PartitionTables
from ingestion.gateway.session import Watch, drop, unordered
from ingestion.gateway.stage import staging_tables
from ingestion.raw import guard

STAGED = ("_tb_calls", "_tb_quarantine", "_tb_pii")


def _rejected(con, dates) -> str:
    """Why the records of ``dates`` (load dates the load offers nothing for) were all rejected:
    the three commonest reasons, e.g. a required field renamed upstream; "" when none."""
    if not dates:
        return ""
    top = con.execute(
        "select reason, count(*) from _tb_quarantine where load_date in (select unnest(?)) "
        "group by reason order by count(*) desc, reason limit 3", [list(dates)]).fetchall()
    if not top:
        return ""
    return ("Every record was rejected: " + "; ".join(f"{n:,} record(s): {r}" for r, n in top)
            + ". ")


def publish(ctx: LoadContext) -> None:
    """Guard, publish every load date, append the audit, drop the staging tables."""
    con, sink, dates = ctx.con, ctx.sink, ctx.load_dates
    staging = staging_tables(ctx.n)
    if not ctx.direct:  # the calls are materialised: the reading tables can go now
        drop(con, *staging)
    offered = {d: 0 for d in dates}
    for f in ctx.report.files:
        offered[f.load_date] += f.rows_loaded
    shrinking = guard.shrinks(offered, sink.partition_rows(con, dates), SOURCE)
    if shrinking and not ctx.replace:
        why = _rejected(con, [d for d, n in offered.items() if n == 0])
        append_audit(ctx, guard.REFUSED)
        drop(con, *STAGED, *staging)
        raise LoadRefused(
            shrinking,
            why + "Rejected records, if any, are not stored either: look at the file (a broken "
            "export, the wrong file or the wrong --date?).",
            rows_read=sum(f.rows_read for f in ctx.report.files),
        )
    try:
        label = f"{len(dates)} dates"
        ctx.say("publish", 0, len(dates), label)
        # one long insert (DuckDB) shows its percentage; a sink working date by date
        # (BigQuery) reports each date instead
        watch = (Watch(con, ctx.progress, "publish", 0, len(dates), label) if ctx.direct
                 else contextlib.nullcontext())
        # Row order inside a partition means nothing (every reader of raw.* orders or
        # groups): without it DuckDB inserts from all threads. (Line numbers were fixed by
        # position when the files were read, where order is kept.)
        with watch, unordered(con):
            sink.replace_partitions(
                con, dates, PartitionTables(*STAGED),
                progress=functools.partial(ctx.progress, "publish") if ctx.progress else None,
            )
        ctx.say("publish", len(dates), len(dates), "")
    except BaseException:
        append_audit(ctx, "failed")
        raise
    append_audit(ctx, "loaded")
    drop(con, *STAGED, *(staging if ctx.direct else ()))


def append_audit(ctx: LoadContext, status: str) -> None:
    """One raw.load_audit row per file of the report, with ``status``."""
    con, report = ctx.con, ctx.report
    finished = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        """
        create or replace temp table _tb_audit (
            load_id VARCHAR, source VARCHAR, source_file VARCHAR, load_date DATE,
            rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
            started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR)
        """
    )
    con.executemany(
        "insert into _tb_audit values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                report.load_id, SOURCE, f.source_file, f.load_date, f.rows_read, f.rows_loaded,
                f.rows_quarantined, f.rows_duplicate, ctx.started, finished, status,
            )
            for f in report.files
        ],
    )
    ctx.sink.append_audit(con, "_tb_audit")
