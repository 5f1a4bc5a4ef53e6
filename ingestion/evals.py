"""Load quality-eval results (CSV or JSONL) into ``raw.evals``.

One row per eval run: the feature it judges, the model (provider + price-book model), the eval's
name, the score (0..1), whether it passed, the feature's quality bar at the time, the number of
cases and the date it ran. The lever marts (routing, eval-before-switch) read them through
``stg_evals__results``.

Same guarantees as the other loads, all in DuckDB SQL (no Python loop per row):

- every line is typed with ``try_cast`` and validated; a bad line goes to ``raw.quarantine``
  (source ``evals``) with every failed rule as its reason, and never stops the good lines;
- a file that cannot be read, or lacks a required column, raises :class:`EvalsFileError` naming
  the file and the column;
- duplicates: a natural key (eval_date, feature, provider, model, eval_name) repeated within a
  run keeps its LAST line (a re-run of the same eval on the same day restates the result);
- idempotent: publishing deletes the natural keys the run brings (and the quarantine rows of
  the run's files) and inserts them again, in one transaction: loading the same file twice
  gives the same tables;
- ``raw.load_audit`` gets one row per file: rows read = loaded + quarantined + duplicates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from ingestion.raw import guard, non_utf8, redact
from ingestion.raw.audit import FileTotals
from ingestion.raw.schema import (
    LOAD_AUDIT_COLUMNS,
    PII_REDACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    duckdb_ddl,
)
from ingestion.raw.sniff import read_failure

SOURCE = "evals"

# raw.evals: one row per eval run (natural key below). (column, DuckDB type, BigQuery type)
EVALS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("load_date", "DATE", "DATE"),
    ("eval_date", "DATE", "DATE"),
    ("feature", "VARCHAR", "STRING"),
    ("provider", "VARCHAR", "STRING"),
    ("model", "VARCHAR", "STRING"),
    ("eval_name", "VARCHAR", "STRING"),
    ("score", "DOUBLE", "FLOAT64"),  # 0..1
    ("passed", "BOOLEAN", "BOOL"),
    ("quality_bar", "DOUBLE", "FLOAT64"),  # the bar the eval was judged against (may be null)
    ("cases", "BIGINT", "INT64"),
    ("source_file", "VARCHAR", "STRING"),
    ("source_line", "BIGINT", "INT64"),
)
KEY = ("eval_date", "feature", "provider", "model", "eval_name")
REQUIRED = ("eval_date", "feature", "provider", "model", "eval_name", "score", "passed")
OPTIONAL = ("quality_bar", "cases")
FIELDS = REQUIRED + OPTIONAL
SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


class EvalsError(Exception):
    """An evals load that cannot run (bad arguments, nothing to load)."""


class EvalsFileError(EvalsError):
    """A file that cannot be read as a whole; the message names the file (and column)."""


class EvalsLoadRefused(guard.LoadRefused, EvalsError):
    """A delivery with no valid eval line: nothing was published, the files are in
    raw.load_audit with status ``refused``. (A load replaces only the evals it brings, so a
    valid delivery never shrinks what is loaded.)"""


@dataclass(frozen=True)
class FileAudit:
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int


@dataclass
class EvalsLoad(FileTotals):
    load_id: str
    load_date: date
    files: list[FileAudit] = field(default_factory=list)
    # what the load report says besides the counts (a file with lines that are not UTF-8)
    notes: list[str] = field(default_factory=list)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths`` (files, or folders searched recursively), stable order."""
    out: list[Path] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.name.lower().endswith(SUFFIXES))
            if not found:
                raise EvalsFileError(f"folder {p} holds no eval files ({', '.join(SUFFIXES)})")
            out += [f for f in found if f not in out]
        elif p.is_file():
            if p not in out:
                out.append(p)
        else:
            raise EvalsFileError(f"file not found: {p}")
    if not out:
        raise EvalsError("no eval files given")
    return out


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"))


def _compression(path: Path) -> str:
    return "gzip" if path.name.lower().endswith(".gz") else "none"


_MARKED = "_evals_not_utf8_rows"


