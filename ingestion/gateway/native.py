"""Reader for the native gateway-log format: JSONL (optionally .gz), JSON arrays, Parquet.

Implements the reader interface of ``ingestion.gateway.readers`` (see its docstring).

Uncompressed JSON-lines files of ``FAST_MIN_BYTES`` and more, and gzip files of
``ONE_PASS_MIN_GZIP_BYTES`` and more, are read by the one-pass reader when it is built
(``jsonl_scan.py`` over ``_jsonl.c``; ``_read_one_pass``): each line is parsed once, in C,
chunks on DuckDB's thread count, into an Arrow stream the typing statement consumes (fields as
DuckDB's JSON functions render them, unknown fields as ``extra``, line numbers); the lines it
sets apart (odd) are read the exact way below. A file holding what only DuckDB's readers decide
(not UTF-8, a 0x1f byte, a bare carriage return, a byte-order mark, a damaged gzip stream)
goes back to DuckDB alone.

Without it (no C compiler, or ``TOKENBOOK_ONE_PASS=0``), JSON lines are read in two parallel
passes, with no Python per line:

1. the line pass: DuckDB's CSV scanner gives each line as text (one VARCHAR column, no
   quoting); ``json_keys`` parses it once and its key list is hashed. A line whose key list is
   one of the known-good lists (seen, with native fields only, among the file's first 20,000
   lines) keeps one byte; a blank line is marked; any other line (not JSON, not an object,
   an unknown field, a key list not in the sample) is "odd" and keeps its text.
2. the record pass: DuckDB's JSON-lines reader (``read_json`` with every native field as
   VARCHAR, ``ignore_errors``) inside the pipeline's typing statement. It yields one row per
   non-blank line, in file order, so a record's line number is its row position (the
   pipeline's order-preserving CREATE TABLE keeps it).

The odd lines are then read the exact way (``_from_json_text``: a multi-path
``json_extract_string`` per line, ``json_keys`` for the unknown fields, kept in ``extra``) into a
fix table whose rows replace the record pass's rows at their positions. A false "known-good"
match would need a 64-bit hash collision between an odd key list and one of the few good ones.
The pipeline checks that the two passes line up (as many rows as non-blank lines, no all-NULL
row where no odd line is); if not, or when a blank line lies between records (positions would
no longer be line numbers) or odd lines are over a fifth of the file, the file is read by the
exact single pass instead: the same per-line reading on every line, in one parallel scan.
``FAST_JSON_LINES = False`` forces the exact pass (tests compare both). Gzip files and files
under ``FAST_MIN_BYTES`` (32 MB) take the exact pass too: one scan is cheaper there. The
pipeline reads several of those together (``batchable``, ``read_many``): one multi-file scan
with a ``filename`` column, rows in file order then line order.

Numbers come out of the record pass as DuckDB renders them (``1.50`` as ``1.5``, ``1e-3`` as
``0.001``): the same values once typed. A record rejected by a validation rule is quarantined
with its fields rebuilt as JSON; an odd line keeps its own text.

A file whose first non-blank character is ``[`` is read as one JSON array (element i is record
i) only when the whole file IS that array (DuckDB's array reader rejects anything after the
closing bracket); otherwise it is JSON lines whose first line is a bad record.

Blank lines are not records (they are skipped but still counted in line numbers); CRLF and LF
line ends both count one line. A bare carriage return inside a line is a line break to the
scanner (the two halves are bad lines; the two passes then disagree and the exact pass runs).
Parquet files are read with ``read_parquet``; every required field must be a column, otherwise
:class:`ReaderError` names the file and the column.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingestion.gateway import jsonl_scan, session
from ingestion.gateway.readers import (
    SKIP,
    PositionalRead,
    ReaderError,
    StreamedRead,
    is_gzip,
    is_parquet,
)
from ingestion.gateway.schema import NATIVE_FIELDS, REQUIRED_FIELDS
from ingestion.raw.sniff import read_failure


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_char(path: Path) -> str:
    import gzip

    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4096)
    except (OSError, EOFError) as exc:
        raise ReaderError(f"cannot read {path}: {exc}") from exc
    stripped = head.lstrip()
    return stripped[:1].decode("latin-1") if stripped else ""


_PATHS = "[" + ", ".join(_sql_str(f'$."{f}"') for f in NATIVE_FIELDS) + "]"
_KNOWN = "[" + ", ".join(_sql_str(f) for f in NATIVE_FIELDS) + "]"


def _good_key_hashes(con, source_sql: str, sample: int = 20000) -> list[int]:
    """Hashes of the key lists, among the first ``sample`` records, that hold only native
    fields. A record whose key list hashes to one of them has no unknown field; any other
    record (a rare field, another key order) gets the exact per-key test."""
    rows = con.execute(
        f"""
        select distinct hash(ks) from (
            select try(json_keys(line)) as ks, line from ({source_sql}) limit {int(sample)}
        )
        where len(ks) > 0
          and len(list_filter(ks, lambda k: not list_contains({_KNOWN}, k))) = 0
        """
    ).fetchall()
    return [int(h) for (h,) in rows]


def _from_json_text(con, source_sql: str, into: str, kind: str = "table",
                    good: list[int] | None = None, keep: tuple[str, ...] = ()) -> None:
    """``source_sql`` yields (n BIGINT, line VARCHAR); n may be NULL (positional: the record's
    line number is then its row position, 1-based, in the table the pipeline materialises from
    this view, see readers.SKIP). A blank line is a row with parse_error readers.SKIP, so
    positions stay line numbers; the pipeline drops those rows.

    ``kind`` ``view``: nothing is materialised here; the pipeline's typing statement streams
    the file through the parse (one pass, in parallel, no copy of the text columns).
    ``good``: key-list hashes known to hold only native fields (``_good_key_hashes``): only
    the other records pay for the per-key unknown-field test."""
    fields = ", ".join(f"v[{i}] as {_ident(f)}" for i, f in enumerate(NATIVE_FIELDS, 1))
    goods = _hash_list(good)
    # Each step guarded by CASE so invalid text is never handed to a JSON function.
    # json_keys is empty for arrays and scalars: that is the "not a JSON object" test.
    con.execute(
        f"""
        create or replace temp {kind} {_ident(into)} as
        with keyed as (
            -- json_keys parses the line once: NULL when it is not JSON, [] for non-objects
            select *, try(json_keys(line)) as ks from ({source_sql})
        ),
        parsed as (
            select n, line, {"".join(_ident(k) + ", " for k in keep)}ks is null as not_json,
                   ks is not null and (starts_with(line, '{{') or starts_with(ltrim(line), '{{'))
                       as is_obj,
                   ks is null and trim(coalesce(line, '')) = '' as blank,
                   -- the per-key test only where the key list is not a known-good one
                   -- (an unknown key written twice is kept once: its first value, as
                   -- json_extract reads it; a MAP cannot hold a key twice)
                   case when ks is not null and not list_contains({goods}, hash(ks))
                        then list_filter(ks, lambda k, i: not list_contains({_KNOWN}, k)
                                                          and not list_contains(ks[1:i - 1], k))
                   end as unknown
            from keyed
        )
        select
            n::BIGINT as source_line,
            line as raw_line,
            case when blank then {_sql_str(SKIP)}
                 when not_json then 'not JSON'
                 when not is_obj then 'not a JSON object' end as parse_error,
            {fields},
            case when is_obj and len(unknown) > 0 then json_object_from_keys(line, unknown) end
                as extra{"".join(", " + _ident(k) for k in keep)}
        from (
            select *, case when is_obj then json_extract_string(line, {_PATHS}) end as v
            from parsed
        )
        """
    )


def _extra_macro(con) -> None:
    # A JSON object of the given keys of ``j`` (values as JSON), built without a Python loop.
    con.execute(
        """
        create or replace temp macro json_object_from_keys(j, ks) as
        to_json(map_from_entries(list_transform(ks, lambda k: {'k': k, 'v': json_extract(j, '$."' || replace(k, '"', '\\"') || '"')})))::VARCHAR
        """
    )


def _lines_source(*paths: Path, filename: bool = False) -> str:
    """(n NULL, line[, filename]): the files' lines in file order then line order, scanned in
    parallel. The line number is the row's position (DuckDB keeps insertion order), filled
    in by the pipeline. One file: its compression from its name; several: DuckDB's own
    detection, by each file's name."""
    options = ", filename=true" if filename else ""
    if len(paths) == 1:
        files = _sql_str(str(paths[0]))
        options += f", compression={'gzip' if is_gzip(paths[0]) else 'none'!r}"
    else:
        files = "[" + ", ".join(_sql_str(str(p)) for p in paths) + "]"
    return (
        f"select NULL::BIGINT as n, line{', filename' if filename else ''} from read_csv("
        f"{files}, columns={{'line': 'VARCHAR'}}, delim=chr(31), quote='', escape='', "
        "header=false, auto_detect=false, strict_mode=false, max_line_size=4194304, "
        f"buffer_size=33554432{options})"
    )


