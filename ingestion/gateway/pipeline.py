"""Gateway logs -> raw.gateway_calls, raw.quarantine, raw.pii_redactions, raw.load_audit.

``ingest_gateway(paths, settings, date=None, window_days=None, fmt=None, progress=None)``

1. read: each file through its format's reader (``readers.py``) into a TEMP table or view of
   text (the native JSON-lines reader: a positional view, parsed in parallel, see native.py);
2. type and validate: ``try_cast`` every field, the failed rules joined as the reason (SQL
   predicates; the text is built only for failing rows), into one typed table per file made
   by one order-preserving statement (so row positions are line numbers); the text of typed
   fields is not kept, a rejected record keeps its raw line;
3. date: ``date`` is the run's logical date; without it each file is dated by its latest valid
   call timestamp, and files with the same date form one load;
4. window: a call outside [load_date - before, load_date + after) is quarantined
   ("out of window"); ``window_days`` widens the back window;
5. dedupe: a repeated ``request_id`` within one load date is a duplicate (first kept, by file
   order given, then line); only the repeated ids are materialised;
6. redact: free text is passed through ``redact.redact_sql`` (only rows where the redactor
   changes something are redacted field by field and counted), ``customer_id`` is
   pseudonymised with ``settings.pii_key``, ``prompt_preview`` is counted then dropped;
7. publish: the sink replaces the load dates' partitions of the three data tables
   (``schema.Sink.replace_partitions``: DuckDB every date in one transaction, straight from
   the staged views, no staged copy of the calls; BigQuery date by date, by load jobs); one
   audit row per file is appended.

The load's own invariants (rows read = loaded + quarantined + duplicates, ids unique within a
load date) hold by construction and are recorded per file in raw.load_audit. The data-quality
suites that compare a partition with its history are a separate step, ``tokenbook check``
(``ingestion/quality.py``): this module never imports Great Expectations.

Everything per row runs in DuckDB; Python only loops over files and load dates.
No wall-clock value reaches a data table: ``started_at``/``finished_at`` live in the audit only.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import date as Date
from pathlib import Path

from ingestion.gateway import tiers
from ingestion.gateway.native import batchable as native_batchable
from ingestion.gateway.readers import (
    SKIP,
    PositionalRead,
    ReaderError,
    check_file,
    expand_paths,
    get_reader,
)
from ingestion.gateway.schema import (
    GATEWAY_CALLS_COLUMNS,
    IDENTIFIER_FIELDS,
    NATIVE_FIELDS,
    PROMPT_TEXT_FIELDS,
    REQUIRED_FIELDS,
    PartitionTables,
)
from ingestion.raw import guard, redact
from ingestion.raw.audit import FileTotals

SOURCE = "gateway"

# Fields that are free text: redacted before they land (customer_id is hashed instead,
# prompt_prefix_hash is a hash, prompt_preview is dropped, timestamp is typed).
FREE_TEXT_FIELDS: tuple[str, ...] = tuple(
    f
    for f, t in NATIVE_FIELDS.items()
    if t == "string" and f not in {"customer_id", "prompt_preview", "prompt_prefix_hash"}
) + ("prompt_prefix_hash",)
# Scanned for PII counts (prompt_preview and customer_id included), by field.
SCANNED_FIELDS: tuple[str, ...] = FREE_TEXT_FIELDS + ("customer_id", "prompt_preview", "metadata", "extra")
INT_FIELDS = tuple(f for f, t in NATIVE_FIELDS.items() if t == "int")
TOKEN_FIELDS = tuple(f for f in INT_FIELDS if f.endswith("_tokens"))

Progress = Callable[[str, int, int, str], None]


class IngestError(Exception):
    """A load that cannot proceed; the message says which file and what to do."""


class LoadRefused(guard.LoadRefused, IngestError):
    """The load would shrink a loaded partition (or holds no valid record): nothing was
    published, the files are in raw.load_audit with status ``refused``."""


@dataclass
class FileReport:
    source_file: str
    source_format: str
    load_date: Date
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int


@dataclass
class IngestReport(FileTotals):
    load_id: str
    warehouse: str
    files: list[FileReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def load_dates(self) -> list[Date]:
        return sorted({f.load_date for f in self.files})


def _q(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _i(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# SQL builders
# ---------------------------------------------------------------------------------------------


TYPED_KINDS = {"int", "float", "bool", "decimal", "timestamp"}
# Text columns the typed tables keep (free text, scanned for PII, or published as is); the
# text of typed fields is not kept: a rejected record keeps its raw line instead.
TEXT_FIELDS: tuple[str, ...] = tuple(f for f, t in NATIVE_FIELDS.items() if t not in TYPED_KINDS)


def _typed_select(reader_table: str, file_idx_sql: str, source_file_sql: str, fmt: str) -> str:
    """One reader table typed and validated: text fields, ``t_<field>`` typed fields,
    ``reason`` (NULL when every rule passes, else the failed rules joined by '; '),
    ``raw_line`` (only for rejected records: a record that parsed is rebuilt from its fields,
    to which _stage applies the field rules; a line that did not parse keeps its text,
    ``unparsed``) and ``needs_pii`` (accepted ones only).

    Row order is the reader's: a positional reader's line numbers are row positions.
    ``file_idx_sql`` and ``source_file_sql`` are SQL: literals for one file, expressions over
    the reader's columns for a view over several files."""
    typed: list[str] = []
    for f, t in NATIVE_FIELDS.items():
        c = _i(f)
        if t == "int":
            typed.append(f"tb_int({c}) as {_i('t_' + f)}")
        elif t == "float":
            typed.append(f"try_cast({c} as DOUBLE) as {_i('t_' + f)}")
        elif t == "bool":
            typed.append(f"try_cast({c} as BOOLEAN) as {_i('t_' + f)}")
        elif t == "decimal":
            typed.append(f"try_cast({c} as DECIMAL(38,9)) as {_i('t_' + f)}")
        elif t == "timestamp":
            typed.append(f"try_cast({c} as TIMESTAMPTZ)::TIMESTAMP as {_i('t_' + f)}")
    # (failed-rule condition, reason); the reason text is built only for rows failing one
    rules: list[tuple[str, str]] = []
    for f in REQUIRED_FIELDS:
        rules.append((f"({_i(f)} is null or trim({_i(f)}) = '')", f"missing required field: {f}"))
    for f, t in NATIVE_FIELDS.items():
        if t in {"int", "float", "bool", "decimal"}:
            rules.append((f"({_i(f)} is not null and {_i('t_' + f)} is null)", f"wrong type: {f}"))
        elif t == "timestamp":
            rules.append(
                (f"({_i('t_' + f)} is null and trim(coalesce({_i(f)}, '')) <> '')",
                 "unparseable timestamp")
            )
        elif t == "json":
            rules.append(
                # valid JSON text that starts with '{' is an object: one parse, not two
                (f"({_i(f)} is not null and not (starts_with(ltrim({_i(f)}), '{{') "
                 f"and json_valid({_i(f)})))", f"wrong type: {f}")
            )
    for f in TOKEN_FIELDS:
        rules.append((f"coalesce({_i('t_' + f)} < 0, false)", f"negative tokens: {f}"))
    rules.append(
        ("coalesce(coalesce(t_cache_read_input_tokens, 0) + coalesce(t_cache_write_input_tokens, 0)"
         " > t_input_tokens, false)", "cache tokens above input tokens")
    )
    failed = "\n                or ".join(cond for cond, _ in rules)
    listed = ",\n                ".join(f"case when {cond} then {_q(msg)} end" for cond, msg in rules)
    rule_text = f"case when {failed} then concat_ws('; ', {listed}) end"
    keep = ", ".join(_i(f) for f in TEXT_FIELDS)
    typed_cols = ", ".join(_i("t_" + f) for f, t in NATIVE_FIELDS.items() if t in TYPED_KINDS)
    return f"""
      select {file_idx_sql} as file_idx, {source_file_sql} as source_file,
             {_q(fmt)} as source_format,
             source_line, {keep}, extra, {typed_cols}, reason,
             case when parse_error is not null then raw_line
                  when reason is not null then {_rebuilt_raw_line()} end as raw_line,
             reason is not null and parse_error is not null as unparsed,
             case when reason is null then {_needs_redaction_expr()} end as needs_pii
      from (
        select *, coalesce(parse_error, {rule_text}) as reason
        from (select *, {", ".join(typed)} from {reader_table}) t
      )
    """


