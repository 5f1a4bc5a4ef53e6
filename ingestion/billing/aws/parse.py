"""AWS Cost and Usage Report -> billing lines: legacy CUR (``lineItem/UsageType`` style headers)
and CUR 2.0 / Data Exports (``line_item_usage_type`` style), CSV (optionally .gz) or Parquet.

Every CUR row is one line (S3, EC2, tax ... too, with provider NULL, so nothing is dropped).
Amazon Bedrock rows (product code ``AmazonBedrock``, a Bedrock product name, or a usage type
counting tokens) get provider ``bedrock``; the usage type carries region, model and token type,
e.g. ``USE1-Claude3.5Sonnet-input-tokens``, ``USE1-Claude3.5Sonnet-cache-read-input-token-count``
-> model ``Claude3.5Sonnet``, token types ``input`` / ``cache_read`` / ``cache_write_5m`` (``1h``
when the usage type says so) / ``output``. ``billed_cost`` is the unblended cost,
``effective_cost`` the net unblended cost when the report has it, ``unit_price`` the unblended
rate, ``list_unit_price`` the public on-demand rate. Token counts: ``usage amount`` x the pricing
unit's block (``1K tokens`` -> 1000, ``1M tokens`` -> 1e6). Tags: legacy ``resourceTags/*``
columns or CUR 2.0 ``resource_tags``, as one JSON object.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.billing.common import (
    create_parsed,
    parsed_select,
    q,
    read_table,
    token_type_case,
)
from ingestion.billing.errors import BillingFileError

# logical field -> (legacy CUR header, CUR 2.0 header)
FIELDS: dict[str, tuple[str, str]] = {
    "line_item_id": ("identity/LineItemId", "identity_line_item_id"),
    "time_interval": ("identity/TimeInterval", "identity_time_interval"),
    "payer_account": ("bill/PayerAccountId", "bill_payer_account_id"),
    "billing_period_start": ("bill/BillingPeriodStartDate", "bill_billing_period_start_date"),
    "usage_account": ("lineItem/UsageAccountId", "line_item_usage_account_id"),
    "line_item_type": ("lineItem/LineItemType", "line_item_line_item_type"),
    "usage_start": ("lineItem/UsageStartDate", "line_item_usage_start_date"),
    "usage_end": ("lineItem/UsageEndDate", "line_item_usage_end_date"),
    "product_code": ("lineItem/ProductCode", "line_item_product_code"),
    "usage_type": ("lineItem/UsageType", "line_item_usage_type"),
    "operation": ("lineItem/Operation", "line_item_operation"),
    "resource_id": ("lineItem/ResourceId", "line_item_resource_id"),
    "usage_amount": ("lineItem/UsageAmount", "line_item_usage_amount"),
    "currency": ("lineItem/CurrencyCode", "line_item_currency_code"),
    "unblended_rate": ("lineItem/UnblendedRate", "line_item_unblended_rate"),
    "unblended_cost": ("lineItem/UnblendedCost", "line_item_unblended_cost"),
    "net_unblended_cost": ("lineItem/NetUnblendedCost", "line_item_net_unblended_cost"),
    "description": ("lineItem/LineItemDescription", "line_item_line_item_description"),
    "product_name": ("product/ProductName", "product_product_name"),
    "region": ("product/regionCode", "product_region_code"),
    "public_rate": ("pricing/publicOnDemandRate", "pricing_public_on_demand_rate"),
    "pricing_unit": ("pricing/unit", "pricing_unit"),
}
REQUIRED = ("usage_start", "usage_type", "usage_amount", "unblended_cost", "currency")
BEDROCK_TOKEN_RX = r"(?i)(input|output)-tokens?|token-?count|tokencount"
REGION_PREFIX_RX = r"^[A-Z]{2,4}[0-9]?-"
TOKEN_SUFFIX_RX = (
    r"(?i)-(cache-?read-?input|cache-?write(-?(1h|5m))?-?input|cache-?read|cache-?write(-?(1h|5m))?"
    r"|input|output)"
    r"[-_]?(tokens?|token-?count)([-_].*)?$"
)
TOKEN_RULES = (
    (r"(?i)cache-?read", "cache_read"),
    (r"(?i)cache-?write.*1h", "cache_write_1h"),
    (r"(?i)cache-?write", "cache_write_5m"),
    (r"(?i)input", "input"),
    (r"(?i)output", "output"),
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _resolve(columns: list[str]) -> tuple[str, dict[str, str]]:
    by_lower = {c.lower(): c for c in columns}
    legacy = "lineitem/usagetype" in by_lower
    flavour = "legacy CUR" if legacy else "CUR 2.0"
    exprs = {}
    for key, (old, new) in FIELDS.items():
        col = by_lower.get((old if legacy else new).lower())
        exprs[key] = f"cast({_ident(col)} as VARCHAR)" if col else "NULL"
    return flavour, exprs


def _tags(columns: list[str], types: dict[str, str]) -> str:
    # legacy CUR: one column per tag, `resourceTags/user:team` (CSV) or
    # `resource_tags_user_team` (Parquet)
    legacy = {
        c: c.split("/", 1)[1] if "/" in c else c[len("resource_tags_") :]
        for c in columns
        if c.lower().startswith(("resourcetags/", "resource_tags_"))
    }
    if legacy:
        entries = ", ".join(
            f"{{'k': {q(key)}, 'v': cast({_ident(c)} as VARCHAR)}}" for c, key in legacy.items()
        )
        kept = f"list_filter([{entries}], lambda e: e.v is not null and e.v <> '')"
        return (
            f"case when len({kept}) > 0 then cast(to_json(map_from_entries({kept})) as VARCHAR) end"
        )
    col = next((c for c in columns if c.lower() == "resource_tags"), None)
    if col is None:
        return "NULL"
    if types[col].upper().startswith(("MAP", "STRUCT")):
        return f"case when cardinality({_ident(col)}) > 0 then cast(to_json({_ident(col)}) as VARCHAR) end"
    return f"nullif(nullif(trim({_ident(col)}), ''), '{{}}')"


def read(con, path: Path, into: str) -> None:
    path = Path(path)
    view = "_aws_rows"
    columns = read_table(con, path, view)
    types = {r[0]: r[1] for r in con.execute(f"describe {view}").fetchall()}
    flavour, f = _resolve(columns)
    for key in REQUIRED:
        if f[key] == "NULL":
            col = FIELDS[key][0 if flavour == "legacy CUR" else 1]
            raise BillingFileError(f"{path}: missing required column {col!r} for a {flavour}")
    usage_type = f["usage_type"]
    is_bedrock = (
        f"(coalesce({f['product_code']} = 'AmazonBedrock', false) "
        f"or coalesce(regexp_matches({f['product_name']}, '(?i)bedrock'), false) "
        f"or coalesce(regexp_matches({usage_type}, {q(BEDROCK_TOKEN_RX)}), false))"
    )
    token = (
        f"case when {is_bedrock} then {token_type_case(usage_type, TOKEN_RULES)} else 'other' end"
    )
    model = (
        f"case when {is_bedrock} then nullif(regexp_replace(regexp_replace({usage_type}, "
        f"{q(REGION_PREFIX_RX)}, ''), {q(TOKEN_SUFFIX_RX)}, ''), '') end"
    )
    unit = f["pricing_unit"]
    token_scale = (
        f"case when regexp_matches({unit}, '(?i)^\\s*1\\s*k|thousand') then '1000' "
        f"when regexp_matches({unit}, '(?i)^\\s*1\\s*m|million') then '1000000' end"
    )
    exprs = {
        "source_line": "source_line",
        "record_type": "'usage_cost'",
        "line_id": f"coalesce({f['line_item_id']}, 'row' || source_line) || '|' || "
        f"coalesce({f['time_interval']}, {f['usage_start']}, '')",
        "charge_period_start": f["usage_start"],
        "charge_period_end": f["usage_end"],
        "billing_period": f"cast(try_cast({f['billing_period_start']} as TIMESTAMPTZ) "
        "at time zone 'UTC' as DATE)",
        "account_id": f"coalesce({f['usage_account']}, {f['payer_account']})",
        "provider": f"case when {is_bedrock} then 'bedrock' end",
        "model": model,
        "sku": usage_type,
        "description": f"concat_ws(' / ', {f['product_name']}, {f['description']})",
        "token_type": token,
        "is_batch": f"case when {is_bedrock} then cast(coalesce(regexp_matches("
        f"concat_ws(' ', {usage_type}, {f['operation']}), '(?i)batch'), false) as VARCHAR) end",
        "region": f["region"],
        "quantity": f["usage_amount"],
        "unit": unit,
        "token_scale": token_scale,
        "billed_cost": f["unblended_cost"],
        "effective_cost": f["net_unblended_cost"],
        "list_unit_price": f["public_rate"],
        "unit_price": f["unblended_rate"],
        "currency": f["currency"],
        "tags": _tags(columns, types),
    }
    create_parsed(con, into, [parsed_select(exprs, view)])
    con.execute(f"drop table if exists {view}")