def _hash_list(good: list[int] | None) -> str:
    """SQL list of key-list hashes (``_good_key_hashes``)."""
    return "[" + ", ".join(f"{int(h)}::UBIGINT" for h in (good or [])) + "]"


def _exact_pass_only(path: Path) -> bool:
    """True when a JSON-lines file is read by the exact single pass (see FAST_MIN_BYTES)."""
    return not FAST_JSON_LINES or is_gzip(path) or path.stat().st_size < FAST_MIN_BYTES


# The two-pass read of JSON lines (``_read_json_lines``); False: always the exact single pass
# (tests compare the two).
FAST_JSON_LINES = True
# The one-pass reader (``jsonl_scan``, C) for the files the two-pass read would take, when it
# is built; False: DuckDB alone (tests compare the two). TOKENBOOK_ONE_PASS=0 in the
# environment switches it off for a run (an operator's way back to DuckDB's readers alone).
ONE_PASS = os.environ.get("TOKENBOOK_ONE_PASS", "1").strip() != "0"
# ... for uncompressed files of at least this size: a gzip file is read by one thread whatever
# the reader, so three scans (sample, lines, records) cost more than one; a small file is
# one scan buffer (no parallelism to gain) and pays the extra statements.
FAST_MIN_BYTES = 32 * 1024 * 1024
# The one-pass reader takes gzip files too, from this compressed size (about 30 MB of JSON
# lines): one thread inflates while the others parse. Smaller ones are read together with
# the day's other small files by DuckDB's exact pass (``read_many``).
ONE_PASS_MIN_GZIP_BYTES = 4 * 1024 * 1024


