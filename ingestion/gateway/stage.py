"""Stage the three data tables of a load from ``_tb_rows`` (all load dates).

- ``_tb_calls``: the loaded rows as ``raw.gateway_calls`` columns. Only the values the
  redactor's gate flags (per row for per-call text, ``needs_pii``; once per distinct value for
  the repeating fields) are redacted, each once, and only the values the redactor changes are
  mapped back (``_tb_red``); customer ids are pseudonymised once per
  distinct id (``_tb_customers``); every other row passes through untouched. A sink that reads
  its published rows through the staging connection (DuckDB) gets a VIEW: the calls are
  inserted straight from it, never copied first.
- ``_tb_quarantine``: each rejected record after the same field rules as a loaded row (prompt
  text dropped, identifiers pseudonymised with the SAME keys, then the whole record redacted);
  a line that did not parse keeps only its shape.
- ``_tb_pii``: redaction counts by file, field and kind, from (original, redacted) pairs, so no
  field is redacted twice.
- ``_tb_files``: per-file counts for the audit and the report (``count_files``).
"""

from __future__ import annotations

from ingestion.gateway import tiers
from ingestion.gateway.context import SOURCE, FileReport, LoadContext
from ingestion.gateway.schema import (
    GATEWAY_CALLS_COLUMNS,
    IDENTIFIER_FIELDS,
    NATIVE_FIELDS,
    PROMPT_TEXT_FIELDS,
)
from ingestion.gateway.session import drop
from ingestion.gateway.session import ident as _i
from ingestion.gateway.session import q as _q
from ingestion.gateway.validate import (
    FREE_TEXT_FIELDS,
    ROW_GATED_FIELDS,
    VALUE_GATED_FIELDS,
    rebuilt_raw_line,
)
from ingestion.raw import redact

# identifier and prompt-text fields: taken out of a quarantined record before it is redacted
SENSITIVE_FIELDS = (*IDENTIFIER_FIELDS, *PROMPT_TEXT_FIELDS)


def staging_tables(n: int) -> tuple[str, ...]:
    """The TEMP tables and views a load of ``n`` files leaves before publishing."""
    return ("_tb_rows", "_tb_typed", "_tb_dups", "_tb_losers", "_tb_red", "_tb_customers",
            *(f"_tb_{t}{k}" for k in range(n) for t in ("typed_batch", "first_batch",
                                                           "typed_spend")),
            *(f"_tb_typed_{i}{x}" for i in range(n) for x in ("", "_fix")),
            *(f"_tb_not_utf8_{i}" for i in range(n)))


def stage(ctx: LoadContext) -> None:
    """_tb_calls (a table, or for a direct sink a view over _tb_rows, _tb_red and
    _tb_customers, which then stay until published), _tb_quarantine, _tb_pii."""
    con, key = ctx.con, ctx.settings.require_pii_key()
    _redact_loaded(con)
    # Pseudonyms of the distinct customer ids (few), joined back: one HMAC per customer.
    con.execute(
        f"""
        create or replace temp table _tb_customers as
        select customer_id, {redact.pseudonymise_sql('customer_id', key)} as pseudonym
        from (select distinct customer_id from _tb_typed
              where reason is null and customer_id is not null)
        """
    )
    drop(con, "_tb_calls")
    con.execute(f"create temp {'view' if ctx.direct else 'table'} _tb_calls as {_calls_select()}")
    _stage_quarantine(con, key)
    _count_pii(con)
    for col in ("_record", "_unparsed", *SENSITIVE_FIELDS):
        con.execute(f"alter table _tb_quarantine drop column {_i(col)}")
    drop(con, "_tb_qred_long", "_tb_red_long", *(() if ctx.direct else ("_tb_red", "_tb_customers")))


