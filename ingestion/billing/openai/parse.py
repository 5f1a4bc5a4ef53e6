"""OpenAI billing: Usage API completions buckets and Costs API results -> billing lines.

Accepted files:
- admin-API pages as ``extract.py`` saves them (one page, JSON Lines of pages or an array of
  pages) from ``/v1/organization/usage/completions`` (``organization.usage.completions.result``),
  ``/v1/organization/usage/embeddings`` and ``/v1/organization/costs``
  (``organization.costs.result``);
- the dashboard's CSV exports of the same reports (one row per bucket result, bucket bounds in
  ``start_time``/``end_time`` epoch seconds; costs as ``amount_value``/``amount_currency``).

A completions result gives one line per non-zero token type. OpenAI's ``input_tokens`` is ALL
input (cached included), so ``input`` here is ``input_uncached_tokens`` (or, when absent,
``input_tokens - input_cached_tokens - input_cache_write_tokens``); ``cache_read`` is
``input_cached_tokens``; ``cache_write_5m`` is ``input_cache_write_tokens``; ``request`` is
``num_model_requests``. A costs result is one ``cost`` line; its ``line_item``
("gpt-4o-2024-08-06, cached input") gives the model and token type.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.billing.common import (
    create_parsed,
    iso_from_epoch,
    parsed_select,
    q,
    read_table,
    report_results,
    require_columns,
)

USAGE_OBJECTS = ("organization.usage.completions.result", "organization.usage.embeddings.result")
COST_OBJECT = "organization.costs.result"


KEEP = ("file_idx",)


def _f(name: str) -> str:
    return f"(result->>'{name}')"


def _nonzero(expr: str) -> str:
    return f"({expr} is not null and trim({expr}) not in ('0', '0.0'))"


def _uncached_input() -> str:
    diff = (
        f"try_cast({_f('input_tokens')} as DECIMAL(38,0)) "
        f"- coalesce(try_cast({_f('input_cached_tokens')} as DECIMAL(38,0)), 0) "
        f"- coalesce(try_cast({_f('input_cache_write_tokens')} as DECIMAL(38,0)), 0)"
    )
    return (
        f"coalesce({_f('input_uncached_tokens')}, "
        f"case when ({diff}) is null then {_f('input_tokens')} else cast(({diff}) as VARCHAR) end)"
    )


# token type -> (quantity expression, unit)
USAGE_TOKENS: tuple[tuple[str, str, str], ...] = (
    ("input", _uncached_input(), "tokens"),
    ("cache_read", _f("input_cached_tokens"), "tokens"),
    ("cache_write_5m", _f("input_cache_write_tokens"), "tokens"),
    ("output", _f("output_tokens"), "tokens"),
    ("request", _f("num_model_requests"), "requests"),
)

COST_TOKEN_RULES = (
    ("(?i)cache(d)?[ _-]?write", "cache_write_5m"),
    ("(?i)cached|cache[ _-]?read", "cache_read"),
    ("(?i)^\\s*input", "input"),
    ("(?i)^\\s*output", "output"),
)


def _key(*parts: str) -> str:
    """The line's dimensions, plus a hash of the whole result: only an identical result (the
    same page saved twice) is a duplicate; two results of one group both load."""
    dims = ", ".join(f"coalesce(cast({p} as VARCHAR), '')" for p in parts)
    return f"concat_ws('|', {dims}, substr(md5(cast(result as VARCHAR)), 1, 16))"


def _common(view_alias: str = "") -> dict[str, str]:
    start = iso_from_epoch("(bucket->>'start_time')")
    end = iso_from_epoch("(bucket->>'end_time')")
    return {
        "source_line": "record_no",
        "raw_line": "cast(result as VARCHAR)",
        "charge_period_start": start,
        "charge_period_end": end,
        "project_id": _f("project_id"),
        "api_key_id": _f("api_key_id"),
        "provider": "'openai'",
        "service_tier": _f("service_tier"),
        "is_batch": _f("batch"),
    }


def _selects(source: str) -> list[str]:
    obj = _f("object")
    selects = []
    for token_type, qty, unit in USAGE_TOKENS:
        exprs = _common()
        exprs.update(
            record_type="'usage'",
            line_id=_key(
                "'usage'",
                "bucket->>'start_time'",
                _f("project_id"),
                _f("user_id"),
                _f("api_key_id"),
                _f("model"),
                _f("batch"),
                _f("service_tier"),
                q(token_type),
            ),
            model=_f("model"),
            sku=f"{obj} || ':' || {q(token_type)}",
            token_type=q(token_type),
            quantity=qty,
            unit=q(unit),
        )
        where = f"{obj} in ({', '.join(q(o) for o in USAGE_OBJECTS)}) and {_nonzero(qty)}"
        selects.append(parsed_select(exprs, f"{source} where {where}", KEEP))

    line_item = _f("line_item")
    kind = f"regexp_extract({line_item}, ',\\s*(.*)$', 1)"
    rules = " ".join(
        f"when regexp_matches({kind}, {q(rx)}) then {q(t)}" for rx, t in COST_TOKEN_RULES
    )
    exprs = _common()
    exprs.update(
        record_type="'cost'",
        line_id=_key(
            "'cost'", "bucket->>'start_time'", _f("project_id"), _f("api_key_id"), line_item
        ),
        model=f"nullif(trim(regexp_extract({line_item}, '^([^,]*)', 1)), '')",
        sku=line_item,
        description=line_item,
        token_type=f"(case {rules} else 'other' end)",
        is_batch=f"cast(regexp_matches({kind}, '(?i)batch') as VARCHAR)",
        quantity=_f("quantity"),
        unit=_f("quantity_unit"),
        billed_cost="(result->'amount'->>'value')",
        currency="(result->'amount'->>'currency')",
    )
    selects.append(parsed_select(exprs, f"{source} where {obj} = {q(COST_OBJECT)}", KEEP))

    known = ", ".join(q(o) for o in (*USAGE_OBJECTS, COST_OBJECT))
    exprs = _common()
    exprs.update(
        parse_error=f"'unsupported OpenAI result object: ' || coalesce({obj}, 'none')",
        record_type="'usage'",
        token_type="'other'",
    )
    selects.append(
        parsed_select(exprs, f"{source} where {obj} is null or {obj} not in ({known})", KEEP)
    )
    return selects


def _csv_as_results(con, path: Path, view: str, file_idx: int = 0) -> None:
    """Dashboard CSV exports -> the same (record_no, bucket, result) view as the API pages."""
    cols = read_table(con, path, "_openai_csv")
    lower = {c.lower() for c in cols}
    require_columns(path, cols, ("start_time", "end_time"), "OpenAI CSV export")
    if "amount_value" in lower:
        require_columns(path, cols, ("amount_value", "amount_currency"), "OpenAI costs export")
        obj = COST_OBJECT
    else:
        require_columns(
            path, cols, ("model", "input_tokens", "output_tokens"), "OpenAI usage export"
        )
        obj = USAGE_OBJECTS[0]
    fields = ", ".join(f"{q(c)}, {_quote_ident(c)}" for c in cols)
    amount = (
        ", 'amount', json_object('value', amount_value, 'currency', amount_currency)"
        if obj == COST_OBJECT
        else ""
    )
    con.execute(
        f"""create or replace temp table {view} as
        select {file_idx} as file_idx, source_line as record_no,
          json_object('start_time', start_time, 'end_time', end_time) as bucket,
          json_object('object', {q(obj)}, {fields}{amount}) as result
        from _openai_csv"""
    )
    con.execute("drop table if exists _openai_csv")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read(con, path: Path, into: str) -> None:
    path = Path(path)
    view = "_openai_results"
    if path.name.lower().endswith((".csv", ".csv.gz")):
        _csv_as_results(con, path, view)
    else:
        report_results(con, path, view)
    create_parsed(con, into, _selects(view))
    con.execute(f"drop table if exists {view}")


def read_many(con, paths: list[Path], into: str) -> None:
    """All files in one scan (JSON pages) plus one read per CSV export; ``into`` gets
    ``file_idx`` (position in ``paths``) and the parser columns."""
    paths = [Path(p) for p in paths]
    csv = [i for i, p in enumerate(paths) if p.name.lower().endswith((".csv", ".csv.gz"))]
    pages = [i for i in range(len(paths)) if i not in csv]
    views = []
    if pages:
        report_results(con, [paths[i] for i in pages], "_openai_results", pages)
        views.append("select * from _openai_results")
    for i in csv:
        _csv_as_results(con, paths[i], f"_openai_results_{i}", i)
        views.append(f"select * from _openai_results_{i}")
    con.execute("create or replace temp table _openai_all as " + " union all by name ".join(views))
    create_parsed(con, into, _selects("_openai_all"), order="file_idx, source_line")
    for v in ["_openai_all", "_openai_results", *(f"_openai_results_{i}" for i in csv)]:
        con.execute(f"drop table if exists {v}")
