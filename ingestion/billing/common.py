"""Helpers the vendor parsers share: reading paged API reports and CSV/Parquet exports into
DuckDB, and building the parser TEMP table (``schema.PARSED_COLUMNS``) from SQL expressions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ingestion.billing.errors import BillingFileError
from ingestion.billing.schema import PARSED_COLUMNS
from ingestion.raw import non_utf8
from ingestion.raw.sniff import read_failure

# The marked records of a repaired copy a reader read (source_line, line, raw_line, marks):
# written by the readers below only when they read a copy from ``raw/non_utf8.py``, read by the
# loader (``loader._parse_file``).
MARKED = "_billing_not_utf8_rows"


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def iso_from_epoch(expr: str) -> str:
    """Epoch seconds (text) -> RFC 3339 UTC text; the text itself when it is not a number (so
    validation reports it as unparseable)."""
    return (
        f"coalesce(strftime(to_timestamp(try_cast({expr} as BIGINT)) at time zone 'UTC', "
        f"'%Y-%m-%dT%H:%M:%SZ'), {expr})"
    )


def parsed_select(exprs: Mapping[str, str], source: str, keep: Iterable[str] = ()) -> str:
    """SELECT with every column of PARSED_COLUMNS: the given expressions, NULL for the rest
    (plus the source's columns named in ``keep``, e.g. ``file_idx``)."""
    unknown = set(exprs) - set(PARSED_COLUMNS)
    if unknown:
        raise ValueError(f"not parser columns: {sorted(unknown)}")
    cols = []
    for c in PARSED_COLUMNS:
        if c == "source_line":
            cols.append(f"cast({exprs.get(c, 'NULL')} as BIGINT) as source_line")
        else:
            cols.append(f"cast({exprs.get(c, 'NULL')} as VARCHAR) as {c}")
    cols.extend(keep)
    return "select " + ",\n  ".join(cols) + f"\nfrom {source}"


def create_parsed(con, into: str, selects: Iterable[str], order: str = "source_line") -> None:
    body = "\nunion all\n".join(selects)
    con.execute(f"create temp table {into} as select * from ({body}) order by {order}")


def report_results(
    con, paths: Path | list[Path], view: str, indices: list[int] | None = None
) -> None:
    """A TEMP table ``view`` over paged admin-API reports saved as JSON: each file holds one
    page, JSON Lines of pages, or an array of pages. Columns: ``file_idx`` (position in
    ``paths``), ``record_no`` (1-based result number in the file's document order), ``bucket``
    and ``result`` (JSON). Several files are read in one scan."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    names = "[" + ", ".join(q(str(p)) for p in paths) + "]"
    indices = list(range(len(paths))) if indices is None else indices
    index = ", ".join(f"({i}, {q(str(p))})" for i, p in zip(indices, paths, strict=True))
    try:
        con.execute(
            f"""
            create or replace temp table {view} as
            with files as (select * from (values {index}) as t(file_idx, filename)),
            pages as (
              select f.file_idx,
                row_number() over (partition by o.filename) as page_no, o.json as page
              from read_json_objects({names}, format='auto', filename=true) as o
              join files as f on f.filename = o.filename
            ),
            buckets as (
              select file_idx, page_no, unnest(b) as bucket,
                generate_subscripts(b, 1) as bucket_idx
              from (select *, json_extract(page, '$.data[*]') as b from pages)
            ),
            results as (
              select file_idx, page_no, bucket_idx, bucket, unnest(r) as result,
                generate_subscripts(r, 1) as result_idx
              from (select *, json_extract(bucket, '$.results[*]') as r from buckets)
            )
            select file_idx,
              row_number() over (partition by file_idx order by page_no, bucket_idx, result_idx)
                as record_no,
              bucket, result
            from results
            """
        )
    except Exception as exc:  # duckdb raises IOException / InvalidInputException
        if len(paths) > 1:  # find the file to name
            for p in paths:
                report_results(con, p, view)
        raise BillingFileError(read_failure(paths[0], "an admin-API report (JSON)", exc)) from exc


def read_table(con, path: Path, view: str) -> list[str]:
    """A TEMP table ``view`` over a CSV (all columns text) or Parquet file with ``source_line``
    (1-based data row number); returns the file's column names."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            src = f"read_parquet({q(str(path))})"
        elif name.endswith((".csv", ".csv.gz")):
            src = f"read_csv({q(str(path))}, all_varchar=true, header=true)"
        elif name.endswith((".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")):
            src = f"read_json({q(str(path))}, format='auto', union_by_name=true)"
        else:
            raise BillingFileError(f"{path}: unsupported file type (csv, json, jsonl or parquet)")
        con.execute(
            f"create or replace temp table {view} as "
            f"select row_number() over () as source_line, * from {src}"
        )
    except BillingFileError:
        raise
    except Exception as exc:
        raise BillingFileError(read_failure(path, "a table", exc)) from exc
    columns = [r[0] for r in con.execute(f"describe {view}").fetchall()][1:]
    if non_utf8.is_repaired(path):
        fields = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        non_utf8.marked_rows(con, view, f"concat_ws(',', {fields})", MARKED)
    return columns


def read_json_rows(con, path: Path, view: str, what: str) -> None:
    """A TEMP table ``view`` (source_line, rec JSON) over a JSON-lines (or JSON array) file,
    one row per object."""
    try:
        con.execute(
            f"""create or replace temp table {view} as
            select row_number() over () as source_line, json as rec
            from read_json_objects({q(str(path))}, format='auto')"""
        )
    except Exception as exc:
        raise BillingFileError(read_failure(path, what, exc)) from exc
    if non_utf8.is_repaired(path):
        non_utf8.marked_rows(con, view, "cast(rec as VARCHAR)", MARKED)


def require_columns(path: Path, columns: Iterable[str], required: Iterable[str], what: str) -> None:
    present = {c.lower() for c in columns}
    for col in required:
        if col.lower() not in present:
            raise BillingFileError(
                f"{path}: missing required column {col!r} for a {what}; "
                "is this the right --vendor and an unmodified export?"
            )


def token_type_case(expr: str, rules: Iterable[tuple[str, str]], default: str = "other") -> str:
    """CASE mapping a text (SKU, meter, usage type) onto a token type with regexes, in order."""
    whens = " ".join(f"when regexp_matches({expr}, {q(rx)}) then {q(tt)}" for rx, tt in rules)
    return f"(case {whens} else {q(default)} end)"