def _read_batch(con, files: list[Path], names: list[str], batch: list[int], progress,
                n: int) -> str | None:
    """Read the native JSON-lines files ``batch`` (indexes into ``files``) with one parallel
    scan into ``_tb_typed_batch``; returns the SELECT of their records for ``_tb_typed``, or
    None when a row cannot be matched to its file (then read them one by one). A file DuckDB
    cannot read in the batch is read alone, which names it."""
    from ingestion.gateway import native

    paths = [str(files[i]) for i in batch]  # distinct: expand_paths names each file once
    idx_list = "[" + ", ".join(str(i) for i in batch) + "]"
    name_list = "[" + ", ".join(_q(names[i]) for i in batch) + "]"
    path_list = "[" + ", ".join(_q(p) for p in paths) + "]"
    pos = f"list_position({path_list}, filename)"
    _drop(con, "_tb_read_batch", "_tb_typed_batch", "_tb_first_batch")
    try:
        native.read_many(con, [files[i] for i in batch], "_tb_read_batch")
        select = _typed_select("_tb_read_batch", f"{idx_list}[{pos}]", f"{name_list}[{pos}]",
                               "native")
        con.execute(f"create temp table _tb_typed_batch as {select}")
    except Exception as exc:
        _drop(con, "_tb_read_batch", "_tb_typed_batch")
        for i in batch:  # the culprit raises ReaderError with its name
            native.read(con, files[i], "_tb_read_probe")
            _drop(con, "_tb_read_probe")
        raise IngestError(f"reading {len(batch)} files together failed: {exc}") from exc
    _drop(con, "_tb_read_batch")
    if con.execute("select count(*) from _tb_typed_batch where file_idx is null").fetchone()[0]:
        # DuckDB named a file otherwise than it was given: read the files one by one
        _drop(con, "_tb_typed_batch")
        return None
    # rows are in file order, then line order: a line number is the row's position in its file
    con.execute(
        "create temp table _tb_first_batch as "
        "select file_idx, min(rowid) as first_row from _tb_typed_batch group by file_idx"
    )
    if progress:
        progress("read", len(batch), n, f"{len(batch)} files together")
    return (
        "select t.* replace (t.rowid - f.first_row + 1 as source_line) "
        "from _tb_typed_batch t join _tb_first_batch f using (file_idx) "
        f"where t.reason is distinct from {_q(SKIP)}"
    )


