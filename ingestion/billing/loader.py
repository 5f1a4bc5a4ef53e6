"""Load vendor billing exports into ``raw.billing_lines`` (shared by every vendor).

A vendor parser (``ingestion/billing/<vendor>/parse.py``) has the signature::

    def read(con: duckdb.DuckDBPyConnection, path: pathlib.Path, into: str) -> None

and creates a TEMP table ``into`` with the columns of ``schema.PARSED_COLUMNS`` (VARCHAR text as
the source gives it, mapped onto our names; ``source_line`` BIGINT). It raises
:class:`BillingFileError` naming the file (and column) when the file as a whole cannot be read.
A bad record is never an exception: it becomes a row the validation below rejects.

The loader then does the same for every vendor, in SQL (no Python loop per row):

1. type the text with ``try_cast`` and validate (one reason per failed rule, joined by ``; ``);
2. choose the partition: ``--date D`` (load_date D, usage dates outside
   ``[D - window_days_before, D + window_days_after)`` are quarantined), ``--month YYYY-MM``
   (load_date = first day of the month; lines of another billing period are quarantined), or
   neither: per file, the latest usage date (API vendors, window rule) or the file's billing
   period (file-export vendors, month rule); files that land on the same partition load together;
3. drop repeated ``line_id`` within a load as duplicates (first kept, in file order);
4. redact free text (description, tags, quarantined raw lines) and count what was redacted;
5. publish in ONE DuckDB transaction: replace the (vendor, load_date) partition of
   ``raw.billing_lines``, the (``billing_<vendor>``, load_date) partition of ``raw.quarantine``
   and ``raw.pii_redactions``, and append one ``raw.load_audit`` row per file.

rows read = rows loaded + rows quarantined + duplicates, per file, always.
"""

from __future__ import annotations

import glob
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

from ingestion.billing.anthropic import parse as anthropic_parse
from ingestion.billing.aws import parse as aws_parse
from ingestion.billing.azure import parse as azure_parse
from ingestion.billing.common import MARKED
from ingestion.billing.errors import (  # noqa: F401 - BillingFileError re-exported
    BillingError,
    BillingFileError,
    BillingLoadRefused,
)
from ingestion.billing.gcp import parse as gcp_parse
from ingestion.billing.openai import parse as openai_parse
from ingestion.billing.schema import (
    BILLING_LINES_COLUMNS,
    CURRENCIES,
    PARSED_COLUMNS,
    PROVIDERS,
    TOKEN_TYPES,
    VENDORS,
)
from ingestion.raw import guard, non_utf8, redact
from ingestion.raw.audit import FileTotals
from ingestion.raw.schema import (
    LOAD_AUDIT_COLUMNS,
    PII_REDACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    column_names,
    duckdb_ddl,
)
from ingestion.raw.sinks.duckdb import append_audit
from ingestion.raw.sniff import SniffError, sniff

# vendor -> its module: ``read(con, path, into)``, and ``read_many(con, paths, into)`` (all files
# in one scan) when it has one. A new vendor: a module under ingestion/billing/<vendor>/ and a
# line here.
PARSERS: dict[str, ModuleType] = {
    "openai": openai_parse,
    "anthropic": anthropic_parse,
    "gcp": gcp_parse,
    "aws": aws_parse,
    "azure": azure_parse,
}
# Vendors whose exports are monthly files restated through the month (partition = month).
MONTHLY_VENDORS = ("gcp", "aws", "azure")
SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet")
SUFFIXES = SUFFIXES + tuple(s + ".gz" for s in SUFFIXES if s != ".parquet")

MONEY_COLUMNS = ("billed_cost", "effective_cost", "credits", "list_unit_price", "unit_price")
NUMERIC_TEXT_COLUMNS = ("quantity", "token_scale", "cost_scale", *MONEY_COLUMNS)
TOKEN_LINE_TYPES = tuple(t for t in TOKEN_TYPES if t not in ("request", "other"))


@dataclass(frozen=True)
class FileAudit:
    source_file: str
    load_date: date
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int


@dataclass
class LoadResult(FileTotals):
    vendor: str
    load_date: date
    load_id: str
    files: list[FileAudit] = field(default_factory=list)
    # what the load report says besides the counts (a file with lines that are not UTF-8)
    notes: list[str] = field(default_factory=list)