def _read_file(con, idx: int, path: Path, into: str) -> non_utf8.Repaired | None:
    """Create TEMP ``into`` (file_idx, source_file, source_line, raw_line, parse_error, <FIELDS>
    as text) from one file.

    When DuckDB refuses the file for text that is not UTF-8 (only then: the normal path costs
    nothing), the slow path of ``raw/non_utf8.py``: the file is streamed once into a repaired
    copy (each bad line's first bad byte replaced by a mark, every other byte of structure
    kept, so lines and CSV records stay one for one), the copy is read the same way under the
    file's name, and each line holding a mark becomes an unparsed line with the reason
    (``not UTF-8 text: byte 0xe9 at column 57``), its eval fields NULL (nothing is read from a
    repaired line). A file mostly not UTF-8 (another encoding), a bad CSV header, or CSV
    records that span bad lines are refused with the line, the byte and the iconv to run.
    Returns the repaired copy's summary (for the load report's note), None on the normal path."""
    try:
        _read_lines(con, idx, path, into, str(path))
        return None
    except EvalsFileError as exc:
        if not non_utf8.is_not_utf8_error(exc):
            raise
        failure = exc

    def reread(copy: Path) -> None:
        con.execute(f"drop table if exists {into}")
        _read_lines(con, idx, copy, into, str(path))

    repaired = non_utf8.reread_repaired(path, reread, EvalsFileError, failure)
    try:
        non_utf8.check_marked(con, _MARKED, repaired, str(path), header=not _is_jsonl(path))
    except non_utf8.NotOneForOne as exc:
        con.execute(f"drop table if exists {_MARKED}")
        raise EvalsFileError(str(exc)) from failure
    non_utf8.quarantine_marked(con, into, _MARKED, repaired, list(FIELDS))
    return repaired


def _read_lines(con, idx: int, path: Path, into: str, source_name: str) -> None:
    """``_read_file`` of ``path`` (the file, or its repaired copy: then its marked lines are
    noted in ``_MARKED``), recorded as ``source_name``."""
    p = _q(str(path))
    head = f"{idx} as file_idx, {_q(source_name)} as source_file"
    repaired = non_utf8.is_repaired(path)
    if _is_jsonl(path):
        lines = (
            f"select ordinality as n, line from read_csv({p}, columns={{'line': 'VARCHAR'}}, "
            "delim=chr(31), quote='', escape='', header=false, auto_detect=false, "
            f"strict_mode=false, new_line='\\n', compression='{_compression(path)}') "
            "with ordinality"
        )
        fields = ", ".join(
            f"case when is_obj then try(json_extract_string(line, '$.{f}')) end as {f}"
            for f in FIELDS
        )
        sql = f"""
            create temp table {into} as
            with l as (
                select n, line, try(json_keys(line)) as ks
                from ({lines}) where trim(coalesce(line, '')) <> ''
            ), k as (
                select n, line, ks is not null and starts_with(ltrim(line), '{{') as is_obj,
                       ks is not null as is_json
                from l
            )
            select {head}, n::BIGINT as source_line, line as raw_line,
                   case when not is_json then 'not JSON'
                        when not is_obj then 'not a JSON object' end as parse_error,
                   {fields}
            from k
        """
        try:
            con.execute(sql)
        except Exception as exc:  # duckdb raises IOException, InvalidInputException, ...
            raise EvalsFileError(read_failure(path, "JSON lines", exc)) from exc
        if repaired:
            non_utf8.marked_rows(con, into, "raw_line", _MARKED)
        if con.execute(f"select count(*) from {into} where parse_error is null").fetchone()[0]:
            present = con.execute(
                f"""select distinct unnest(json_keys(raw_line)) from {into}
                    where parse_error is null"""
            ).fetchall()
            _check_columns(path, {r[0] for r in present})
        return
    try:
        cols = [
            r[0]
            for r in con.execute(
                f"describe select * from read_csv({p}, all_varchar=true, header=true, "
                f"compression='{_compression(path)}')"
            ).fetchall()
        ]
    except Exception as exc:
        raise EvalsFileError(read_failure(path, "CSV", exc)) from exc
    names = {c.strip().lower(): c for c in cols}
    _check_columns(path, set(names))
    fields = ", ".join(
        f"nullif(trim(\"{names[f]}\"), '') as {f}" if f in names else f"null::VARCHAR as {f}"
        for f in FIELDS
    )
    raw = "to_json({" + ", ".join(f"'{f}': {f}" for f in FIELDS) + "})::VARCHAR"
    rows = (f"read_csv({p}, all_varchar=true, header=true, strict_mode=false, "
            f"compression='{_compression(path)}') with ordinality")
    try:
        con.execute(
            f"""
            create temp table {into} as
            select {head}, (ordinality + 1)::BIGINT as source_line, {raw} as raw_line,
                   null::VARCHAR as parse_error, {", ".join(FIELDS)}
            from (select ordinality, {fields} from {rows})
            """
        )
        if repaired:  # the mark may be in any column, not only the eval fields
            non_utf8.marked_rows(
                con, f"(select (ordinality + 1)::BIGINT as source_line, "
                f"concat_ws(',', *columns(* exclude (ordinality))) as line from {rows})",
                "line", _MARKED)
    except Exception as exc:
        raise EvalsFileError(read_failure(path, "CSV", exc)) from exc