def _redact_loaded(con) -> None:
    """_tb_red_long (file_idx, source_line, load_date, source_file, field, value, red): only the
    values of loaded rows that the redactor changes (the gate flags a superset of values);
    _tb_red: one map per such row, field -> redacted value.

    The cheap gate runs once per DISTINCT value of the repeating fields (VALUE_GATED_FIELDS:
    a model name, a tag, a metadata template repeat across thousands of rows) and per row only
    on the per-call text (ROW_GATED_FIELDS, flagged ``needs_pii`` by the typing statement).
    The full redactor then runs on the distinct gated values only, in a statement of its own:
    in one statement DuckDB evaluates ``redact_sql`` on every unpivoted value before the gate
    filters them, and its lambda costs ~2 us a value even where its own gate says no."""
    # distinct values of the repeating fields that trip the gate (of accepted rows: a superset
    # of the loaded ones): one scan, one grouping set per field (the other fields NULL in its
    # rows, which the unpivot drops)
    value_fields = ", ".join(_i(f) for f in VALUE_GATED_FIELDS)
    sets = ", ".join(f"({_i(f)})" for f in VALUE_GATED_FIELDS)
    con.execute(
        f"""
        create or replace temp table _tb_gate_values as
        select field, value from (
            unpivot (
                select {value_fields} from _tb_typed where reason is null
                group by grouping sets ({sets})
            ) on {value_fields} into name field value value
        )
        where {redact.may_contain_pii_sql('value')}
        """
    )
    gated_fields = [f for (f,) in con.execute(
        "select distinct field from _tb_gate_values order by field").fetchall()]
    keys = "file_idx, source_line, load_date, source_file"
    # per-call text: unpivot the flagged rows to (field, value), gate each value
    fields = ", ".join(_i(f) for f in ROW_GATED_FIELDS)
    parts = [
        f"""
        select {keys}, field, value
        from (
            unpivot (
                select {keys}, {fields}
                from _tb_rows where needs_pii and row_status = 'loaded'
            ) on {fields} into name field value value
        )
        where {redact.may_contain_pii_sql('value')}
        """
    ]
    # repeating fields: the loaded rows holding one of their gated values
    parts += [
        f"""
        select {keys}, {_q(f)} as field, r.{_i(f)} as value
        from _tb_rows r semi join (select value from _tb_gate_values where field = {_q(f)}) g
             on g.value = r.{_i(f)}
        where r.row_status = 'loaded'
        """
        for f in gated_fields
    ]
    con.execute("create or replace temp table _tb_gated as " + "union all".join(parts))
    con.execute(
        f"""
        create or replace temp table _tb_red_values as
        select value, {redact.redact_sql('value')} as red
        from (select distinct value from _tb_gated)
        """
    )
    con.execute(
        """
        create or replace temp table _tb_red_long as
        select g.file_idx, g.source_line, g.load_date, g.source_file, g.field, g.value, v.red
        from _tb_gated g join _tb_red_values v using (value)
        where v.red <> g.value
        """
    )
    drop(con, "_tb_gated", "_tb_red_values", "_tb_gate_values")
    con.execute(
        """
        create or replace temp table _tb_red as
        select file_idx, source_line, map_from_entries(list({'k': field, 'v': red})) as m
        from _tb_red_long group by file_idx, source_line
        """
    )


def _as_json(col: str) -> str:
    return (
        f"case when {col} is null then NULL::JSON when json_valid({col}) then ({col})::JSON "
        f"else to_json({col}) end"
    )