def _read_typed(con, reader, path: Path, idx: int, source_name: str, fmt: str) -> str:
    """Read one file into ``_tb_typed_{idx}`` (typed, validated, in file order); returns the
    SELECT of its records (line numbers filled in) for the ``_tb_typed`` view."""
    reader_table, typed_table = f"_tb_read_{idx}", f"_tb_typed_{idx}"
    fixed = f"{typed_table}_fix"
    _drop(con, typed_table, fixed)
    positional = reader(con, path, reader_table)

    def create(source: str, into: str) -> None:
        select = _typed_select(source, str(idx), _q(source_name), fmt)
        con.execute(f"create temp table {into} as {select}")

    create(reader_table, typed_table)
    replaced = False
    if isinstance(positional, PositionalRead):
        fix = positional.fix_table
        rows, stray = con.execute(
            "select count(*), count(*) filter (where raw_line = '{}'"
            + (f" and rowid + 1 not in (select source_line from {fix})" if fix else "")
            + f") from {typed_table}"
        ).fetchone()
        if rows != positional.records or stray:
            # the fast view does not line up with the file's lines: read it the exact way
            _drop(con, typed_table, reader_table, *([fix] if fix else []))
            positional.exact()
            create(reader_table, typed_table)
        elif fix:
            create(fix, fixed)
            _drop(con, fix)
            replaced = True
    _drop(con, reader_table)
    # a positional reader leaves source_line NULL: the row's position is its line number
    records = (
        f"select * replace (coalesce(source_line, rowid + 1) as source_line) "
        f"from {typed_table} where reason is distinct from {_q(SKIP)}"
    )
    if replaced:
        records += (f" and rowid + 1 not in (select source_line from {fixed})\n"
                    f"union all select * from {fixed}")
    return records


def _rebuilt_raw_line(typed: bool = False) -> str:
    """JSON text of a rejected record from its columns (staged only: ``_stage`` then applies
    the field rules, prompt text dropped and identifiers pseudonymised, before it lands).
    ``typed``: from the typed table (records rejected after typing, e.g. out of window);
    otherwise from the reader's text columns (a value that is valid JSON keeps its JSON type,
    ``"many"`` tokens stay a string)."""
    def value(f: str) -> str:
        if typed and NATIVE_FIELDS[f] == "timestamp":
            return f"strftime({_i('t_' + f)}, '%Y-%m-%dT%H:%M:%S.%fZ')"
        if typed and NATIVE_FIELDS[f] in TYPED_KINDS:
            return _i("t_" + f)
        if NATIVE_FIELDS[f] == "json" or (not typed and NATIVE_FIELDS[f] in TYPED_KINDS
                                          and NATIVE_FIELDS[f] != "timestamp"):
            return f"coalesce(try_cast({_i(f)} as JSON), to_json({_i(f)}))"
        return _i(f)

    pairs = ", ".join(f"{_i(f)}: {value(f)}" for f in NATIVE_FIELDS)
    return (
        f"json_merge_patch(json_merge_patch('{{}}', to_json({{{pairs}}})), coalesce(extra, '{{}}'))"
        "::VARCHAR"
    )


def _needs_redaction_expr() -> str:
    # The cheap gate only (one regex, a guaranteed superset of what the redactor changes):
    # the full redactor then runs on the flagged rows alone, in _stage, in its own statement.
    # A flagged row the redactor leaves unchanged lands unchanged and counts nothing.
    text = "concat_ws(chr(10), " + ", ".join(_i(f) for f in SCANNED_FIELDS) + ")"
    return redact.may_contain_pii_sql(text)


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------