def _one_pass(path: Path) -> bool:
    """True when the one-pass reader would read this JSON-lines file, were it built:
    uncompressed from FAST_MIN_BYTES, gzip from ONE_PASS_MIN_GZIP_BYTES (unless switched
    off). ``_takes_one_pass``: and it is built."""
    if not (ONE_PASS and FAST_JSON_LINES):
        return False
    size = path.stat().st_size
    return size >= (ONE_PASS_MIN_GZIP_BYTES if is_gzip(path) else FAST_MIN_BYTES)


def _takes_one_pass(path: Path) -> bool:
    """True when the one-pass reader reads this file (built, and ``_one_pass``)."""
    return jsonl_scan.available() and _one_pass(path)


def _json_columns() -> str:
    return "{" + ", ".join(f"{_sql_str(f)}: 'VARCHAR'" for f in NATIVE_FIELDS) + "}"


def _records_view(con, path: Path, into: str) -> None:
    """Positional view of the records: DuckDB's own JSON-lines reader, every native field as
    text (a string's own text, a number's or boolean's JSON text, an object as JSON text;
    NULL when absent or null), one row per non-blank line in file order, all-NULL for a line
    that is not a JSON object. Unknown fields are not read here (see _read_json_lines)."""
    p = _sql_str(str(path))
    fields = ", ".join(_ident(f) for f in NATIVE_FIELDS)
    con.execute(
        f"""
        create or replace temp view {_ident(into)} as
        select NULL::BIGINT as source_line, NULL::VARCHAR as raw_line,
               NULL::VARCHAR as parse_error, {fields}, NULL::VARCHAR as extra
        from read_json({p}, columns={_json_columns()}, format='newline_delimited',
                       ignore_errors=true, maximum_object_size=4194304,
                       compression={'gzip' if is_gzip(path) else 'none'!r})
        """
    )


def line_pass(con, source: str, good: list[int], into: str) -> None:
    """Pass 1 of the two-pass read into TEMP table ``into`` (kind, line), one row per line in
    file order: kind 0 an ordinary record (its key list is a known-good one; its text is not
    kept), 1 a blank line, 2 an odd line (kept with its text). ``bench/ingest.py`` times this
    same statement on its own (the floor)."""
    con.execute(
        f"""
        create or replace temp table {_ident(into)} as
        select kind, case when kind = 2 then line end as line from (
            select line,
                   (case when ks is null then
                             case when trim(coalesce(line, '')) = '' then 1 else 2 end
                         when len(ks) = 0 or not list_contains({_hash_list(good)}, hash(ks))
                             then 2
                         else 0 end)::UTINYINT as kind
            from (select line, try(json_keys(line)) as ks from ({source}))
        )
        """
    )


