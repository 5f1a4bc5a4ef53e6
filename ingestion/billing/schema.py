"""The raw table every vendor billing export lands in: ``raw.billing_lines``.

One row per billed line as the vendor reports it (a usage-report bucket result split per token
type, a cost-report result, a CUR / billing-export / cost-export row). Parsers in
``ingestion/billing/<vendor>/parse.py`` map their source onto these columns; the shared loader
(``ingestion/billing/loader.py``) types, validates, redacts and publishes them. Change a column
here and in the dbt source for billing together.

Conventions
-----------
- ``token_type`` names the billed component; components are disjoint, so the cost of a
  vendor-day is the sum of its lines. ``input`` is the input billed at the base input rate
  (uncached input). The project's ``input_tokens`` (ALL input, as in raw.gateway_calls) is the sum
  of ``tokens`` over ``INPUT_TOKEN_TYPES``. Sources that report all input (OpenAI's
  ``input_tokens``) are split by the parser; Anthropic's ``uncached_input_tokens`` is ``input``.
- ``tokens`` is the quantity converted to a token count (Azure meters bill per 1K tokens, GCP per
  the SKU's unit); NULL for lines that are not tokens.
- Money: ``billed_cost`` (what the invoice line charges, in ``currency``; Anthropic's cents are
  already converted to USD here), ``effective_cost`` (after credits and discounts when the source
  says so: AWS net unblended cost, GCP cost + credits; else the billed cost), ``credits`` (sum,
  negative). Unit prices as the source gives them: ``list_unit_price`` (public price per unit) and
  ``unit_price`` (billed price per unit).
- ``record_type``: ``usage`` (quantities, no cost: usage reports), ``cost`` (cost, maybe no
  quantity: cost reports), ``usage_cost`` (both: CUR, GCP and Azure exports).
- ``provider`` is canonical (``PROVIDERS``) for LLM lines, NULL for other services a cloud bill
  carries (S3, VMs): those are loaded too (nothing is dropped) and filtered downstream.
"""

from __future__ import annotations

VENDORS: tuple[str, ...] = ("openai", "anthropic", "gcp", "aws", "azure")
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "vertex_ai", "bedrock", "azure_openai")
TOKEN_TYPES: tuple[str, ...] = (
    "input",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "output",
    "request",
    "other",
)
INPUT_TOKEN_TYPES: tuple[str, ...] = ("input", "cache_read", "cache_write_5m", "cache_write_1h")
RECORD_TYPES: tuple[str, ...] = ("usage", "cost", "usage_cost")

# raw.billing_lines, partitioned by load_date (one partition per vendor and load).
# (column, DuckDB type, BigQuery type)
BILLING_LINES_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("load_date", "DATE", "DATE"),
    ("vendor", "VARCHAR", "STRING"),  # openai | anthropic | gcp | aws | azure
    ("record_type", "VARCHAR", "STRING"),  # usage | cost | usage_cost
    ("line_id", "VARCHAR", "STRING"),  # natural key of the line within the vendor's export
    ("usage_date", "DATE", "DATE"),  # UTC date of charge_period_start
    ("charge_period_start", "TIMESTAMP", "TIMESTAMP"),  # UTC
    ("charge_period_end", "TIMESTAMP", "TIMESTAMP"),  # UTC, exclusive
    ("billing_period", "DATE", "DATE"),  # first day of the invoice month
    ("account_id", "VARCHAR", "STRING"),  # org / billing account / AWS account / subscription
    ("project_id", "VARCHAR", "STRING"),  # OpenAI project, GCP project, Azure resource group
    ("workspace_id", "VARCHAR", "STRING"),  # Anthropic workspace
    ("api_key_id", "VARCHAR", "STRING"),
    ("provider", "VARCHAR", "STRING"),  # canonical; NULL for non-LLM services
    ("model", "VARCHAR", "STRING"),  # as billed
    ("sku", "VARCHAR", "STRING"),  # line item / SKU / usage type / meter
    ("description", "VARCHAR", "STRING"),  # free text, redacted
    ("token_type", "VARCHAR", "STRING"),  # TOKEN_TYPES
    ("service_tier", "VARCHAR", "STRING"),
    ("is_batch", "BOOLEAN", "BOOL"),
    ("region", "VARCHAR", "STRING"),
    ("quantity", "DECIMAL(38,9)", "NUMERIC"),  # as billed, in `unit`
    ("unit", "VARCHAR", "STRING"),  # as billed (tokens, 1K, count, requests, ...)
    ("tokens", "BIGINT", "INT64"),  # quantity in tokens for token lines
    ("billed_cost", "DECIMAL(38,9)", "NUMERIC"),
    ("effective_cost", "DECIMAL(38,9)", "NUMERIC"),
    ("credits", "DECIMAL(38,9)", "NUMERIC"),
    ("list_unit_price", "DECIMAL(38,9)", "NUMERIC"),
    ("unit_price", "DECIMAL(38,9)", "NUMERIC"),
    ("currency", "VARCHAR", "STRING"),  # ISO 4217, upper case
    ("tags", "JSON", "JSON"),  # labels / resource tags, redacted
    ("source_file", "VARCHAR", "STRING"),
    ("source_line", "BIGINT", "INT64"),
)

# The columns a parser's TEMP table holds (see loader.py), all VARCHAR except source_line.
# They are the raw table's columns less load_date/vendor/source_file (added by the loader), with
# the money and quantity columns as source text, plus:
#   raw_line      the record as text (quarantine only; redacted before it lands)
#   parse_error   NULL, or the quarantine reason for a record the parser could not map
#   cost_scale    multiplier applied to every money column (Anthropic cents: '0.01'); NULL = 1
#   token_scale   tokens per unit of `quantity` for token lines (Azure '1K': '1000'); NULL = 1
PARSED_COLUMNS: tuple[str, ...] = (
    "source_line",
    "raw_line",
    "parse_error",
    "record_type",
    "line_id",
    "charge_period_start",
    "charge_period_end",
    "billing_period",
    "account_id",
    "project_id",
    "workspace_id",
    "api_key_id",
    "provider",
    "model",
    "sku",
    "description",
    "token_type",
    "service_tier",
    "is_batch",
    "region",
    "quantity",
    "unit",
    "token_scale",
    "billed_cost",
    "effective_cost",
    "credits",
    "list_unit_price",
    "unit_price",
    "cost_scale",
    "currency",
    "tags",
)

# ISO 4217 codes accepted in `currency`; anything else is quarantined as an unknown currency.
CURRENCIES: tuple[str, ...] = (
    "USD", "EUR", "GBP", "CAD", "AUD", "NZD", "JPY", "CNY", "INR", "CHF", "SEK", "NOK", "DKK",
    "PLN", "CZK", "HUF", "BRL", "MXN", "ARS", "CLP", "COP", "ZAR", "SGD", "HKD", "KRW", "TWD",
    "IDR", "MYR", "THB", "PHP", "ILS", "AED", "SAR", "TRY", "RUB",
)  # fmt: skip