def _progress_of(con) -> float:
    """DuckDB's progress (0-100) on the statement running on ``con``; -1 when none is (or
    the connection is between statements or closing)."""
    try:
        return con.query_progress()
    except Exception:
        return -1


class _Watch:
    """While a long statement runs, report DuckDB's progress on it: a thread polls
    ``con.query_progress()`` (made for that) and calls ``progress(stage, done, total,
    f"{label} NN%")`` when the percentage moves. No-op without a progress callback."""

    every = 0.5  # seconds between polls

    def __init__(self, con, progress, stage: str, done: int, total: int, label: str) -> None:
        self.con, self.progress = con, progress
        self.args = (stage, done, total, label)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Watch:
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


def _setup(con) -> None:
    con.execute("set timezone = 'UTC'")
    # line numbers of positional readers are row positions: order must be kept
    con.execute("set preserve_insertion_order = true")
    # progress is tracked (for _Watch) but never printed by DuckDB itself
    con.execute("set enable_progress_bar = true")
    con.execute("set enable_progress_bar_print = false")
    con.execute(
        """
        create or replace temp macro tb_int(x) as (
            case when try_cast(x as DOUBLE) = floor(try_cast(x as DOUBLE))
                 then try_cast(try_cast(x as DOUBLE) as BIGINT) end)
        """
    )


def _drop(con, *names: str) -> None:
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


def _open(settings):
    """(staging connection, sink, warehouse) for the configured warehouse."""
    from core.warehouse import connect_duckdb, parse_warehouse

    wh = parse_warehouse(settings.warehouse)
    if wh.kind == "duckdb":
        from ingestion.raw.sinks.duckdb import DuckDBSink

        con = connect_duckdb(wh, wait_seconds=settings.lock_wait_seconds)
        sink = DuckDBSink()
    else:
        import tempfile

        import duckdb

        from ingestion.raw.sinks.bigquery import BigQuerySink  # lazy: google libraries are heavy

        # in-memory staging; what exceeds the memory limit spills under the system temp dir
        spill = Path(tempfile.gettempdir()) / "tokenbook-duckdb-spill"
        con = duckdb.connect(config={"temp_directory": str(spill)})
        sink = BigQuerySink.from_settings(settings)
    if hasattr(sink, "prepare"):
        sink.prepare(con)
    return con, sink, wh


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
    timings: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    marks = [t0, c0]

    def lap(stage: str) -> None:
        # wall and CPU (all threads of this process) seconds of one stage
        now, cpu = time.perf_counter(), time.process_time()
        timings[stage], timings[stage + "_cpu"] = now - marks[0], cpu - marks[1]
        marks[:] = [now, cpu]

    remote = tempfile.TemporaryDirectory(prefix="tokenbook-gcs-")
    try:
        return _ingest(paths, settings, date, window_days, fmt, progress, con, memory_limit,
                       started, timings, lap, t0, c0, remote, replace)
    except LoadRefused:
        raise
    except Exception as exc:
        # a damaged .gz surfaces as whatever DuckDB or gzip raised: name the file and the byte
        _raise_if_damaged_gzip(paths, exc)
        raise
    finally:
        remote.cleanup()


def _raise_if_damaged_gzip(paths, exc: Exception) -> None:
    """After a failed load: stream each local ``.gz`` input and raise ReaderError naming the
    first damaged one and the byte where reading failed (only on failure: it reads them all)."""
    from ingestion.raw.sniff import gzip_error

    try:
        files = expand_paths([p for p in paths if not str(p).startswith("gs://")])
    except ReaderError:
        return
    for f in files:
        if f.name.lower().endswith(".gz"):
            broken = gzip_error(f)
            if broken:
                raise ReaderError(broken) from exc


def _fetch_remote(paths: Iterable[str | Path], into: Path) -> tuple[list[str | Path], dict]:
    """gs:// arguments downloaded (one request per object) into ``into``; returns the local
    arguments and a map local file -> the name recorded as source_file."""
    local: list[str | Path] = []
    names: dict[str, str] = {}
    for arg in paths:
        if str(arg).startswith("gs://"):
            from ingestion.raw.fetch import fetch_gcs

            for f in fetch_gcs(str(arg), into):
                names[str(f)] = "gs://" + f.relative_to(into).as_posix()
                local.append(f)
        else:
            local.append(arg)
    return local, names