def _check_columns(path: Path, present: set[str]) -> None:
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        raise EvalsFileError(
            f"{path} has no column {missing[0]!r} (required: {', '.join(REQUIRED)})"
        )


def _typed_sql(parsed: str) -> str:
    rules = [
        "p.parse_error",
        *(
            f"case when p.parse_error is null and p.{c} is null then 'missing {c}' end"
            for c in REQUIRED
        ),
        "case when p.eval_date is not null and try_cast(p.eval_date as DATE) is null "
        "then 'unparseable eval_date' end",
        "case when p.score is not null and try_cast(p.score as DOUBLE) is null "
        "then 'non-numeric score' end",
        "case when try_cast(p.score as DOUBLE) not between 0 and 1 then 'score outside 0..1' end",
        "case when p.passed is not null and try_cast(p.passed as BOOLEAN) is null "
        "then 'unparseable passed' end",
        "case when p.quality_bar is not null and (try_cast(p.quality_bar as DOUBLE) is null "
        "or try_cast(p.quality_bar as DOUBLE) not between 0 and 1) "
        "then 'quality_bar not a number in 0..1' end",
        "case when p.cases is not null and (try_cast(p.cases as BIGINT) is null "
        "or try_cast(p.cases as BIGINT) < 0) then 'cases not a non-negative integer' end",
    ]
    return f"""
    select
        p.file_idx, p.source_file, p.source_line,
        -- quarantine keeps the eval fields only (never other fields of the line), redacted when
        -- published; a line that did not parse keeps its length, hash and redacted shape
        case when p.parse_error is null
             then to_json({{{", ".join(f"'{f}': p.{f}" for f in FIELDS)}}})::VARCHAR
             else p.raw_line end as raw_line,
        p.parse_error is not null as unparsed,
        nullif(concat_ws('; ', {", ".join(rules)}), '') as reason,
        try_cast(p.eval_date as DATE) as eval_date,
        p.feature, lower(p.provider) as provider, lower(p.model) as model, p.eval_name,
        try_cast(p.score as DOUBLE) as score,
        try_cast(p.passed as BOOLEAN) as passed,
        try_cast(p.quality_bar as DOUBLE) as quality_bar,
        try_cast(p.cases as BIGINT) as cases
    from {parsed} as p
    """


def ensure_tables(con) -> None:
    con.execute("create schema if not exists raw")
    con.execute(duckdb_ddl("raw.evals", EVALS_COLUMNS))
    con.execute(duckdb_ddl("raw.quarantine", QUARANTINE_COLUMNS))
    con.execute(duckdb_ddl("raw.pii_redactions", PII_REDACTIONS_COLUMNS))
    con.execute(duckdb_ddl("raw.load_audit", LOAD_AUDIT_COLUMNS))


def ingest_evals(con, paths: Iterable[str | Path], *, load_date: date | None = None,
                 replace: bool = False) -> EvalsLoad:
    """Validate and publish eval files into ``raw.evals`` on the DuckDB connection ``con``.

    ``load_date`` is the run's date (Airflow ``ds``); by default the latest valid eval_date the
    files hold (never the clock). Raises EvalsFileError for an unreadable file or a missing
    required column, EvalsError when nothing can be dated, EvalsLoadRefused when no line is
    valid (``replace`` confirms such a load: its lines are then quarantined).
    """
    files = expand_paths(paths)
    started = datetime.now(UTC).replace(tzinfo=None)  # audit metadata only, never logic
    tmp = [f"_evals_parsed_{i}" for i in range(len(files))]
    notes: list[str] = []
    try:
        for i, path in enumerate(files):
            con.execute(f"drop table if exists {tmp[i]}")
            repaired = _read_file(con, i, path, tmp[i])
            if repaired is not None:
                notes.append(repaired.note(str(path)))
        union = " union all by name ".join(f"select * from {t}" for t in tmp)
        con.execute("drop table if exists _evals_typed")
        con.execute(f"create temp table _evals_typed as {_typed_sql('(' + union + ')')}")
        if load_date is None:
            load_date = con.execute(
                "select max(eval_date) from _evals_typed where reason is null"
            ).fetchone()[0]
            if load_date is None:
                top = con.execute(
                    "select reason, count(*) from _evals_typed group by reason "
                    "order by count(*) desc, reason limit 2"
                ).fetchall()
                what = ("; ".join(f"{n:,} line(s): {r}" for r, n in top) if top
                        else "the files hold no eval line")
                raise EvalsError(
                    f"no valid eval line in {', '.join(map(str, files))} ({what}); nothing was "
                    "loaded: check the file (an empty or broken export?)"
                )
        key = ", ".join(KEY)
        con.execute("drop table if exists _evals_checked")
        con.execute(
            f"""
            create temp table _evals_checked as
            select *,
                case when reason is null then row_number() over (
                    partition by reason is null, {key}
                    order by file_idx desc, source_line desc) > 1
                else false end as is_duplicate
            from _evals_typed
            """
        )
        result = _publish(con, files, load_date, started, replace)
        result.notes = notes
        return result
    finally:
        for t in (*tmp, "_evals_typed", "_evals_checked"):
            con.execute(f"drop table if exists {t}")


