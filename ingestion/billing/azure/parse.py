"""Azure Cost Management exports (actual or amortized cost CSV; EA ``PascalCase`` or MCA
``camelCase`` headers, matched case-insensitively) -> billing lines.

Every row is one line (other services are loaded too, provider NULL). Azure OpenAI rows
(meter subcategory "Azure OpenAI" or a Cognitive Services / Foundry meter counting tokens) get
provider ``azure_openai``; the meter name carries model and token type, e.g.
"gpt-4o-0806 Inp regnl Tokens" -> model ``gpt-4o-0806``, ``input``; "cchd Inp" -> ``cache_read``;
"Outp" -> ``output``. Quantities are in the unit of measure ("1K" = thousands of tokens):
``tokens`` = quantity x the unit's block. ``billed_cost`` is the cost in billing currency (the
amortized cost in an amortized export), ``unit_price`` the effective price, ``list_unit_price``
the pay-as-you-go price. EA tags come as ``"k": "v", ...`` without braces: they are wrapped into
a JSON object (text that is still not JSON is kept as ``{"_unparsed": ...}``).
"""

from __future__ import annotations

from pathlib import Path

from ingestion.billing.common import create_parsed, parsed_select, q, read_table, token_type_case
from ingestion.billing.errors import BillingFileError

# logical field -> header names accepted (EA first), compared case-insensitively
FIELDS: dict[str, tuple[str, ...]] = {
    "date": ("Date", "UsageDate"),
    "billing_period_start": ("BillingPeriodStartDate",),
    "subscription": ("SubscriptionId", "SubscriptionGuid"),
    "resource_group": ("ResourceGroup", "ResourceGroupName"),
    "resource_id": ("ResourceId", "InstanceId"),
    "location": ("ResourceLocation", "MeterRegion"),
    "product": ("ProductName", "Product"),
    "meter_category": ("MeterCategory",),
    "meter_subcategory": ("MeterSubCategory",),
    "meter_id": ("MeterId",),
    "meter_name": ("MeterName",),
    "unit": ("UnitOfMeasure",),
    "quantity": ("Quantity",),
    "effective_price": ("EffectivePrice",),
    "payg_price": ("PayGPrice",),
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "currency": ("BillingCurrencyCode", "BillingCurrency", "Currency"),
    "charge_type": ("ChargeType",),
    "pricing_model": ("PricingModel",),
    "tags": ("Tags",),
}
REQUIRED = ("date", "meter_name", "quantity", "cost", "currency")
DATE_FORMATS = "['%m/%d/%Y', '%Y-%m-%d', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%dT%H:%M:%SZ']"
TOKEN_RULES = (
    (r"(?i)\b(cchd|cached|cache)\b", "cache_read"),
    (r"(?i)\b(inp|input)\b", "input"),
    (r"(?i)\b(outp|output)\b", "output"),
)
MODEL_STRIP_RX = r"(?i)\s+((batch|cchd|cached|cache)\s+)*(inp|input|outp|output)\b.*$"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _date_iso(expr: str) -> str:
    return f"coalesce(strftime(try_strptime({expr}, {DATE_FORMATS}), '%Y-%m-%dT%H:%M:%SZ'), {expr})"


def read(con, path: Path, into: str) -> None:
    path = Path(path)
    view = "_azure_rows"
    columns = read_table(con, path, view)
    by_lower = {c.lower(): c for c in columns}
    f: dict[str, str] = {}
    for key, names in FIELDS.items():
        col = next((by_lower[n.lower()] for n in names if n.lower() in by_lower), None)
        f[key] = f"cast({_ident(col)} as VARCHAR)" if col else "NULL"
    for key in REQUIRED:
        if f[key] == "NULL":
            raise BillingFileError(
                f"{path}: missing required column {FIELDS[key][0]!r} for an Azure cost export"
            )
    meter = f["meter_name"]
    is_aoai = (
        f"(coalesce(regexp_matches({f['meter_subcategory']}, '(?i)openai'), false) "
        f"or (coalesce(regexp_matches({f['meter_category']}, "
        f"'(?i)cognitive services|foundry|openai'), false) "
        f"and coalesce(regexp_matches({meter}, '(?i)tokens?\\b'), false)))"
    )
    unit = f["unit"]
    block = f"try_cast(regexp_extract({unit}, '^\\s*([0-9.]+)', 1) as DECIMAL(38,6))"
    mult = (
        f"(case when regexp_matches({unit}, '(?i)^\\s*[0-9.]+\\s*k') then 1000 "
        f"when regexp_matches({unit}, '(?i)^\\s*[0-9.]+\\s*m') then 1000000 else 1 end)"
    )
    tags_raw = f"nullif(trim({f['tags']}), '')"
    tags_obj = f"case when starts_with({tags_raw}, '{{') then {tags_raw} else '{{' || {tags_raw} || '}}' end"
    tags = (
        f"case when {tags_raw} is null then NULL when json_valid({tags_obj}) then {tags_obj} "
        f"else cast(json_object('_unparsed', {tags_raw}) as VARCHAR) end"
    )
    start = _date_iso(f["date"])
    key_parts = ", ".join(
        f"coalesce({f[k]}, '')"
        for k in ("date", "subscription", "resource_id", "meter_id", "meter_name", "charge_type",
                  "pricing_model", "quantity", "cost", "tags")
    )  # fmt: skip
    exprs = {
        "source_line": "source_line",
        "record_type": "'usage_cost'",
        "line_id": f"md5(concat_ws('|', {key_parts}))",
        "charge_period_start": start,
        "charge_period_end": f"coalesce(strftime(try_strptime({f['date']}, {DATE_FORMATS}) "
        f"+ interval 1 day, '%Y-%m-%dT%H:%M:%SZ'), {f['date']})",
        "billing_period": f"strftime(try_strptime({f['billing_period_start']}, {DATE_FORMATS}),"
        " '%Y-%m-01')",
        "account_id": f["subscription"],
        "project_id": f["resource_group"],
        "provider": f"case when {is_aoai} then 'azure_openai' end",
        "model": f"case when {is_aoai} then nullif(trim(regexp_replace({meter}, "
        f"{q(MODEL_STRIP_RX)}, '')), '') end",
        "sku": meter,
        "description": f"concat_ws(' / ', {f['product']}, {f['meter_category']}, "
        f"{f['meter_subcategory']})",
        "token_type": f"case when {is_aoai} then {token_type_case(meter, TOKEN_RULES)} "
        "else 'other' end",
        "is_batch": f"case when {is_aoai} then "
        f"cast(coalesce(regexp_matches({meter}, '(?i)batch'), false) as VARCHAR) end",
        "region": f["location"],
        "quantity": f["quantity"],
        "unit": unit,
        "token_scale": f"cast(coalesce({block}, 1) * {mult} as VARCHAR)",
        "billed_cost": f["cost"],
        "list_unit_price": f["payg_price"],
        "unit_price": f["effective_price"],
        "currency": f["currency"],
        "tags": tags,
    }
    create_parsed(con, into, [parsed_select(exprs, view)])
    con.execute(f"drop table if exists {view}")
