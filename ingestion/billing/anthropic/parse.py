"""Anthropic billing: Admin API messages usage report and cost report -> billing lines.

Accepted files: pages of ``/v1/organizations/usage_report/messages`` and
``/v1/organizations/cost_report`` as ``extract.py`` saves them (one page, JSON Lines of pages or an
array of pages). Buckets carry ``starting_at``/``ending_at`` (RFC 3339).

Usage results give one line per non-zero token type. Anthropic counts input without cache
tokens, so the project's all-input ``input_tokens`` is
``uncached_input_tokens + cache_creation.ephemeral_5m + cache_creation.ephemeral_1h +
cache_read_input_tokens``: lines ``input`` (uncached), ``cache_write_5m``, ``cache_write_1h`` and
``cache_read`` carry those four terms (their sum over ``schema.INPUT_TOKEN_TYPES`` is the
converted value). ``server_tool_use.web_search_requests`` becomes a ``request`` line.

Cost results are one ``cost`` line each. Their ``amount`` is a decimal string in CENTS of
``currency``: the parser sets ``cost_scale`` 0.01, so raw.billing_lines holds USD.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.billing.common import create_parsed, parsed_select, q, report_results

COST_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}

# token type -> (JSON path in a usage result, unit)
USAGE_TOKENS: tuple[tuple[str, str, str], ...] = (
    ("input", "$.uncached_input_tokens", "tokens"),
    ("cache_write_5m", "$.cache_creation.ephemeral_5m_input_tokens", "tokens"),
    ("cache_write_1h", "$.cache_creation.ephemeral_1h_input_tokens", "tokens"),
    ("cache_read", "$.cache_read_input_tokens", "tokens"),
    ("output", "$.output_tokens", "tokens"),
    ("request", "$.server_tool_use.web_search_requests", "web_search_requests"),
)


KEEP = ("file_idx",)


def _f(name: str) -> str:
    return f"(result->>'{name}')"


def _key(*parts: str) -> str:
    """The line's dimensions, plus a hash of the whole result: only an identical result (the
    same page saved twice) is a duplicate; two results of one group both load."""
    dims = ", ".join(f"coalesce(cast({p} as VARCHAR), '')" for p in parts)
    return f"concat_ws('|', {dims}, substr(md5(cast(result as VARCHAR)), 1, 16))"


def _common() -> dict[str, str]:
    return {
        "source_line": "record_no",
        "raw_line": "cast(result as VARCHAR)",
        "charge_period_start": "(bucket->>'starting_at')",
        "charge_period_end": "(bucket->>'ending_at')",
        "workspace_id": _f("workspace_id"),
        "api_key_id": _f("api_key_id"),
        "provider": "'anthropic'",
        "model": _f("model"),
        "service_tier": _f("service_tier"),
        "is_batch": f"case when {_f('service_tier')} = 'batch' then 'true' else 'false' end",
    }


def _selects(source: str) -> list[str]:
    is_cost = "json_exists(result, '$.amount')"
    selects = []
    for token_type, path, unit in USAGE_TOKENS:
        qty = f"json_extract_string(result, {q(path)})"
        exprs = _common()
        exprs.update(
            record_type="'usage'",
            line_id=_key(
                "'usage'",
                "bucket->>'starting_at'",
                _f("workspace_id"),
                _f("api_key_id"),
                _f("model"),
                _f("service_tier"),
                _f("context_window"),
                q(token_type),
            ),
            sku=f"'messages:' || {q(token_type)} || coalesce(':' || {_f('context_window')}, '')",
            token_type=q(token_type),
            quantity=qty,
            unit=q(unit),
        )
        where = f"not {is_cost} and {qty} is not null and trim({qty}) not in ('0', '0.0')"
        selects.append(parsed_select(exprs, f"{source} where {where}", KEEP))

    mapping = " ".join(f"when {q(k)} then {q(v)}" for k, v in COST_TOKEN_TYPES.items())
    exprs = _common()
    exprs.update(
        record_type="'cost'",
        line_id=_key(
            "'cost'",
            "bucket->>'starting_at'",
            _f("workspace_id"),
            _f("model"),
            _f("service_tier"),
            _f("context_window"),
            _f("cost_type"),
            _f("token_type"),
            _f("description"),
        ),
        sku=f"concat_ws(':', {_f('cost_type')}, {_f('token_type')}, {_f('context_window')})",
        description=_f("description"),
        token_type=f"(case {_f('token_type')} {mapping} else 'other' end)",
        billed_cost=_f("amount"),
        cost_scale="'0.01'",
        currency=_f("currency"),
    )
    selects.append(parsed_select(exprs, f"{source} where {is_cost}", KEEP))
    return selects


def read(con, path: Path, into: str) -> None:
    view = "_anthropic_results"
    report_results(con, Path(path), view)
    create_parsed(con, into, _selects(view))
    con.execute(f"drop table if exists {view}")


def read_many(con, paths: list[Path], into: str) -> None:
    """All files in one scan; ``into`` gets ``file_idx`` (position in ``paths``) and the
    parser columns."""
    view = "_anthropic_results"
    report_results(con, [Path(p) for p in paths], view)
    create_parsed(con, into, _selects(view), order="file_idx, source_line")
    con.execute(f"drop table if exists {view}")