def _publish(con, files: list[Path], load_date: date, started: datetime,
             replace: bool = False) -> EvalsLoad:
    ld = f"DATE '{load_date}'"
    counts = {
        r[0]: r[1:]
        for r in con.execute(
            """select file_idx, count(*),
                 count(*) filter (where reason is null and not is_duplicate),
                 count(*) filter (where reason is not null),
                 count(*) filter (where is_duplicate)
               from _evals_checked group by file_idx"""
        ).fetchall()
    }
    result = EvalsLoad(f"evals-{load_date}-{uuid.uuid4().hex[:12]}", load_date)
    for i, path in enumerate(files):
        read, loaded, quarantined, dup = counts.get(i, (0, 0, 0, 0))
        result.files.append(FileAudit(str(path), read, loaded, quarantined, dup))
    finished = datetime.now(UTC).replace(tzinfo=None)
    audit_sql = (
        f"insert into raw.load_audit ({', '.join(c for c, _, _ in LOAD_AUDIT_COLUMNS)}) "
        f"values ({', '.join('?' * len(LOAD_AUDIT_COLUMNS))})"
    )

    def audit_rows(status: str) -> list[tuple]:
        return [
            (result.load_id, SOURCE, f.source_file, load_date, f.rows_read, f.rows_loaded,
             f.rows_quarantined, f.rows_duplicate, started, finished, status)
            for f in result.files
        ]  # fmt: skip

    if result.rows_loaded == 0 and not replace:
        ensure_tables(con)
        held = con.execute(
            "select count(*) from raw.evals where load_date = ?", [load_date]
        ).fetchone()[0]
        con.executemany(audit_sql, audit_rows(guard.REFUSED))
        top = con.execute(
            "select reason, count(*) from _evals_checked where reason is not null "
            "group by reason order by count(*) desc, reason limit 2"
        ).fetchall()
        hint = "; ".join(f"{n:,} line(s): {r}" for r, n in top)
        raise EvalsLoadRefused(
            [guard.Shrink(f"evals {load_date.isoformat()}", int(held), 0)],
            f"Lines rejected: {hint}." if hint else "The files hold no eval line.",
        )
    cols = ", ".join(c for c, _, _ in EVALS_COLUMNS)
    file_list = ", ".join(_q(str(p)) for p in files)
    con.execute("begin transaction")
    try:
        ensure_tables(con)
        con.execute(
            f"""delete from raw.evals as e where exists (
                  select 1 from _evals_checked as c
                  where c.reason is null and not c.is_duplicate
                    and {" and ".join(f"e.{k} = c.{k}" for k in KEY)})"""
        )
        con.execute(
            f"delete from raw.quarantine where source = {_q(SOURCE)} "
            f"and source_file in ({file_list})"
        )
        con.execute(
            f"""insert into raw.evals ({cols})
                select {ld}, eval_date, feature, provider, model, eval_name, score, passed,
                       quality_bar, cases, source_file, source_line
                from _evals_checked where reason is null and not is_duplicate
                order by file_idx, source_line"""
        )
        con.execute(
            f"""insert into raw.quarantine (load_date, source, source_file, line_number, reason,
                    raw_line)
                select {ld}, {_q(SOURCE)}, source_file, source_line, reason,
                       case when unparsed then {redact.unparsed_line_sql("raw_line")}
                            else {redact.redact_sql("raw_line")} end
                from _evals_checked where reason is not null order by file_idx, source_line"""
        )
        # what the redactor found in the quarantined lines, by kind (counts only)
        con.execute(
            f"delete from raw.pii_redactions where source = {_q(SOURCE)} "
            f"and load_date = {ld} and source_file in ({file_list})"
        )
        counts = redact.pii_count_sql("raw_line")
        con.execute(
            f"""insert into raw.pii_redactions (load_date, source, source_file, field, kind,
                    redactions)
                select {ld}, {_q(SOURCE)}, source_file, 'raw_line', kind, sum(n)::BIGINT
                from (unpivot (select source_file, {", ".join(f"{e} as {k}" for k, e in
                                                              counts.items())}
                               from _evals_checked where reason is not null)
                      on {", ".join(counts)} into name kind value n)
                group by all having sum(n) > 0"""
        )
        con.executemany(audit_sql, audit_rows("loaded"))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result
