"""Google Cloud billing export (BigQuery standard/detailed usage cost schema) -> billing lines.

Accepted files: the export table's rows as newline-delimited JSON (what ``bq extract
--destination_format NEWLINE_DELIMITED_JSON`` and ``extract.py`` write: nested ``service``,
``sku``, ``usage``, ``credits[]``, ``labels[]``, ``project``, ``invoice``, ``location``), or CSV
with the nested fields flattened to dotted column names (``service.description``, ``usage.amount``,
``labels`` and ``credits`` as JSON text).

Every row is one line (other services are loaded too, with provider NULL). Vertex AI / Gemini
API rows get provider ``vertex_ai``; the model and token type come from the SKU description
("Gemini 2.5 Flash Input Text Tokens" -> ``gemini-2.5-flash``, ``input``). ``credits`` is the sum
of ``credits[].amount`` (negative) and ``effective_cost`` = cost + credits. ``invoice.month``
(YYYYMM) is the billing period.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.billing.common import (
    create_parsed,
    parsed_select,
    q,
    read_json_rows,
    read_table,
    require_columns,
    token_type_case,
)
from ingestion.billing.errors import BillingFileError

REQUIRED = ("service.description", "sku.description", "usage_start_time", "cost", "currency")
GOOGLE_AI_SERVICES = r"(?i)vertex ai|gemini|generative language"
MODEL_RX = r"(?i)(gemini)[ -]?(\d+(?:\.\d+)?)[ -]+(flash[ -]lite|flash|pro|ultra|nano)"
TOKEN_RULES = (
    (r"(?i)cach.*storage|storage.*cach", "other"),
    (r"(?i)cached|cache[ -]?read|context cache", "cache_read"),
    (r"(?i)\binput\b", "input"),
    (r"(?i)\boutput\b", "output"),
)


class _Json:
    """Fields of a row read as a JSON object."""

    def __init__(self, columns: set[str]):
        self.columns = columns

    def get(self, dotted: str) -> str:
        return f"json_extract_string(rec, {q('$.' + dotted)})"

    def array(self, name: str) -> str:
        return f"json_extract(rec, {q('$.' + name + '[*]')})"

    def has(self, dotted: str) -> bool:
        return dotted.split(".")[0] in self.columns


class _Csv:
    """Fields of a CSV row with dotted column names."""

    def __init__(self, columns: list[str]):
        self.columns = {c.lower(): c for c in columns}

    def get(self, dotted: str) -> str:
        col = self.columns.get(dotted.lower())
        return f'"{col}"' if col else "NULL"

    def array(self, name: str) -> str:
        col = self.columns.get(name.lower())
        if not col:
            return "cast([] as JSON[])"
        return f"""json_extract(try_cast("{col}" as JSON), '$[*]')"""

    def has(self, dotted: str) -> bool:
        return dotted.lower() in self.columns


def _selects(src, view: str) -> list[str]:
    service = src.get("service.description")
    sku_desc = src.get("sku.description")
    unit = src.get("usage.unit")
    is_ai = f"coalesce(regexp_matches({service}, {q(GOOGLE_AI_SERVICES)}), false)"
    credits = src.array("credits")
    credit_amounts = f"list_transform({credits}, lambda c: c->>'amount')"
    credits_text = (
        f"case when list_bool_or(list_transform({credit_amounts}, lambda a: a is not null and "
        f"try_cast(a as DECIMAL(38,12)) is null)) then 'not a number' else "
        f"cast(list_sum(list_transform({credit_amounts}, "
        f"lambda a: try_cast(a as DECIMAL(38,12)))) as VARCHAR) end"
    )
    labels = src.array("labels")
    tags = (
        f"case when len({labels}) > 0 then cast(to_json(map_from_entries(list_transform({labels}, "
        f"lambda l: {{'k': l->>'key', 'v': l->>'value'}}))) as VARCHAR) end"
    )
    cost_num = f"try_cast({src.get('cost')} as DECIMAL(38,12))"
    effective = (
        f"case when {cost_num} is null then {src.get('cost')} "
        f"else cast({cost_num} + coalesce(try_cast(({credits_text}) as DECIMAL(38,12)), 0) "
        f"as VARCHAR) end"
    )
    model = (
        f"case when regexp_matches({sku_desc}, {q(MODEL_RX)}) then lower("
        f"'gemini-' || regexp_extract({sku_desc}, {q(MODEL_RX)}, 2) || '-' || "
        f"replace(regexp_extract({sku_desc}, {q(MODEL_RX)}, 3), ' ', '-')) end"
    )
    token = (
        f"case when not {is_ai} or coalesce(regexp_matches({unit}, '(?i)char|second|hour|byte'),"
        f" false) then 'other' else {token_type_case(sku_desc, TOKEN_RULES)} end"
    )
    month = src.get("invoice.month")
    exprs = {
        "source_line": "source_line",
        "record_type": "'usage_cost'",
        # hashed: labels may hold free text
        "line_id": "md5(concat_ws('|', "
        + ", ".join(
            f"coalesce({e}, '')"
            for e in (
                src.get("billing_account_id"),
                src.get("project.id"),
                src.get("sku.id"),
                sku_desc,
                src.get("usage_start_time"),
                src.get("usage_end_time"),
                src.get("cost"),
                src.get("usage.amount"),
                src.get("cost_type"),
                month,
                "cast(" + labels + " as VARCHAR)",
                "cast(" + credits + " as VARCHAR)",
                src.get("location.region"),
                src.get("resource.global_name"),
            )
        )
        + "))",
        "charge_period_start": src.get("usage_start_time"),
        "charge_period_end": src.get("usage_end_time"),
        "billing_period": f"case when regexp_matches({month}, '^\\d{{6}}$') then "
        f"substr({month}, 1, 4) || '-' || substr({month}, 5, 2) || '-01' else {month} end",
        "account_id": src.get("billing_account_id"),
        "project_id": src.get("project.id"),
        "provider": f"case when {is_ai} then 'vertex_ai' end",
        "model": f"case when {is_ai} then {model} end",
        "sku": f"coalesce({src.get('sku.id')}, {sku_desc})",
        "description": f"concat_ws(' / ', {service}, {sku_desc})",
        "token_type": token,
        "is_batch": f"case when regexp_matches({sku_desc}, '(?i)batch') then 'true' end",
        "region": src.get("location.region"),
        "quantity": src.get("usage.amount"),
        "unit": unit,
        "billed_cost": src.get("cost"),
        "effective_cost": effective,
        "credits": credits_text,
        "unit_price": src.get("price.effective_price"),
        "currency": src.get("currency"),
        "tags": tags,
    }
    if isinstance(src, _Json):
        exprs["raw_line"] = "cast(rec as VARCHAR)"
    return [parsed_select(exprs, view)]


def read(con, path: Path, into: str) -> None:
    path = Path(path)
    name = path.name.lower()
    view = "_gcp_rows"
    if name.endswith((".csv", ".csv.gz")):
        cols = read_table(con, path, view)
        require_columns(path, cols, REQUIRED, "GCP billing export (CSV)")
        src = _Csv(cols)
    else:
        read_json_rows(con, path, view, "GCP billing export JSON")
        keys = con.execute(
            f"select distinct unnest(json_keys(rec)) from (select rec from {view} limit 1000)"
        ).fetchall()
        top = {k[0] for k in keys}
        if top:
            for col in REQUIRED:
                if col.split(".")[0] not in top:
                    raise BillingFileError(
                        f"{path}: missing required column {col!r} for a GCP billing export"
                    )
        src = _Json(top)
    create_parsed(con, into, _selects(src, view))
    con.execute(f"drop table if exists {view}")
