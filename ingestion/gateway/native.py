"""Reader for the native gateway-log format: JSONL (optionally .gz), JSON arrays, Parquet.

Implements the reader interface of ``ingestion.gateway.readers`` (see its docstring).

JSON lines are read as text by DuckDB's CSV scanner (one VARCHAR column, no quoting, line
numbers by ``WITH ORDINALITY``), then parsed once per line with a multi-path
``json_extract_string`` into one VARCHAR per native field; ``json_keys`` finds the unknown
fields. For JSON lines the reader creates a TEMP VIEW, so the file is scanned and parsed once,
inside the pipeline's typing statement, and the text columns are never materialised on their
own. Measured on 200k lines (bench file, CPU s): reading the lines 0.24, ``try(json_keys)``
0.20-0.33, the 31 fields 0.40-0.61, against 0.55 for ``read_json`` with explicit VARCHAR columns.

A strict ``read_json`` fast path was evaluated and NOT taken: it gives the fields in line order
(with ``ignore_errors`` a bad line becomes an all-NULL row, blank lines are skipped), but it
silently drops unknown fields, and the only sound way to learn a file's key set,
``read_json(..., sample_size=-1)``, costs 0.86 s per 200k lines, more than the parse it would
save (a sampled key set misses rare fields: the demo's ``debug_context`` is in 29 of 14k
records). With the unknown-key test the fast path costs what the line path costs.

A file whose first non-blank character is ``[`` is read as one JSON array (element i is record
i) only when the whole file IS that array (DuckDB's array reader rejects anything after the
closing bracket); otherwise it is JSON lines whose first line is a bad record.

Blank lines are not records (they are skipped but still counted in line numbers). A line with
a raw control character is cut there by the scanner; it is not valid JSON anyway.
Parquet files are read with ``read_parquet``; every required field must be a column, otherwise
:class:`ReaderError` names the file and the column.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.gateway.readers import ReaderError, is_gzip, is_parquet
from ingestion.gateway.schema import NATIVE_FIELDS, REQUIRED_FIELDS


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


def _from_json_text(con, source_sql: str, into: str, kind: str = "table") -> None:
    """``source_sql`` yields (n BIGINT, line VARCHAR) with blank lines as NULL or blank.

    ``kind`` ``view``: nothing is materialised here; the pipeline's typing statement streams
    the file through the parse (one pass, no copy of the text columns)."""
    fields = ", ".join(f"v[{i}] as {_ident(f)}" for i, f in enumerate(NATIVE_FIELDS, 1))
    # Each step guarded by CASE so invalid text is never handed to a JSON function.
    # json_keys is empty for arrays and scalars: that is the "not a JSON object" test.
    con.execute(
        f"""
        create or replace temp {kind} {_ident(into)} as
        with lines as (
            select n, line from ({source_sql}) where trim(coalesce(line, '')) <> ''
        ),
        keyed as (
            -- json_keys parses the line once: NULL when it is not JSON, [] for non-objects
            select n, line, try(json_keys(line)) as ks from lines
        ),
        parsed as (
            select n, line, ks is not null as ok,
                   ks is not null and starts_with(ltrim(line), '{{') as is_obj,
                   case when ks is not null and starts_with(ltrim(line), '{{')
                        then json_extract_string(line, {_PATHS}) end as v,
                   list_filter(ks, lambda k: not list_contains({_KNOWN}, k)) as unknown
            from keyed
        )
        select
            n::BIGINT as source_line,
            case when not is_obj then line end as raw_line,
            case when not ok then 'not JSON'
                 when not is_obj then 'not a JSON object' end as parse_error,
            {fields},
            case when len(unknown) > 0 then json_object_from_keys(line, unknown) end as extra
        from parsed
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


def _lines_source(path: Path) -> str:
    p = _sql_str(str(path))
    return (
        f"select ordinality as n, line from read_csv({p}, columns={{'line': 'VARCHAR'}}, "
        "delim=chr(31), quote='', escape='', header=false, auto_detect=false, "
        "strict_mode=false, max_line_size=4194304, buffer_size=33554432, new_line='\\n', "
        f"compression={'gzip' if is_gzip(path) else 'none'!r}) with ordinality"
    )


def _read_json(con, path: Path, into: str) -> None:
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
            return
        except Exception:  # not one array: read it as lines below
            pass
    try:
        # a view: the file is scanned once, by the pipeline's typing statement; an unreadable
        # file is found by describing it here
        _from_json_text(con, _lines_source(path), into, kind="view")
        con.execute(f"select count(*) from (select * from {_ident(into)} limit 1)").fetchall()
    except Exception as exc:  # duckdb raises IOException, InvalidInputException, ...
        raise ReaderError(f"cannot read {path} as JSON lines: {exc}") from exc


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


def read(con, path: Path, into: str) -> None:
    """Read one native gateway-log file into TEMP table ``into`` (reader interface)."""
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"file not found: {path}")
    if is_parquet(path):
        _read_parquet(con, path, into)
    else:
        _read_json(con, path, into)
