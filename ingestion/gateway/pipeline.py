"""Gateway logs -> raw.gateway_calls, raw.quarantine, raw.pii_redactions, raw.load_audit.

``ingest_gateway(paths, settings, date=None, window_days=None, fmt=None, progress=None)``

The entry point; each step is a module of its own, all sharing one ``context.LoadContext``:

1. read (``read.py``): each file through its format's reader (``readers.py``) into a TEMP
   table or view of text (the native JSON-lines reader: a positional view, parsed in
   parallel, see native.py);
2. type and validate (``validate.py``): ``try_cast`` every field, the failed rules joined as
   the reason (SQL predicates; the text is built only for failing rows), into one typed table
   per file made by one order-preserving statement (so row positions are line numbers); the
   text of typed fields is not kept, a rejected record keeps its raw line;
3. date (``dedupe.py``): ``date`` is the run's logical date; without it each file is dated by
   its latest valid call timestamp, and files with the same date form one load;
4. window: a call outside [load_date - before, load_date + after) is quarantined
   ("out of window"); ``window_days`` widens the back window;
5. dedupe: a repeated ``request_id`` within one load date is a duplicate (first kept, by file
   order given, then line); only the repeated ids are materialised;
6. redact and stage (``stage.py``): free text is passed through ``redact.redact_sql`` (only
   rows where the redactor changes something are redacted field by field and counted),
   ``customer_id`` is pseudonymised with ``settings.require_pii_key()``, ``prompt_preview`` is counted
   then dropped;
7. publish (``publish.py``): the shrink guard, then the sink replaces the load dates'
   partitions of the three data tables (``schema.Sink.replace_partitions``: DuckDB every date
   in one transaction, straight from the staged views, no staged copy of the calls; BigQuery
   date by date, by load jobs); one audit row per file is appended.

The DuckDB plumbing (staging connection, quoting, progress) is ``session.py``.

The load's own invariants (rows read = loaded + quarantined + duplicates, ids unique within a
load date) hold by construction and are recorded per file in raw.load_audit. The data-quality
suites that compare a partition with its history are a separate step, ``tokenbook check``
(``ingestion/quality.py``): no module of the load imports Great Expectations.

Everything per row runs in DuckDB; Python only loops over files and load dates.
No wall-clock value reaches a data table: ``started_at``/``finished_at`` live in the audit only.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from datetime import date as Date
from pathlib import Path

from ingestion.gateway import dedupe, publish, read, session, stage
from ingestion.gateway.context import (
    FileReport,
    IngestError,
    IngestReport,
    LoadContext,
    LoadRefused,
    Progress,
    StageClock,
)
from ingestion.gateway.readers import ReaderError
from ingestion.gateway.validate import FREE_TEXT_FIELDS


def ingest_gateway(
    paths: Iterable[str | Path],
    settings,
    date: Date | None = None,
    window_days: int | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
    con=None,
    memory_limit: str | None = "2GB",
    replace: bool = False,
) -> IngestReport:
    """Load gateway-log files into the raw tables; see the module docstring.

    ``fmt``: ``auto``/None (detect per file), ``native``, ``litellm`` or ``otel``.
    ``con`` (tests, callers that hold the warehouse open) is a DuckDB warehouse connection;
    normally the connection and the sink come from ``settings.warehouse``.
    ``memory_limit``: DuckDB's limit on the connection this function opens (staged rows beyond
    it spill to disk). ``replace``: confirm a load that the shrink guard (``ingestion/guard.py``)
    would refuse.
    Raises LoadRefused (nothing published), ReaderError (a missing or unreadable file, a missing
    Parquet column), IngestError (a file with no datable record and no ``date``),
    ``core.settings.DevKeyRefused`` (the development PII key outside the demo and tests).
    """
    # pseudonymising with the public development key is refused before anything is read
    settings.require_pii_key()
    started = datetime.now(UTC).replace(tzinfo=None)
    clock = StageClock()
    # the load's temporary folder: gs:// downloads, repaired copies of files not UTF-8
    remote = tempfile.TemporaryDirectory(prefix="tokenbook-load-")
    try:
        files, names, formats = read.resolve_inputs(paths, fmt, Path(remote.name))
        before = window_days if window_days is not None else settings.window_days_before
        after = settings.window_days_after
        if before < 0 or after < 0:
            raise IngestError("window days must be >= 0")
        con, sink, warehouse, own_con = session.open_staging(settings, con, memory_limit)
        ctx = LoadContext(
            settings=settings, con=con, sink=sink,
            report=IngestReport(load_id=uuid.uuid4().hex, warehouse=warehouse),
            files=files, source_names=names, formats=formats, date=date,
            window_before=before, window_after=after, started=started, clock=clock,
            progress=progress, replace=replace, workdir=Path(remote.name),
        )
        try:
            return _load(ctx)
        finally:
            if own_con:
                con.close()
    except LoadRefused:
        raise
    except Exception as exc:
        # a damaged .gz surfaces as whatever DuckDB or gzip raised: name the file and the byte
        read.raise_if_damaged_gzip(paths, exc)
        raise
    finally:
        remote.cleanup()


def _load(ctx: LoadContext) -> IngestReport:
    """The stages in order on an open staging connection."""
    session.setup(ctx.con)
    read.read_files(ctx)
    ctx.clock.lap("read_validate")
    dedupe.date_files(ctx)
    dedupe.assign_status(ctx)
    ctx.clock.lap("window_dedupe")
    stage.stage(ctx)
    ctx.clock.lap("redact_stage")
    stage.count_files(ctx)
    publish.publish(ctx)
    ctx.clock.lap("publish")
    ctx.report.timings = ctx.clock.finish()
    return ctx.report


__all__ = [
    "FREE_TEXT_FIELDS",
    "FileReport",
    "IngestError",
    "IngestReport",
    "LoadRefused",
    "ReaderError",
    "ingest_gateway",
]