def _ingest(paths, settings, date, window_days, fmt, progress, con, memory_limit, started,
            timings, lap, t0, c0, remote, replace=False):
    local, names = _fetch_remote(paths, Path(remote.name))
    files = expand_paths(local)
    source_names = [names.get(str(f), str(f)) for f in files]
    # say what each file is: a CSV, a JSON document, a billing export ... is refused by name
    formats = [check_file(f, None if fmt in (None, "auto") else fmt) for f in files]
    readers = {name: get_reader(name) for name in set(formats)}
    before = window_days if window_days is not None else settings.window_days_before
    after = settings.window_days_after
    if before < 0 or after < 0:
        raise IngestError("window days must be >= 0")

    own_con = con is None
    if own_con:
        con, sink, wh = _open(settings)
        warehouse_url = wh.location  # what was opened: the DuckDB file's absolute path
        if memory_limit:
            # staged rows spill to DuckDB's temp directory instead of growing the process
            con.execute(f"set memory_limit = {_q(memory_limit)}")
    else:
        from ingestion.raw.sinks.duckdb import DuckDBSink

        sink = DuckDBSink()
        sink.prepare(con)
        warehouse_url = "(given connection)"
    report = IngestReport(load_id=uuid.uuid4().hex, warehouse=warehouse_url)
    try:
        _setup(con)
        _drop(con, "_tb_typed")
        n = len(files)
        # 1-2. read each file and type/validate it into its own table (one order-preserving
        # statement, so a positional reader's row position is its line number)
        union: list[str] = []
        # Small and gzip native JSON-lines files are read together, one parallel scan of many
        # files (a backfill of daily .jsonl.gz files); the others one by one.
        batch = [i for i in range(n) if formats[i] == "native" and native_batchable(files[i])]
        if len(batch) > 1:
            if progress:
                progress("read", 0, n, f"{len(batch)} files together")
            with _Watch(con, progress, "read", 0, n, f"{len(batch)} files together"):
                together = _read_batch(con, files, source_names, batch, progress, n)
            if together is None:
                batch = []
            else:
                union.append(together)
        else:
            batch = []
        done = len(batch)
        for idx, (path, name) in enumerate(zip(files, formats, strict=True)):
            if idx in batch:
                continue
            if progress:
                progress("read", done, n, str(path))
            with _Watch(con, progress, "read", done, n, str(path)):
                union.append(_read_typed(con, readers[name], path, idx, source_names[idx], name))
            done += 1
            if progress:
                progress("read", done, n, str(path))
        con.execute("create or replace temp view _tb_typed as " + "\nunion all\n".join(union))
        lap("read_validate")

        # 3. load date per file
        if date is not None:
            file_dates = {i: date for i in range(n)}
        else:
            rows = con.execute(
                """
                select file_idx,
                       max(case when reason is null then t_timestamp end)::DATE,
                       max(t_timestamp)::DATE
                from _tb_typed group by file_idx
                """
            ).fetchall()
            found = {i: valid or anyts for i, valid, anyts in rows}
            file_dates = {}
            for i, name in enumerate(source_names):
                if found.get(i) is None:
                    raise IngestError(_undatable(con, i, name))
                file_dates[i] = found[i]
        con.execute("create or replace temp table _tb_dates (file_idx INTEGER, load_date DATE)")
        con.executemany("insert into _tb_dates values (?, ?)", list(file_dates.items()))

        # 4-5. window, dedupe, final status. Only the repeated ids are materialised (few):
        # no sort or copy of the wide typed rows.
        out_of_window = (
            f"(t.reason is null and (t.t_timestamp < d.load_date - interval {int(before)} day "
            f"or t.t_timestamp >= d.load_date + interval {int(after)} day))"
        )
        accepted = f"t.reason is null and not {out_of_window}"
        # Repeated ids are found on 64-bit hashes first (an integer aggregate over every row),
        # then confirmed on the ids themselves among the few rows whose hash repeats.
        con.execute(
            f"""
            create or replace temp table _tb_dups as
            with repeated as (
                select d.load_date, hash(t.request_id) as h
                from _tb_typed t join _tb_dates d using (file_idx)
                where {accepted}
                group by all having count(*) > 1
            )
            select d.load_date, t.request_id,
                   min({{'f': t.file_idx, 'l': t.source_line}}) as first_row
            from _tb_typed t join _tb_dates d using (file_idx)
            join repeated r on r.load_date = d.load_date and r.h = hash(t.request_id)
            where {accepted}
            group by all having count(*) > 1
            """
        )
        # the repeated ids' later rows: duplicates (first kept, by file order given, then line)
        con.execute(
            f"""
            create or replace temp table _tb_losers as
            select t.file_idx, t.source_line
            from _tb_typed t join _tb_dates d using (file_idx)
            join _tb_dups x on x.load_date = d.load_date and x.request_id = t.request_id
            where {accepted} and {{'f': t.file_idx, 'l': t.source_line}} <> x.first_row
            """
        )
        con.execute(
            f"""
            create or replace temp view _tb_rows as
            select t.* replace (
                       coalesce(t.reason, case when {out_of_window} then 'out of window' end)
                           as reason),
                   d.load_date,
                   case when t.reason is not null or {out_of_window} then 'quarantined'
                        when l.file_idx is not null then 'duplicate'
                        else 'loaded' end as row_status
            from _tb_typed t join _tb_dates d using (file_idx)
            left join _tb_losers l using (file_idx, source_line)
            """
        )
        lap("window_dedupe")

        # 6. stage the three data tables. A sink whose published rows can be read back through
        # this connection (DuckDB) takes the calls straight from a view: no staged copy.
        # Otherwise (BigQuery) the calls are materialised and the reading tables dropped.
        direct = sink.calls_table is not None
        _stage(con, settings, materialise_calls=not direct)
        lap("redact_stage")

        # per-file counts (audit and report)
        con.execute(
            f"""
            create or replace temp table _tb_files as
            select d.file_idx, d.load_date,
                   coalesce(r.rows_read, 0) as rows_read,
                   coalesce(r.rows_loaded, 0) as rows_loaded,
                   coalesce(r.rows_quarantined, 0) as rows_quarantined,
                   coalesce(r.rows_duplicate, 0) as rows_duplicate,
                   coalesce(r.rows_unknown_tier, 0) as rows_unknown_tier
            from _tb_dates d left join (
                select file_idx, count(*) as rows_read,
                       count(*) filter (where row_status = 'loaded') as rows_loaded,
                       count(*) filter (where row_status = 'quarantined') as rows_quarantined,
                       count(*) filter (where row_status = 'duplicate') as rows_duplicate,
                       count(*) filter (where row_status = 'loaded'
                                        and {tiers.unknown_sql('service_tier')})
                           as rows_unknown_tier
                from _tb_rows group by file_idx
            ) r using (file_idx)
            order by d.file_idx
            """
        )
        staging = ("_tb_rows", "_tb_typed", "_tb_dups", "_tb_losers", "_tb_red", "_tb_customers",
                   "_tb_typed_batch", "_tb_first_batch",
                   *(f"_tb_typed_{i}{x}" for i in range(n) for x in ("", "_fix")))
        if not direct:
            _drop(con, *staging)
        counts = con.execute(
            "select file_idx, load_date, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
            "from _tb_files order by file_idx"
        ).fetchall()
        report.files = [
            FileReport(source_names[i], formats[i], d, read_, loaded, quar, dup)
            for i, d, read_, loaded, quar, dup in counts
        ]
        for i, unknown in con.execute(
            "select file_idx, rows_unknown_tier from _tb_files where rows_unknown_tier > 0 "
            "order by file_idx"
        ).fetchall():
            report.notes.append(
                f"{source_names[i]}: {unknown:,} loaded calls carry a service_tier outside "
                f"{', '.join(sorted(set(tiers.SERVICE_TIERS.values())))} (kept as logged, priced "
                "at the standard price; see ingestion/gateway/tiers.py)"
            )

        # 7. publish each load date, then the audit; first the shrink guard: a load date
        # offering no valid record, or under 10% of what its partition holds, is refused
        load_dates = sorted(set(file_dates.values()))
        offered = {d: 0 for d in load_dates}
        for f in report.files:
            offered[f.load_date] += f.rows_loaded
        shrinking = guard.shrinks(offered, sink.partition_rows(con, load_dates), SOURCE)
        if shrinking and not replace:
            _append_audit(con, sink, report, started, guard.REFUSED)
            _drop(con, "_tb_calls", "_tb_quarantine", "_tb_pii", *staging)
            raise LoadRefused(
                shrinking,
                "Rejected records, if any, are not stored either: look at the file (a broken "
                "export, the wrong file or the wrong --date?).",
            )
        # Row order inside a partition means nothing (every reader of raw.* orders or groups):
        # without it DuckDB inserts from all threads. (Line numbers were fixed by position
        # above, where order is kept.)
        con.execute("set preserve_insertion_order = false")
        try:
            label = f"{len(load_dates)} dates"
            if progress:
                progress("publish", 0, len(load_dates), label)
            # one long insert (DuckDB) shows its percentage; a sink working date by date
            # (BigQuery) reports each date instead
            watch = (_Watch(con, progress, "publish", 0, len(load_dates), label) if direct
                     else contextlib.nullcontext())
            with watch:
                sink.replace_partitions(
                    con, load_dates, PartitionTables("_tb_calls", "_tb_quarantine", "_tb_pii"),
                    progress=functools.partial(progress, "publish") if progress else None,
                )
            if progress:
                progress("publish", len(load_dates), len(load_dates), "")
        except BaseException:
            _append_audit(con, sink, report, started, "failed")
            raise
        finally:
            con.execute("set preserve_insertion_order = true")
        _append_audit(con, sink, report, started, "loaded")
        _drop(con, "_tb_calls", "_tb_quarantine", "_tb_pii", *(staging if direct else ()))
        lap("publish")

        timings["total"] = time.perf_counter() - t0
        timings["total_cpu"] = time.process_time() - c0
        report.timings = timings
        return report
    finally:
        if own_con:
            con.close()


