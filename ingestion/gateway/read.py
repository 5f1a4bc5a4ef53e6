"""Read the load's files into typed, validated TEMP tables, one view over them all.

Which files: ``gs://`` arguments are downloaded first (``fetch_remote``), folders and globs
expanded, and each file's format checked from its head (``resolve_inputs``: a CSV, a JSON
document or a billing export is refused by name). Then each file goes through its format's
reader (``readers.py``) into a TEMP table or view of text, and one order-preserving statement
(``validate.typed_select``) types and validates it into ``_tb_typed_<idx>``, so a positional
reader's row position is its line number. Small and gzip native JSON-lines files are read
together, one parallel multi-file scan (``_read_batch``). ``read_files`` leaves the view
``_tb_typed`` (every record of every file, line numbers filled in).

A JSON-lines file with lines that are not UTF-8 makes its reader fail (DuckDB refuses the whole
file); only then ``_read_file`` takes the slow path of ``raw/non_utf8.py``: a repaired copy,
read by the same reader, its bad lines quarantined with the reason (see ``_read_file``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ingestion.gateway import litellm, native
from ingestion.gateway.context import IngestError, LoadContext
from ingestion.gateway.native import batchable as native_batchable
from ingestion.gateway.readers import (
    SKIP,
    PositionalRead,
    ReaderError,
    SkippedRecords,
    StreamedRead,
    check_file,
    expand_paths,
    get_reader,
    is_gzip,
)
from ingestion.gateway.session import Watch, drop, unordered
from ingestion.gateway.session import q as _q
from ingestion.gateway.validate import typed_select
from ingestion.raw import non_utf8
from ingestion.raw.fetch import fetch_gcs
from ingestion.raw.sniff import SniffError, gzip_error, sniff


def fetch_remote(paths: Iterable[str | Path], into: Path) -> tuple[list[str | Path], dict]:
    """gs:// arguments downloaded (one request per object) into ``into``; returns the local
    arguments and a map local file -> the name recorded as source_file."""
    local: list[str | Path] = []
    names: dict[str, str] = {}
    for arg in paths:
        if str(arg).startswith("gs://"):
            for f in fetch_gcs(str(arg), into):
                names[str(f)] = "gs://" + f.relative_to(into).as_posix()
                local.append(f)
        else:
            local.append(arg)
    return local, names


def resolve_inputs(paths: Iterable[str | Path], fmt: str | None,
                   remote: Path) -> tuple[list[Path], list[str], list[str]]:
    """(files, the names recorded as source_file, their formats) for the load's arguments;
    says what each file is: a CSV, a JSON document, a billing export ... is refused by name."""
    local, names = fetch_remote(paths, remote)
    files = expand_paths(local)
    source_names = [names.get(str(f), str(f)) for f in files]
    formats = [check_file(f, None if fmt in (None, "auto") else fmt) for f in files]
    return files, source_names, formats


def raise_if_damaged_gzip(paths, exc: Exception) -> None:
    """After a failed load: stream each local ``.gz`` input and raise ReaderError naming the
    first damaged one and the byte where reading failed (only on failure: it reads them all)."""
    try:
        files = expand_paths([p for p in paths if not str(p).startswith("gs://")])
    except ReaderError:
        return
    for f in files:
        if f.name.lower().endswith(".gz"):
            broken = gzip_error(f)
            if broken:
                raise ReaderError(broken) from exc


# The text one batch read holds at most (a gzip file counts 8 times its size, about what it
# inflates to): the batch's line table is one DuckDB statement's, and past the connection's
# memory limit it spills; past this, the next files start another batch.
BATCH_MAX_TOTAL_BYTES = 512 * 1024 * 1024


def batch_groups(files: list[Path], idxs: list[int]) -> list[list[int]]:
    """``idxs`` in order, cut into runs whose files add up to at most BATCH_MAX_TOTAL_BYTES
    (a run holds at least one file)."""
    groups: list[list[int]] = []
    total = 0
    for i in idxs:
        path = Path(files[i])
        size = path.stat().st_size * (8 if is_gzip(path) else 1)
        if not groups or total + size > BATCH_MAX_TOTAL_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


def read_files(ctx: LoadContext) -> None:
    """Every file typed and validated; leaves the view ``_tb_typed`` over all their records."""
    con, n = ctx.con, ctx.n
    drop(con, "_tb_typed")
    readers = {name: get_reader(name) for name in set(ctx.formats)}
    union: list[str] = []
    # Small and gzip native JSON-lines files are read together, one parallel scan of many
    # files (a backfill of daily .jsonl.gz files); small LiteLLM ones likewise (a bucket
    # logger writes one object per call); the others one by one.
    batch = _read_together(ctx, union, "native", native_batchable, "files", _read_batch)
    batch |= _read_together(ctx, union, "litellm", litellm.batchable, "LiteLLM files",
                            _read_litellm_batch, start=len(batch))
    done = len(batch)
    for idx, (path, fmt) in enumerate(zip(ctx.files, ctx.formats, strict=True)):
        if idx in batch:
            continue
        ctx.say("read", done, n, str(path))
        with Watch(con, ctx.progress, "read", done, n, str(path)):
            records, skipped, repaired = _read_file(ctx, readers[fmt], idx, fmt)
            union.append(records)
            note = skipped.note(ctx.source_names[idx]) if skipped else None
            if note:
                ctx.report.notes.append(note)
            if repaired is not None:
                ctx.report.notes.append(repaired.note(ctx.source_names[idx]))
            slow = native.one_pass_note(path) if fmt == "native" else None
            if slow:
                ctx.report.notes.append(slow)
        done += 1
        ctx.say("read", done, n, str(path))
    con.execute("create or replace temp view _tb_typed as " + "\nunion all\n".join(union))


def _read_together(ctx: LoadContext, union: list[str], fmt: str, batchable, what: str, read,
                   start: int = 0) -> set[int]:
    """Read the files of format ``fmt`` that ``batchable`` accepts together, in batches of at
    most BATCH_MAX_TOTAL_BYTES (``batch_groups``), each with ``read``; appends each batch's
    SELECT to ``union`` and returns the indexes read. A batch ``read`` gives back (None) and a
    file alone in its batch are left to be read one by one."""
    candidates = [i for i in range(ctx.n) if ctx.formats[i] == fmt and batchable(ctx.files[i])]
    done: set[int] = set()
    for k, group in enumerate(batch_groups(ctx.files, candidates)):
        if len(group) < 2:
            continue  # a file alone takes its own path
        label = f"{len(group)} {what} together"
        ctx.say("read", start + len(done), ctx.n, label)
        with Watch(ctx.con, ctx.progress, "read", start + len(done), ctx.n, label):
            together = read(ctx.con, ctx.files, ctx.source_names, group, suffix=str(k))
        if together is not None:
            union.append(together)
            done.update(group)
            ctx.say("read", start + len(done), ctx.n, label)
    return done


def _file_of_row(files: list[Path], names: list[str], batch: list[int]) -> tuple[str, str]:
    """SQL for a batch row's file index and recorded name, from DuckDB's ``filename``."""
    pos = "list_position([" + ", ".join(_q(str(files[i])) for i in batch) + "], filename)"
    return ("[" + ", ".join(str(i) for i in batch) + f"][{pos}]",
            "[" + ", ".join(_q(names[i]) for i in batch) + f"][{pos}]")


def _read_batch(con, files: list[Path], names: list[str], batch: list[int],
                suffix: str = "") -> str | None:
    """Read the native JSON-lines files ``batch`` (indexes into ``files``) with one parallel
    scan into ``_tb_typed_batch{suffix}``; returns the SELECT of their records for
    ``_tb_typed``, or None when a row cannot be matched to its file (then read them one by
    one). A file DuckDB cannot read in the batch is read alone, which names it."""
    read_t, typed_t, first_t = (f"_tb_{t}_batch{suffix}" for t in ("read", "typed", "first"))
    # (distinct paths: expand_paths names each file once)
    idx_sql, name_sql = _file_of_row(files, names, batch)
    drop(con, read_t, typed_t, first_t)
    try:
        native.read_many(con, [files[i] for i in batch], read_t)
        select = typed_select(read_t, idx_sql, name_sql, "native")
        con.execute(f"create temp table {typed_t} as {select}")
    except Exception as exc:
        drop(con, read_t, typed_t)
        if non_utf8.is_not_utf8_error(exc):
            return None  # one by one: the file that holds lines not UTF-8 takes the slow path
        for i in batch:  # the culprit raises ReaderError with its name
            native.read(con, files[i], "_tb_read_probe")
            drop(con, "_tb_read_probe")
        raise IngestError(f"reading {len(batch)} files together failed: {exc}") from exc
    drop(con, read_t)
    if con.execute(f"select count(*) from {typed_t} where file_idx is null").fetchone()[0]:
        # DuckDB named a file otherwise than it was given: read the files one by one
        drop(con, typed_t)
        return None
    # rows are in file order, then line order: a line number is the row's position in its file
    con.execute(
        f"create temp table {first_t} as "
        f"select file_idx, min(rowid) as first_row from {typed_t} group by file_idx"
    )
    return (
        "select t.* replace (t.rowid - f.first_row + 1 as source_line) "
        f"from {typed_t} t join {first_t} f using (file_idx) "
        f"where t.reason is distinct from {_q(SKIP)}"
    )


def _read_litellm_batch(con, files: list[Path], names: list[str],
                        batch: list[int], suffix: str = "") -> str | None:
    """Read the LiteLLM JSON-lines files ``batch`` together (``litellm.read_many``) into
    ``_tb_typed_spend{suffix}``; returns the SELECT of their records for ``_tb_typed``, or
    None when they must be read one by one (a spend-logs page or summary among them, a line
    that is not UTF-8, a row that cannot be matched to its file): then each file is read
    alone, which names the file a failure comes from."""
    read_t, typed_t = f"_tb_read_spend{suffix}", f"_tb_typed_spend{suffix}"
    idx_sql, name_sql = _file_of_row(files, names, batch)
    drop(con, read_t, typed_t)
    try:
        if not litellm.read_many(con, [files[i] for i in batch], read_t):
            return None
        select = typed_select(read_t, idx_sql, name_sql, "litellm")
        con.execute(f"create temp table {typed_t} as {select}")
    except Exception as exc:
        import duckdb

        if "duckdb" not in type(exc).__module__ or isinstance(exc, duckdb.InterruptException):
            raise  # a Ctrl-C (core/interrupts.py) stops the load; it is no reason to go on
        return None  # one by one: the file at fault takes its own path (or is named)
    finally:
        drop(con, read_t)
    if con.execute(f"select count(*) from {typed_t} where file_idx is null").fetchone()[0]:
        drop(con, typed_t)
        return None
    return f"select * from {typed_t} where reason is distinct from {_q(SKIP)}"


def _read_file(ctx: LoadContext, reader, idx: int,
               fmt: str) -> tuple[str, SkippedRecords | None, non_utf8.Repaired | None]:
    """``_read_typed`` of file ``idx``, and the repaired copy it read instead (or None).

    The slow path, taken only after the reader failed on text that is not UTF-8: a JSON-lines
    file is streamed once into a repaired copy in the load's temporary folder
    (``raw/non_utf8.py``: each bad line replaced one for one, line numbers kept), the copy is
    read by the same reader under the file's own name, and each bad line is quarantined with
    its reason (``not UTF-8 text: byte 0xe9 at column 57``) whatever it holds. A file mostly
    not UTF-8 (another encoding) is refused with the ``iconv`` to run, as is a CSV, a JSON
    array or document (their records are not lines)."""
    con, path, name = ctx.con, ctx.files[idx], ctx.source_names[idx]
    try:
        records, skipped = _read_typed(con, reader, path, idx, name, fmt)
        return records, skipped, None
    except Exception as exc:
        if not non_utf8.is_not_utf8_error(exc) or not _json_lines(path):
            raise
        failure = exc
    # a folder of its own: a downloaded gs:// object cannot share the copy's name
    folder = Path(tempfile.mkdtemp(prefix=f"not-utf8-{idx}-", dir=ctx.workdir))
    try:
        try:
            repaired = non_utf8.repair(path, folder)
        except non_utf8.WrongEncoding as exc:
            raise ReaderError(str(exc)) from failure
        if not repaired.bad:  # DuckDB's failure was something else after all
            raise failure
        records, skipped = _read_typed(con, reader, repaired.path, idx, name, fmt)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # every row is in TEMP tables now
    bad = f"_tb_not_utf8_{idx}"
    lines, reasons = repaired.reasons()
    con.execute(f"create or replace temp table {bad} as "
                "select unnest(?::BIGINT[]) as line, unnest(?::VARCHAR[]) as reason",
                [lines, reasons])
    return non_utf8.force_sql(records, bad), skipped, repaired


def _json_lines(path: Path) -> bool:
    """The file is JSON lines (what the slow path of a file not UTF-8 can repair line by line)."""
    if Path(path).name.lower().endswith((".parquet", ".csv", ".csv.gz")):
        return False
    try:
        return sniff(path).kind == "jsonl"
    except SniffError:
        return False


def _read_typed(con, reader, path: Path, idx: int, source_name: str,
                fmt: str) -> tuple[str, SkippedRecords | None]:
    """Read one file into ``_tb_typed_{idx}`` (typed, validated, in file order); returns the
    SELECT of its records (line numbers filled in) for the ``_tb_typed`` view, and what the
    reader skipped by design (or None)."""
    reader_table, typed_table = f"_tb_read_{idx}", f"_tb_typed_{idx}"
    fixed = f"{typed_table}_fix"
    drop(con, typed_table, fixed)
    positional = reader(con, path, reader_table)

    def create(source: str, into: str) -> None:
        select = typed_select(source, str(idx), _q(source_name), fmt)
        con.execute(f"create temp table {into} as {select}")

    joined = None  # a streamed read's odd lines, read the exact way: rows of their own
    if isinstance(positional, StreamedRead):
        try:
            # every row carries its line number: DuckDB need not keep the stream's order
            # (15% of the statement's CPU at 1M lines)
            with unordered(con):
                create(reader_table, typed_table)
        except Exception:
            if positional.unsupported() is None:
                positional.close()
                raise
            # the file holds what only DuckDB's own readers decide: read it with them
            drop(con, typed_table)
            positional = positional.fallback()
            create(reader_table, typed_table)
        else:
            joined = positional.finish()
    else:
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
            drop(con, typed_table, reader_table, *([fix] if fix else []))
            positional.exact()
            create(reader_table, typed_table)
        elif fix:
            create(fix, fixed)
            drop(con, fix)
            replaced = True
    drop(con, reader_table)
    # a positional reader leaves source_line NULL: the row's position is its line number
    records = (
        f"select * replace (coalesce(source_line, rowid + 1) as source_line) "
        f"from {typed_table} where reason is distinct from {_q(SKIP)}"
    )
    if replaced:
        records += (f" and rowid + 1 not in (select source_line from {fixed})\n"
                    f"union all select * from {fixed}")
    elif joined:
        create(joined, fixed)
        drop(con, joined)
        records += f"\nunion all select * from {fixed}"
    return records, positional if isinstance(positional, SkippedRecords) else None