def _calls_select() -> str:
    """One pass over the loaded rows; a row in _tb_red takes its redacted fields from there."""
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
        # a changed value is never NULL: a missing key means the field was not changed; the
        # map is looked up only for the few rows that have one (CASE evaluates lazily)
        return f"case when x.m is null then r.{_i(f)} else coalesce(x.m[{_q(f)}], r.{_i(f)}) end"

    for f, t in NATIVE_FIELDS.items():
        if t in {"int", "float"}:
            exprs[f] = f"t_{f}"
        elif f in FREE_TEXT_FIELDS:
            exprs[f] = red(f)
    exprs["service_tier"] = tiers.normalise_sql(red("service_tier"))
    # a loaded row's metadata passed the rule (a JSON object): one parse, the cast; a redacted
    # value and extra (built by the reader, never checked) keep the text-or-JSON safety net
    exprs["metadata"] = f"case when x.m is null then r.metadata::JSON else {_as_json(red('metadata'))} end"
    exprs["extra"] = _as_json(red("extra"))
    cols = ",\n            ".join(
        f"cast({exprs[name]} as {ddb}) as {name}" for name, ddb, _ in GATEWAY_CALLS_COLUMNS
    )
    return (
        f"select {cols} from _tb_rows r "
        "left join _tb_red x using (file_idx, source_line) "
        "left join _tb_customers c on c.customer_id = r.customer_id "
        "where r.row_status = 'loaded'"
    )


def _stage_quarantine(con, key: str) -> None:
    """_tb_quarantine: the quarantined rows, each record after the field rules of a loaded row,
    with helper columns (_record, _unparsed, the sensitive fields) for the PII counts."""
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
                select file_idx, source_line, {rebuilt_raw_line(typed=True)} as rebuilt
                from _tb_typed semi join (
                    select file_idx, source_line from _tb_qrows where raw_line is null
                ) k using (file_idx, source_line)
            ) w using (file_idx, source_line)
        )"""
    # The record after the field rules of a loaded row: prompt text dropped (counted under its
    # field), identifiers replaced by the SAME keyed pseudonyms as loaded rows (PII in them
    # counted under their field), then the whole record redacted (counted under raw_line).
    taken = ", ".join(
        f"case when not unparsed then raw_line->>{_q(f)} end as {_i(f)}" for f in SENSITIVE_FIELDS)
    patch = ", ".join(
        [f"{_q(f)}, {redact.pseudonymise_sql(_i(f), key)}" for f in IDENTIFIER_FIELDS]
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
               _record, unparsed as _unparsed, {", ".join(_i(f) for f in SENSITIVE_FIELDS)},
               file_idx
        from (select *, {record} as _record from (select *, {taken} from {q}))
        """
    )
    drop(con, "_tb_qrows")


def _count_pii(con) -> None:
    """_tb_pii: counts by field and kind of loaded rows that needed redaction; of quarantined
    records (the record as stored, and the identifier and prompt fields it no longer holds);
    of lines that did not parse (what the redactor finds in the whole line, of which only the
    shape stays)."""
    field_counts = "".join(
        f"\n        union all\n        select load_date, source_file, {_q(f)}, {_i(f)}, "
        f"{redact.redact_sql(_i(f))} from _tb_quarantine "
        f"where not _unparsed and {_i(f)} is not null"
        for f in SENSITIVE_FIELDS
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


def count_files(ctx: LoadContext) -> None:
    """_tb_files (rows read, loaded, quarantined, duplicate and of an unknown service tier per
    file), ``ctx.report.files`` and a note per file with unknown tiers."""
    con = ctx.con
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
    counts = con.execute(
        "select file_idx, load_date, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "from _tb_files order by file_idx"
    ).fetchall()
    ctx.report.files = [
        FileReport(ctx.source_names[i], ctx.formats[i], d, read_, loaded, quar, dup)
        for i, d, read_, loaded, quar, dup in counts
    ]
    for i, unknown in con.execute(
        "select file_idx, rows_unknown_tier from _tb_files where rows_unknown_tier > 0 "
        "order by file_idx"
    ).fetchall():
        ctx.report.notes.append(
            f"{ctx.source_names[i]}: {unknown:,} loaded calls carry a service_tier outside "
            f"{', '.join(sorted(set(tiers.SERVICE_TIERS.values())))} (kept as logged, priced "
            "at the standard price; see ingestion/gateway/tiers.py)"
        )