def get_parser(vendor: str) -> Callable[..., None]:
    if vendor not in PARSERS:
        raise BillingError(f"unknown billing vendor {vendor!r}; expected one of {list(VENDORS)}")
    return PARSERS[vendor].read


def get_many_parser(vendor: str) -> Callable[..., None] | None:
    """The vendor's ``read_many(con, paths, into)`` (all files in one scan), if it has one."""
    get_parser(vendor)
    return getattr(PARSERS[vendor], "read_many", None)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths`` (files, folders searched recursively, globs), stable order."""
    out: list[Path] = []
    seen: set[Path] = set()
    for arg in paths:
        text = str(arg)
        p = Path(text)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(SUFFIXES)
            )
            if not found:
                raise BillingFileError(
                    f"folder {text} holds no billing files (looked for {', '.join(SUFFIXES)})"
                )
        elif p.is_file():
            found = [p]
        elif glob.has_magic(text):
            found = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
            if not found:
                raise BillingFileError(f"no file matches {text}")
        else:
            raise BillingFileError(f"file not found: {text}")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                out.append(f)
    return out


def _check_vendor(path: Path, vendor: str) -> None:
    """Refuse, by name, a file that is another vendor's export or gateway logs (its lines
    would all be quarantined and the load refused as empty, without saying why)."""
    try:
        what = sniff(path)
    except SniffError as exc:
        raise BillingFileError(str(exc)) from exc
    if what.vendor and what.vendor != vendor:
        raise BillingFileError(
            f"{path} is {what.vendor_label}, not an export of {vendor}: pass "
            f"--vendor {what.vendor}"
        )
    cols = set(what.columns)
    if "resourceSpans" in cols or {"request_id", "timestamp"} <= cols:
        raise BillingFileError(
            f"{path} is gateway logs, not a billing export: load it with "
            "`tokenbook ingest gateway`"
        )
    if what.kind in ("text", "binary", "utf16"):
        raise BillingFileError(
            f"{path} is {what.describe()}; ingest billing reads the vendors' exports as JSON "
            "(admin-API report pages), JSON lines, CSV or Parquet, optionally .gz"
        )


def parse_month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError as exc:
        raise BillingError(f"bad --month {text!r}: write YYYY-MM, e.g. 2026-11") from exc


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _num(col: str) -> str:
    return f"try_cast(trim(p.{col}) as DECIMAL(38,12))"


def _typed_sql(parsed: str) -> str:
    """SELECT typing one parser table; `reasons` lists every failed rule (window rules later)."""
    currencies = ", ".join(_q(c) for c in CURRENCIES)
    token_types = ", ".join(_q(t) for t in TOKEN_TYPES)
    providers = ", ".join(_q(p) for p in PROVIDERS)
    token_lines = ", ".join(_q(t) for t in TOKEN_LINE_TYPES)
    scale = "coalesce(" + _num("cost_scale") + ", 1)"
    money = {c: f"cast({_num(c)} * {scale} as DECIMAL(38,9))" for c in MONEY_COLUMNS}
    rules = [
        "p.parse_error",
        "case when p.charge_period_start is null then 'missing charge period start' end",
        "case when p.charge_period_start is not null and "
        "try_cast(p.charge_period_start as TIMESTAMPTZ) is null "
        "then 'unparseable charge period start' end",
        "case when p.charge_period_end is not null and "
        "try_cast(p.charge_period_end as TIMESTAMPTZ) is null "
        "then 'unparseable charge period end' end",
        "case when p.billing_period is not null and try_cast(p.billing_period as DATE) is null "
        "then 'unparseable billing period' end",
        *(
            f"case when nullif(trim(p.{c}), '') is not null and {_num(c)} is null "
            f"then 'non-numeric {c}' end"
            for c in NUMERIC_TEXT_COLUMNS
        ),
        f"case when p.currency is not null and upper(trim(p.currency)) not in ({currencies}) "
        "then 'unknown currency' end",
        "case when p.currency is null and p.billed_cost is not null then 'missing currency' end",
        f"case when p.token_type is null or p.token_type not in ({token_types}) "
        "then 'unknown token type' end",
        f"case when p.provider is not null and p.provider not in ({providers}) "
        "then 'unknown provider' end",
        "case when p.quantity is null and p.billed_cost is null then 'no quantity and no cost' end",
        f"case when p.token_type in ({token_lines}) and {_num('quantity')} < 0 "
        "then 'negative token quantity' end",
        "case when p.is_batch is not null and try_cast(p.is_batch as BOOLEAN) is null "
        "then 'unparseable batch flag' end",
        "case when p.tags is not null and not coalesce(json_valid(p.tags), false) "
        "then 'tags not JSON' end",
    ]
    raw_struct = (
        "{"
        + ", ".join(f"'{c}': p.{c}" for c in PARSED_COLUMNS if c not in ("raw_line", "parse_error"))
        + "}"
    )
    start = "(try_cast(p.charge_period_start as TIMESTAMPTZ) at time zone 'UTC')"
    end = "(try_cast(p.charge_period_end as TIMESTAMPTZ) at time zone 'UTC')"
    return f"""
    select
      p.file_idx,
      p.source_file,
      p.source_line,
      -- quarantine keeps a rejected record as the fields a loaded line keeps (redacted when
      -- staged), never the vendor's whole record; a record the parser could not map keeps
      -- only its length, hash and redacted shape (redact.unparsed_line_sql)
      case when p.parse_error is null then to_json({raw_struct})::VARCHAR
           else p.raw_line end as raw_line,
      p.parse_error is not null as unparsed,
      case when starts_with(p.parse_error, {_q(non_utf8.REASON_PREFIX)}) then p.parse_error
           else nullif(concat_ws('; ', {", ".join(rules)}), '') end as reason,
      p.record_type,
      p.line_id,
      cast({start} as DATE) as usage_date,
      {start} as charge_period_start,
      {end} as charge_period_end,
      coalesce(try_cast(p.billing_period as DATE), date_trunc('month', {start})::DATE)
        as billing_period,
      p.account_id, p.project_id, p.workspace_id, p.api_key_id, p.provider, p.model, p.sku,
      p.description, p.token_type, p.service_tier,
      try_cast(p.is_batch as BOOLEAN) as is_batch,
      p.region,
      cast({_num("quantity")} as DECIMAL(38,9)) as quantity,
      p.unit,
      case when p.token_type in ({token_lines})
        then cast(round({_num("quantity")} * coalesce({_num("token_scale")}, 1)) as BIGINT)
      end as tokens,
      {money["billed_cost"]} as billed_cost,
      coalesce({money["effective_cost"]}, {money["billed_cost"]}) as effective_cost,
      {money["credits"]} as credits,
      {money["list_unit_price"]} as list_unit_price,
      {money["unit_price"]} as unit_price,
      upper(trim(p.currency)) as currency,
      p.tags
    from {parsed} as p
    """


def _parse_file(con, parser, path: Path, into: str) -> non_utf8.Repaired | None:
    """``parser(con, path, into)``; when it fails on text that is not UTF-8 (only then: the
    normal path costs nothing), the slow path of ``raw/non_utf8.py``: a CSV or JSON-lines file
    is streamed once into a repaired copy (each bad line's first bad byte replaced by a mark,
    every delimiter, quote and newline kept, so records stay one for one), the copy is parsed
    the same way, and each record holding a mark becomes an unparsed line of ``into`` with the
    reason (``not UTF-8 text: byte 0xe9 at column 57``), every other field NULL: no money,
    date or key is read from a repaired line. Refused with the line, the byte and the iconv
    to run: a file mostly not UTF-8 (another encoding), a bad header line, records that are
    not lines (admin-API report pages, a JSON array) or that span bad lines."""
    try:
        parser(con, path, into)
        return None
    except BillingFileError as exc:
        if not non_utf8.is_not_utf8_error(exc):
            raise
        failure = exc
    csv = path.name.lower().endswith((".csv", ".csv.gz"))
    if not csv and (path.name.lower().endswith(".parquet") or _kind(path) != "jsonl"):
        raise failure  # its message is the sentence (sniff.read_failure)

    def reparse(copy: Path) -> None:
        con.execute(f"drop table if exists {MARKED}")
        con.execute(f"drop table if exists {into}")
        parser(con, copy, into)

    repaired = non_utf8.reread_repaired(path, reparse, BillingFileError, failure)
    first = (str(path), repaired.line_numbers[0], repaired.bytes_[0])
    try:
        if not con.execute("select count(*) from duckdb_tables() where temporary and "
                           f"table_name = '{MARKED}'").fetchone()[0]:
            raise non_utf8.NotOneForOne(non_utf8.advice(
                *first, "; its records are not lines of the file (admin-API report pages?), "
                "so the bad ones cannot be quarantined alone"))
        non_utf8.check_marked(con, MARKED, repaired, str(path), header=csv)
    except non_utf8.NotOneForOne as exc:
        con.execute(f"drop table if exists {into}")
        con.execute(f"drop table if exists {MARKED}")
        raise BillingFileError(str(exc)) from failure
    non_utf8.quarantine_marked(con, into, MARKED, repaired, [
        c for c in PARSED_COLUMNS if c not in ("source_line", "raw_line", "parse_error")])
    return repaired


def _kind(path: Path) -> str | None:
    try:
        return sniff(path).kind
    except SniffError:
        return None


def _check_parsed(con, table: str, path: Path) -> None:
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    missing = [c for c in PARSED_COLUMNS if c not in cols]
    if missing:
        raise BillingFileError(f"parser for {path} produced no column {missing[0]!r}")


def ensure_tables(con) -> None:
    con.execute("create schema if not exists raw")
    con.execute(duckdb_ddl("raw.billing_lines", BILLING_LINES_COLUMNS))
    con.execute(duckdb_ddl("raw.quarantine", QUARANTINE_COLUMNS))
    con.execute(duckdb_ddl("raw.pii_redactions", PII_REDACTIONS_COLUMNS))
    con.execute(duckdb_ddl("raw.load_audit", LOAD_AUDIT_COLUMNS))


def ingest_billing(
    con,
    vendor: str,
    paths: Iterable[str | Path],
    *,
    load_date: date | None = None,
    month: date | None = None,
    window_days_before: int = 7,
    window_days_after: int = 1,
    sink=None,
    replace: bool = False,
) -> list[LoadResult]:
    """Parse, validate and publish ``paths`` of one vendor; one LoadResult per partition.
    ``replace`` confirms a load the shrink guard (``ingestion/raw/guard.py``) would refuse: one
    with no valid line, or offering under 10% of the lines a partition holds.
    ``sink`` publishes the staged run (default: DuckDBBillingSink on ``con``'s warehouse;
    ``ingestion.billing.bigquery.BigQueryBillingSink`` for BigQuery)."""
    if vendor not in VENDORS:
        raise BillingError(f"unknown billing vendor {vendor!r}; expected one of {list(VENDORS)}")
    if load_date is not None and month is not None:
        raise BillingError("give --date or --month, not both")
    if month is not None:
        month = month.replace(day=1)
    files = expand_paths(paths)
    for path in files:
        _check_vendor(path, vendor)
    parser = get_parser(vendor)
    con.execute("set TimeZone='UTC'")
    started = datetime.now(UTC).replace(tzinfo=None)  # audit metadata only, never logic

    # 1. parse every file (in one scan where the parser can), then type and validate all of
    #    them in one statement.
    con.execute("drop table if exists _billing_parsed")
    cols = ", ".join(PARSED_COLUMNS)
    many = get_many_parser(vendor) if len(files) > 1 else None
    if many is not None:
        try:
            many(con, files, "_billing_parsed_many")
        except BillingFileError as exc:
            if not non_utf8.is_not_utf8_error(exc):
                raise
            many = None  # one by one: the file not UTF-8 takes the slow path
    if many is not None:
        _check_parsed(con, "_billing_parsed_many", files[0])
        names = ", ".join(f"({i}, {_q(str(p))})" for i, p in enumerate(files))
        con.execute(
            f"create temp table _billing_parsed as select m.file_idx, f.source_file, "
            f"{', '.join('m.' + c for c in PARSED_COLUMNS)} from _billing_parsed_many as m "
            f"join (values {names}) as f(file_idx, source_file) using (file_idx)"
        )
        con.execute("drop table _billing_parsed_many")
    notes: dict[str, str] = {}
    for i, path in enumerate(files):
        if many is not None:
            break
        parsed = f"_billing_parsed_{i}"
        con.execute(f"drop table if exists {parsed}")
        repaired = _parse_file(con, parser, path, parsed)
        if repaired is not None:
            notes[str(path)] = repaired.note(str(path))
        _check_parsed(con, parsed, path)
        if i == 0:
            con.execute(
                f"create temp table _billing_parsed as select {i} as file_idx, "
                f"{_q(str(path))} as source_file, {cols} from {parsed}"
            )
        else:
            con.execute(
                f"insert into _billing_parsed select {i}, {_q(str(path))}, {cols} from {parsed}"
            )
        con.execute(f"drop table {parsed}")
    con.execute("drop table if exists _billing_typed")
    con.execute("create temp table _billing_typed as " + _typed_sql("_billing_parsed"))
    con.execute("drop table _billing_parsed")

    # 2. partition per file, then check, dedupe, redact and publish every partition at once.
    plan = _partition_plan(con, vendor, files, load_date, month)
    try:
        results = _publish(
            con, vendor, files, plan, started, window_days_before, window_days_after, sink,
            replace,
        )
        for r in results:
            r.notes = [notes[f.source_file] for f in r.files if f.source_file in notes]
        return results
    finally:
        con.execute("drop table if exists _billing_typed")
        con.execute("drop table if exists _billing_plan")
        con.execute("drop table if exists _billing_checked")


def _partition_plan(con, vendor, files, load_date, month) -> dict[tuple[date, str], list[int]]:
    if load_date is not None:
        return {(load_date, "window"): list(range(len(files)))}
    if month is not None:
        return {(month, "month"): list(range(len(files)))}
    rows = con.execute(
        """
        select file_idx, max(usage_date) as last_day, mode(billing_period) as period
        from _billing_typed where usage_date is not null group by file_idx
        """
    ).fetchall()
    dated = {r[0]: (r[1], r[2]) for r in rows}
    plan: dict[tuple[date, str], list[int]] = {}
    for i, path in enumerate(files):
        if i not in dated:
            raise BillingFileError(_undatable(con, i, path))
        last_day, period = dated[i]
        key = (period, "month") if vendor in MONTHLY_VENDORS else (last_day, "window")
        plan.setdefault(key, []).append(i)
    return plan


def _undatable(con, idx: int, path: Path) -> str:
    """Why file ``idx`` cannot be dated, as advice that helps: --date only for a file whose
    lines are valid but carry no usage date; an empty file or one with no valid line is
    refused for what it is (a --date would only make the load be refused as empty)."""
    lines, invalid = guard.no_valid_rows(con, "_billing_typed", idx, "line")
    if lines == 0:
        return f"{path} holds no billing line (an empty export?): nothing to load"
    if invalid:
        return (f"{path} has no valid line ({invalid}): nothing was loaded. "
                "Is it the right file and --vendor?")
    return (f"{path} has no line with a usage date to date the load by; "
            "pass --date YYYY-MM-DD or --month YYYY-MM")


def _publish(con, vendor, files, plan, started, before, after, sink=None,
             replace=False) -> list[LoadResult]:
    source = f"billing_{vendor}"
    rows = ", ".join(
        f"({i}, DATE '{part_date}', {_q(rule)})"
        for (part_date, rule), idxs in plan.items()
        for i in idxs
    )
    con.execute("drop table if exists _billing_plan")
    con.execute(
        f"create temp table _billing_plan as select * from (values {rows}) "
        "as t(file_idx, part_date, rule)"
    )
    window = (
        f"case when p.rule = 'window' and (t.usage_date < p.part_date - {int(before)} "
        f"or t.usage_date >= p.part_date + {int(after)}) then "
        f"'usage date outside the load window [' || strftime(p.part_date - {int(before)}, "
        f"'%Y-%m-%d') || ', ' || strftime(p.part_date + {int(after)}, '%Y-%m-%d') || ')' "
        "when p.rule = 'month' and t.billing_period <> p.part_date then "
        "'billing period is not ' || strftime(p.part_date, '%Y-%m') end"
    )
    con.execute("drop table if exists _billing_checked")
    con.execute(
        f"""
        create temp table _billing_checked as
        with checked as (
          select t.* replace (coalesce(t.reason, {window}) as reason), p.part_date
          from _billing_typed as t join _billing_plan as p using (file_idx)
        )
        select *,
          case when reason is null then
            row_number() over (
              partition by part_date, reason is null, line_id order by file_idx, source_line
            ) > 1
          else false end as is_duplicate
        from checked
        """
    )
    # redact free text and count what was redacted (fields: description, tags, raw_line).
    counts_sql = []
    for fld, where in (
        ("description", "reason is null and not is_duplicate"),
        ("tags", "reason is null and not is_duplicate"),
        ("raw_line", "reason is not null"),
    ):
        for kind, expr in redact.pii_count_sql(f"{fld}::VARCHAR").items():
            counts_sql.append(
                f"select part_date, source_file, {_q(fld)} as field, {_q(kind)} as kind, "
                f"sum({expr})::BIGINT as redactions from _billing_checked where {where} "
                "group by part_date, source_file"
            )
    line_cols = [c for c, _, _ in BILLING_LINES_COLUMNS]
    select_cols = []
    for c in line_cols:
        if c == "load_date":
            select_cols.append("part_date")
        elif c == "vendor":
            select_cols.append(_q(vendor))
        elif c == "description":
            select_cols.append(redact.redact_sql("description"))
        elif c == "tags":
            select_cols.append(f"try_cast({redact.redact_sql('tags')} as JSON)")
        else:
            select_cols.append(c)
    # stage the four output tables (the rows each raw table receives)
    con.execute("drop table if exists _billing_out_lines")
    con.execute(
        "create temp table _billing_out_lines as select "
        + ", ".join(f"{e} as {c}" for e, c in zip(select_cols, line_cols, strict=True))
        + " from _billing_checked where reason is null and not is_duplicate "
        "order by file_idx, source_line"
    )
    con.execute("drop table if exists _billing_out_quarantine")
    con.execute(
        f"""create temp table _billing_out_quarantine as
        select part_date as load_date, {_q(source)} as source, source_file,
            source_line as line_number, reason,
            case when unparsed then {redact.unparsed_line_sql("raw_line")}
                 else {redact.redact_sql("raw_line")} end as raw_line
        from _billing_checked where reason is not null order by file_idx, source_line"""
    )
    con.execute("drop table if exists _billing_out_pii")
    if counts_sql:
        con.execute(
            f"""create temp table _billing_out_pii as
            select part_date as load_date, {_q(source)} as source, source_file, field, kind,
                redactions
            from ({" union all ".join(counts_sql)}) where redactions > 0
            order by part_date, source_file, field, kind"""
        )
    else:
        con.execute(
            duckdb_ddl("_billing_out_pii", PII_REDACTIONS_COLUMNS).replace(
                "create table if not exists", "create temp table"
            )
        )
    per_file = con.execute(
        """select file_idx, count(*),
             count(*) filter (where reason is null and not is_duplicate),
             count(*) filter (where reason is not null),
             count(*) filter (where is_duplicate)
           from _billing_checked group by file_idx order by file_idx"""
    ).fetchall()
    counted = {r[0]: r[1:] for r in per_file}
    sink = sink or DuckDBBillingSink()
    offered = {d: sum(counted.get(i, (0, 0))[1] for i in idxs) for (d, _), idxs in plan.items()}
    shrinking = guard.shrinks(offered, sink.partition_rows(con, vendor, list(offered)),
                              f"billing {vendor}")
    status = guard.REFUSED if shrinking and not replace else "loaded"
    finished = datetime.now(UTC).replace(tzinfo=None)
    results: list[LoadResult] = []
    audit_rows = []
    run = uuid.uuid4().hex[:12]
    for (part_date, _rule), idxs in plan.items():
        result = LoadResult(vendor, part_date, f"billing-{vendor}-{part_date}-{run}")
        for i in idxs:
            read, loaded, quarantined, dup = counted.get(i, (0, 0, 0, 0))
            result.files.append(FileAudit(str(files[i]), part_date, read, loaded, quarantined, dup))
            audit_rows.append(
                (result.load_id, source, str(files[i]), part_date, read, loaded,
                 quarantined, dup, started, finished, status)
            )  # fmt: skip
        results.append(result)
    con.execute("drop table if exists _billing_out_audit")
    con.execute(duckdb_ddl("_billing_out_audit", LOAD_AUDIT_COLUMNS).replace(
        "create table if not exists", "create temp table"))  # fmt: skip
    con.executemany(
        f"insert into _billing_out_audit values ({', '.join('?' * len(LOAD_AUDIT_COLUMNS))})",
        audit_rows,
    )
    staged = StagedBilling(
        vendor=vendor,
        source=source,
        load_dates=tuple(sorted({d for d, _ in plan})),
        lines="_billing_out_lines",
        quarantine="_billing_out_quarantine",
        pii_redactions="_billing_out_pii",
        audit="_billing_out_audit",
    )
    try:
        if status == guard.REFUSED:
            sink.append_audit(con, staged.audit)
            raise BillingLoadRefused(shrinking, _refusal_hint(con, vendor))
        sink.publish(con, staged)
    finally:
        for t in ("lines", "quarantine", "pii", "audit"):
            con.execute(f"drop table if exists _billing_out_{t}")
    return results


def _refusal_hint(con, vendor: str) -> str:
    """Why the lines were rejected (the commonest reasons), since a refused load stores none:
    every line rejected for missing columns usually means a file of another vendor."""
    rows = con.execute(
        "select reason, count(*) from _billing_checked where reason is not null "
        "group by reason order by count(*) desc, reason limit 2"
    ).fetchall()
    if not rows:
        return ""
    reasons = "; ".join(f"{n:,} line(s): {r}" for r, n in rows)
    return (f"Lines rejected: {reasons} (is this an export of {vendor}? check --vendor and "
            "the file).")


@dataclass(frozen=True)
class StagedBilling:
    """TEMP tables (on the loading connection) holding one run's rows for each raw table, and
    the partitions they replace: (vendor, load_date) of raw.billing_lines and
    (source, load_date) of raw.quarantine / raw.pii_redactions; audit rows are appended."""

    vendor: str
    source: str
    load_dates: tuple[date, ...]
    lines: str
    quarantine: str
    pii_redactions: str
    audit: str


# Test hook: called inside the DuckDB transaction after the deletes (to prove atomicity).
_after_delete: Callable[[], None] | None = None


class DuckDBBillingSink:
    """Publishes a run to the DuckDB warehouse in ONE transaction."""

    def partition_rows(self, con, vendor: str, load_dates: list[date]) -> dict[date, int]:
        """Lines raw.billing_lines holds now for ``vendor`` on each of ``load_dates``."""
        ensure_tables(con)
        rows = con.execute(
            "select load_date, count(*) from raw.billing_lines "
            "where vendor = ? and list_contains(?, load_date) group by load_date",
            [vendor, sorted(set(load_dates))],
        ).fetchall()
        return {d: int(n) for d, n in rows}

    def append_audit(self, con, staged_audit: str) -> None:
        """Append audit rows alone (a refused load: nothing else is published)."""
        ensure_tables(con)
        append_audit(con, staged_audit)

    def publish(self, con, staged: StagedBilling) -> None:
        dates = ", ".join(f"DATE '{d}'" for d in staged.load_dates)
        pairs = (
            ("raw.billing_lines", BILLING_LINES_COLUMNS, staged.lines, "vendor", staged.vendor),
            ("raw.quarantine", QUARANTINE_COLUMNS, staged.quarantine, "source", staged.source),
            ("raw.pii_redactions", PII_REDACTIONS_COLUMNS, staged.pii_redactions, "source",
             staged.source),
        )  # fmt: skip
        con.execute("begin transaction")
        try:
            ensure_tables(con)
            for table, _, _, key, value in pairs:
                con.execute(
                    f"delete from {table} where {key} = ? and load_date in ({dates})", [value]
                )
            if _after_delete is not None:
                _after_delete()
            for table, columns, src, _, _ in pairs:
                cols = column_names(columns)
                con.execute(f"insert into {table} ({cols}) select {cols} from {src}")
            append_audit(con, staged.audit)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