def _read_json_lines(con, path: Path, into: str, source: str, good: list[int]):
    """The two-pass read of a JSON-lines file (returns a ``readers.PositionalRead``).

    Pass 1 (lines, parallel): each line's key list, hashed, against the known-good ones: an
    ordinary line keeps one byte; a blank line is marked; an odd line (not JSON, not an
    object, a key list with an unknown field or not seen in the sample) keeps its text.
    Pass 2 is DuckDB's JSON reader (``_records_view``), run by the pipeline's typing
    statement. The odd lines are read the exact way into ``{into}_fix``, whose rows replace
    the view's rows at their positions. Falls back to the exact single pass when a blank line
    lies between records (positions would no longer be line numbers) or odd lines are many."""
    lines = f"{into}_lines"
    line_pass(con, source, good, lines)
    records, odd, last_record, first_blank = con.execute(
        f"""
        select count(*) filter (where kind <> 1), count(*) filter (where kind = 2),
               max(rowid) filter (where kind <> 1), min(rowid) filter (where kind = 1)
        from {_ident(lines)}
        """
    ).fetchone()

    def exact() -> None:
        _from_json_text(con, source, into, kind="view", good=good)

    if (first_blank is not None and last_record is not None and first_blank < last_record) or (
        odd > max(1000, records // 5)
    ):
        con.execute(f"drop table {_ident(lines)}")
        exact()
        return None
    fix = None
    if odd:
        fix = f"{into}_fix"
        # no blank line before a record: a record's position is its line number
        _from_json_text(
            con, f"select rowid + 1 as n, line from {_ident(lines)} where kind = 2", fix,
            good=good,
        )
    con.execute(f"drop table {_ident(lines)}")
    _records_view(con, path, into)
    return PositionalRead(records=records, fix_table=fix, exact=exact)


def _read_json(con, path: Path, into: str):
    _extra_macro(con)
    p = _sql_str(str(path))
    if _first_char(path) == "[":
        # A JSON array of records (element i is record i) only when the whole file is that one
        # array; a JSON-lines file whose first line is a bad line like `[1,2]` stays JSON
        # lines (that line is quarantined as "not a JSON object"). DuckDB's array reader
        # rejects anything after the closing bracket, so trying it is the test.
        source = (
            f"select ordinality as n, json::VARCHAR as line "
            f"from read_json_objects({p}, format='array') with ordinality"
        )
        try:
            _from_json_text(con, source, into)
            return None
        except Exception:  # not one array: read it as lines below
            pass

    def duckdb_only():
        try:
            # an unreadable file is found by sampling its first records here
            source = _lines_source(path)
            good = _good_key_hashes(con, source)
            if _exact_pass_only(path):
                # one scan (the sample above aside)
                _from_json_text(con, source, into, kind="view", good=good)
                return None
            return _read_json_lines(con, path, into, source, good)
        except Exception as exc:  # duckdb raises IOException, InvalidInputException, ...
            raise ReaderError(read_failure(path, "JSON lines", exc)) from exc

    if _takes_one_pass(path):
        return _read_one_pass(con, path, into, duckdb_only)
    return duckdb_only()


def one_pass_note(path: Path) -> str | None:
    """What a load says when a file the one-pass reader would take was read with DuckDB alone
    because the reader is not built (or was built from another version of its source); None
    otherwise (read by it, too small, gzip, or switched off with TOKENBOOK_ONE_PASS=0)."""
    path = Path(path)
    if jsonl_scan.available() or is_parquet(path) or not path.is_file() or not _one_pass(path):
        return None
    why = ("was built from another version of its source" if jsonl_scan.STALE
           else "is not built (it needs a C compiler)")
    return (f"{path.name} was read with DuckDB's readers alone: the one-pass reader of JSON "
            f"lines {why}; `make install` (or `python -m ingestion.gateway.jsonl_build`) builds "
            "it, and large files then load in a fifth to a third less time")


def _read_one_pass(con, path: Path, into: str, fallback) -> StreamedRead:
    """The one-pass read (``jsonl_scan``): view ``into`` streams the ordinary records, each
    line parsed once in C on DuckDB's thread count, with its line number; the odd lines are
    read the exact way (``_from_json_text``) once the stream has been consumed."""
    threads = int(con.execute("select current_setting('threads')").fetchall()[0][0])
    scan = jsonl_scan.Scan(path, tuple(NATIVE_FIELDS), threads=threads)
    stream, odd = f"{into}_stream", f"{into}_odd"
    con.register(stream, scan.reader())
    session.reader_progress(con, scan.percent)  # DuckDB reports none on an Arrow stream
    fields = ", ".join(_ident(f) for f in NATIVE_FIELDS)
    con.execute(
        f"""
        create or replace temp view {_ident(into)} as
        select source_line, NULL::VARCHAR as raw_line, NULL::VARCHAR as parse_error, {fields},
               extra
        from {_ident(stream)}
        """
    )

    def close() -> None:
        session.reader_progress(con, None)
        for name in (stream, odd):
            try:
                con.unregister(name)
            except Exception:  # never registered, or already let go of
                pass

    def finish() -> str | None:
        close()
        lines = scan.odd()
        if not lines.num_rows:
            return None
        fix = f"{into}_fix"
        con.register(odd, lines)
        try:
            _from_json_text(con, f"select n, line from {_ident(odd)}", fix)
        finally:
            close()
        return fix

    def unsupported_fallback():
        close()
        con.execute(f"drop view if exists {_ident(into)}")
        return fallback()

    return StreamedRead(finish=finish, unsupported=lambda: scan.unsupported,
                        fallback=unsupported_fallback, close=close)


def _read_parquet(con, path: Path, into: str) -> None:
    p = _sql_str(str(path))
    try:
        desc = con.execute(f"describe select * from read_parquet({p})").fetchall()
    except Exception as exc:
        raise ReaderError(f"cannot read {path} as Parquet: {exc}") from exc
    types = {name: typ for name, typ, *_ in desc}
    missing = [f for f in REQUIRED_FIELDS if f not in types]
    if missing:
        raise ReaderError(
            f"{path} has no column {missing[0]!r} (required: {', '.join(REQUIRED_FIELDS)}; "
            f"missing: {', '.join(missing)})"
        )

    def as_text(name: str) -> str:
        typ = types[name].upper()
        col = _ident(name)
        if typ.startswith(("STRUCT", "MAP")) or typ.endswith("[]") or typ == "JSON":
            return f"to_json({col})::VARCHAR"
        if typ.startswith("TIMESTAMP"):
            return f"strftime({col}::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%fZ')"
        return f"{col}::VARCHAR"

    fields = ", ".join(
        f"{as_text(f) if f in types else 'NULL::VARCHAR'} as {_ident(f)}" for f in NATIVE_FIELDS
    )
    unknown = [c for c in types if c not in NATIVE_FIELDS]
    if unknown:
        pairs = ", ".join(f"{_sql_str(c)}: {_ident(c)}" for c in unknown)
        # merge_patch into {} drops the null members; an all-null record gives no extra.
        extra = f"nullif(json_merge_patch('{{}}', to_json({{{pairs}}}))::VARCHAR, '{{}}')"
    else:
        extra = "NULL::VARCHAR"
    sql = f"""
        create or replace temp table {_ident(into)} as
        select ordinality::BIGINT as source_line, NULL::VARCHAR as raw_line,
               NULL::VARCHAR as parse_error, {fields}, {extra} as extra
        from read_parquet({p}) with ordinality
    """
    try:
        con.execute(sql)
    except Exception as exc:
        raise ReaderError(f"cannot read {path} as Parquet: {exc}") from exc


def batchable(path: Path) -> bool:
    """True for a JSON-lines file the exact single pass reads (gzip, or under FAST_MIN_BYTES,
    or the two-pass read switched off) and the one-pass reader does not: such files can be
    read together (``read_many``)."""
    path = Path(path)
    if is_parquet(path) or not path.exists():
        return False
    try:
        if _first_char(path) == "[":
            return False
    except ReaderError:
        return False
    return _exact_pass_only(path) and not _takes_one_pass(path)


def read_many(con, paths: list[Path], into: str) -> None:
    """Positional TEMP view ``into`` over several JSON-lines files, read by one parallel
    scan in the order given (the exact single pass, see ``_from_json_text``), with a
    ``filename`` column: rows are in file order then line order."""
    _extra_macro(con)
    source = _lines_source(*paths, filename=True)
    good = _good_key_hashes(con, source)
    _from_json_text(con, source, into, kind="view", good=good, keep=("filename",))


def read(con, path: Path, into: str):
    """Read one native gateway-log file into TEMP table or view ``into`` (reader interface);
    a JSON-lines file gives a positional view and returns a ``readers.PositionalRead``."""
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"file not found: {path}")
    if is_parquet(path):
        _read_parquet(con, path, into)
        return None
    return _read_json(con, path, into)