def _undatable(con, idx: int, name: str) -> str:
    """Why file ``idx`` cannot be dated, as advice that helps: an empty file or one with no
    valid record is not fixed by a --date (the load would then be refused as empty);
    only a file whose records are valid but carry no timestamp is."""
    records, invalid = guard.no_valid_rows(con, "_tb_typed", idx, "record")
    if records == 0:
        return f"{name} holds no record (an empty file or only blank lines): nothing to load"
    if invalid:
        return (f"{name} has no valid record ({invalid}): nothing was "
                "loaded. Is it the right file, in a format ingest gateway reads?")
    return (f"{name}: no record with a parseable timestamp, so the file cannot be dated; pass "
            "--date YYYY-MM-DD")


def _stage(con, settings, materialise_calls: bool = True) -> None:
    """_tb_calls (a table, or with ``materialise_calls`` false a view over _tb_rows, _tb_red and
    _tb_customers, which then stay until published), _tb_quarantine, _tb_pii from _tb_rows
    (all load dates).

    Only the rows flagged ``needs_pii`` (the redactor changes their concatenated text) are
    redacted, each field once, into _tb_red; every other row passes through untouched.
    Counts come from (original, redacted) pairs, so no field is redacted twice."""
    # One redaction expression for all fields: unpivot the flagged rows to (field, value).
    fields = ", ".join(_i(f) for f in SCANNED_FIELDS)
    con.execute(
        f"""
        create or replace temp table _tb_red_long as
        select * from (
            select file_idx, source_line, load_date, source_file, field, value,
                   {redact.redact_sql('value')} as red
            from (
                unpivot (
                    select file_idx, source_line, load_date, source_file, {fields}
                    from _tb_rows where needs_pii and row_status = 'loaded'
                ) on {fields} into name field value value
            )
            where {redact.may_contain_pii_sql('value')}
        ) where red <> value
        """
    )
    # _tb_red_long holds only the values the redactor changed (the gate flags a superset of
    # rows, then of their values); a row's map has its changed fields, the others land as is.
    con.execute(
        """
        create or replace temp table _tb_red as
        select file_idx, source_line, map_from_entries(list({'k': field, 'v': red})) as m
        from _tb_red_long group by file_idx, source_line
        """
    )
    def as_json(col: str) -> str:
        return (
            f"case when {col} is null then NULL::JSON when json_valid({col}) then ({col})::JSON "
            f"else to_json({col}) end"
        )

    def calls_select() -> str:
        # One pass over the loaded rows; a row in _tb_red takes its redacted fields from there.
        exprs = {
            "load_date": "r.load_date",
            "call_ts": "t_timestamp",
            "batch": "t_batch",
            "gateway_cost_usd": "t_cost_usd",
            "customer_id": "c.pseudonym",
            "source_format": "source_format",
            "source_file": "r.source_file",
            "source_line": "r.source_line",
        }

        def red(f: str) -> str:
            # a changed value is never NULL: a missing key means the field was not changed
            return f"coalesce(x.m[{_q(f)}], r.{_i(f)})"

        for f, t in NATIVE_FIELDS.items():
            if t in {"int", "float"}:
                exprs[f] = f"t_{f}"
            elif f in FREE_TEXT_FIELDS:
                exprs[f] = red(f)
        exprs["service_tier"] = tiers.normalise_sql(red("service_tier"))
        for f in ("metadata", "extra"):
            exprs[f] = as_json(red(f))
        cols = ",\n            ".join(
            f"cast({exprs[name]} as {ddb}) as {name}" for name, ddb, _ in GATEWAY_CALLS_COLUMNS
        )
        return (
            f"select {cols} from _tb_rows r "
            "left join _tb_red x using (file_idx, source_line) "
            "left join _tb_customers c on c.customer_id = r.customer_id "
            "where r.row_status = 'loaded'"
        )

    # Pseudonyms of the distinct customer ids (few), joined back: one HMAC per customer.
    con.execute(
        f"""
        create or replace temp table _tb_customers as
        select customer_id, {redact.pseudonymise_sql('customer_id', settings.pii_key)} as pseudonym
        from (select distinct customer_id from _tb_typed
              where reason is null and customer_id is not null)
        """
    )

    kind = "table" if materialise_calls else "view"
    _drop(con, "_tb_calls")
    con.execute(f"create temp {kind} _tb_calls as {calls_select()}")

    # Quarantined rows in two steps. Finding them reads a few narrow columns; a record the
    # rules rejected already carries its line (rebuilt from its fields; or, not parsed, its own
    # text). Only records rejected after typing (out of window) need their line rebuilt from
    # every column, so only those rows are fetched wide: one scan of all the typed columns cost
    # ~2 s at 5M rows (the typed rows spill to disk).
    con.execute(
        """
        create or replace temp table _tb_qrows as
        select load_date, source_file, source_line, reason, raw_line, unparsed, file_idx
        from _tb_rows where row_status = 'quarantined'
        """
    )
    q = "_tb_qrows"
    if con.execute("select count(*) from _tb_qrows where raw_line is null").fetchone()[0]:
        q = f"""(
            select q.* replace (coalesce(q.raw_line, w.rebuilt) as raw_line)
            from _tb_qrows q left join (
                select file_idx, source_line, {_rebuilt_raw_line(typed=True)} as rebuilt
                from _tb_typed semi join (
                    select file_idx, source_line from _tb_qrows where raw_line is null
                ) k using (file_idx, source_line)
            ) w using (file_idx, source_line)
        )"""
    # The record after the field rules of a loaded row: prompt text dropped (counted under its
    # field), identifiers replaced by the SAME keyed pseudonyms as loaded rows (PII in them
    # counted under their field), then the whole record redacted (counted under raw_line).
    sensitive = (*IDENTIFIER_FIELDS, *PROMPT_TEXT_FIELDS)
    taken = ", ".join(
        f"case when not unparsed then raw_line->>{_q(f)} end as {_i(f)}" for f in sensitive)
    patch = ", ".join(
        [f"{_q(f)}, {redact.pseudonymise_sql(_i(f), settings.pii_key)}" for f in IDENTIFIER_FIELDS]
        + [f"{_q(f)}, NULL" for f in PROMPT_TEXT_FIELDS]
    )
    record = (f"case when unparsed then raw_line "
              f"else json_merge_patch(raw_line, json_object({patch}))::VARCHAR end")
    con.execute(
        f"""
        create or replace temp table _tb_quarantine as
        select load_date, {_q(SOURCE)} as source, source_file, source_line as line_number,
               reason,
               case when unparsed then {redact.unparsed_line_sql('raw_line')}
                    else {redact.redact_sql('_record')} end as raw_line,
               _record, unparsed as _unparsed, {", ".join(_i(f) for f in sensitive)}, file_idx
        from (select *, {record} as _record from (select *, {taken} from {q}))
        """
    )
    _drop(con, "_tb_qrows")
    # Counts by field and kind: loaded rows that needed redaction; quarantined records (the
    # record as stored, and the identifier and prompt fields it no longer holds); lines that
    # did not parse (what the redactor finds in the whole line, of which only the shape stays).
    field_counts = "".join(
        f"\n        union all\n        select load_date, source_file, {_q(f)}, {_i(f)}, "
        f"{redact.redact_sql(_i(f))} from _tb_quarantine "
        f"where not _unparsed and {_i(f)} is not null"
        for f in sensitive
    )
    con.execute(
        f"""
        create or replace temp table _tb_qred_long as
        select load_date, source_file, 'raw_line' as field, _record as value,
               case when _unparsed then {redact.redact_sql('_record')} else raw_line end as red
        from _tb_quarantine{field_counts}
        """
    )
    kinds = redact.pii_count_redacted_sql("value", "red")
    sums = ", ".join(f"coalesce(sum({e}), 0)::BIGINT as {_i(k)}" for k, e in kinds.items())
    con.execute(
        f"""
        create or replace temp table _tb_pii as
        with counts as (
            unpivot (
                select load_date, source_file, field, {sums}
                from (select load_date, source_file, field, value, red from _tb_red_long
                      union all
                      select load_date, source_file, field, value, red from _tb_qred_long)
                group by load_date, source_file, field
            ) on {", ".join(_i(k) for k in kinds)} into name kind value redactions
        )
        select load_date, {_q(SOURCE)} as source, source_file, field, kind,
               sum(redactions)::BIGINT as redactions
        from counts where redactions > 0
        group by all
        """
    )
    for col in ("_record", "_unparsed", *sensitive):
        con.execute(f"alter table _tb_quarantine drop column {_i(col)}")
    _drop(con, "_tb_qred_long")
    _drop(con, "_tb_red_long", *(("_tb_red", "_tb_customers") if materialise_calls else ()))


def _append_audit(con, sink, report: IngestReport, started: datetime, status: str) -> None:
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
                f.rows_quarantined, f.rows_duplicate, started, finished, status,
            )
            for f in report.files
        ],
    )
    sink.append_audit(con, "_tb_audit")


__all__ = [
    "FileReport",
    "IngestError",
    "IngestReport",
    "ReaderError",
    "ingest_gateway",
]
