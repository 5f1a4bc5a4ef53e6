"""FOCUS 1.2 export: one billing month of ``marts.fct_focus_cost`` as a Parquet or CSV file
with the FOCUS column names (``BilledCost``, ``ChargePeriodStart``, ``Tags``, ``x_*``
extensions ...), the shape finance tools and the FinOps Foundation's ``focus-validator`` read.

The mart keeps snake_case names (dbt contract, both warehouses); this module renames them in
the warehouse query. Money stays decimal (Parquet ``decimal128(38, 9)``; exact decimal text in
CSV); date-times are UTC (Parquet timestamps with time zone UTC; ISO 8601 ``...Z`` text in CSV).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from core.settings import Settings
from core.warehouse import Warehouse
from tokenbook.exports import (
    ExportError,
    _decimal_sum,
    parse_month,
    query_mart,
    write_export,
    write_table,
)

FORMATS = ("parquet", "csv")
FOCUS_TABLE = "fct_focus_cost"

# (FOCUS column, fct_focus_cost column). Order is the file's column order.
FOCUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("BilledCost", "billed_cost"),
    ("EffectiveCost", "effective_cost"),
    ("ListCost", "list_cost"),
    ("ContractedCost", "contracted_cost"),
    ("BillingCurrency", "billing_currency"),
    ("BillingAccountId", "billing_account_id"),
    ("BillingAccountName", "billing_account_name"),
    ("InvoiceId", "invoice_id"),
    ("BillingPeriodStart", "billing_period_start"),
    ("BillingPeriodEnd", "billing_period_end"),
    ("ChargePeriodStart", "charge_period_start"),
    ("ChargePeriodEnd", "charge_period_end"),
    ("ChargeCategory", "charge_category"),
    ("ChargeClass", "charge_class"),
    ("ChargeDescription", "charge_description"),
    ("ChargeFrequency", "charge_frequency"),
    ("PricingCategory", "pricing_category"),
    ("PricingQuantity", "pricing_quantity"),
    ("PricingUnit", "pricing_unit"),
    ("ListUnitPrice", "list_unit_price"),
    ("ConsumedQuantity", "consumed_quantity"),
    ("ConsumedUnit", "consumed_unit"),
    ("ServiceCategory", "service_category"),
    ("ServiceSubcategory", "service_subcategory"),
    ("ServiceName", "service_name"),
    ("ProviderName", "provider_name"),
    ("PublisherName", "publisher_name"),
    ("InvoiceIssuerName", "invoice_issuer_name"),
    ("SkuId", "sku_id"),
    ("SkuPriceId", "sku_price_id"),
    ("SkuMeter", "sku_meter"),
    ("RegionId", "region_id"),
    ("RegionName", "region_name"),
    ("ResourceId", "resource_id"),
    ("SubAccountId", "sub_account_id"),
    ("SubAccountName", "sub_account_name"),
    ("Tags", "tags"),
    ("x_Vendor", "x_vendor"),
    ("x_VendorLineId", "x_vendor_line_id"),
    ("x_UsageDate", "x_usage_date"),
    ("x_Provider", "x_provider"),
    ("x_Model", "x_model"),
    ("x_BilledModel", "x_billed_model"),
    ("x_CatalogModel", "x_catalog_model"),
    ("x_TokenType", "x_token_type"),
    ("x_IsBatch", "x_is_batch"),
    ("x_ApiKeyId", "x_api_key_id"),
    ("x_Feature", "x_feature"),
    ("x_CustomerSegment", "x_customer_segment"),
    ("x_Team", "x_team"),
    ("x_CostCentre", "x_cost_centre"),
    ("x_AllocationBasis", "x_allocation_basis"),
    ("x_AllocationShare", "x_allocation_share"),
    # BilledCost / EffectiveCost / ListCost stay in BillingCurrency as billed; converted to
    # USD with the day's rate (`tokenbook fx load`), null when no rate was loaded
    ("x_FxRateToUsd", "x_fx_rate_to_usd"),
    ("x_BilledCostUsd", "x_billed_cost_usd"),
    ("x_EffectiveCostUsd", "x_effective_cost_usd"),
    ("x_ListCostUsd", "x_list_cost_usd"),
)
_DATETIME_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart",
                     "ChargePeriodEnd")  # fmt: skip


@dataclass(frozen=True)
class FocusExportResult:
    path: Path
    month: date
    rows: int
    billed_cost_usd: Decimal
    effective_cost_usd: Decimal
    list_cost_usd: Decimal


def export_focus(settings: Settings, month: str, out: str | Path, fmt: str = "parquet"
                 ) -> FocusExportResult:  # fmt: skip
    """Write the FOCUS rows of billing month ``month`` (YYYY-MM) to ``out`` as ``fmt``.

    ``out`` is a file, or a folder (existing, or ending with ``/``; the file is then named
    ``focus-YYYY-MM.<fmt>``). Raises ExportError when the month has no rows, naming the months
    that do.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    month_start = parse_month(month)
    table = read_focus(settings, month_start)
    if table.num_rows == 0:
        months = ", ".join(m.strftime("%Y-%m") for m in focus_months(settings))
        raise ExportError(
            f"no FOCUS rows for billing month {month_start:%Y-%m}; months available: "
            f"{months or 'none (ingest billing exports, then run `tokenbook transform`)'}"
        )
    path = write_export(table, fmt, out, f"focus-{month_start:%Y-%m}.{fmt}", write_focus)
    return FocusExportResult(
        path=path,
        month=month_start,
        rows=table.num_rows,
        billed_cost_usd=_decimal_sum(table, "x_BilledCostUsd"),
        effective_cost_usd=_decimal_sum(table, "x_EffectiveCostUsd"),
        list_cost_usd=_decimal_sum(table, "x_ListCostUsd"),
    )


def focus_select(relation: str, where: str) -> str:
    """The warehouse query renaming the mart's columns to FOCUS names."""
    cols = ", ".join(f"{src} as {name}" for name, src in FOCUS_COLUMNS)
    return (
        f"select {cols} from {relation} where {where} "
        "order by charge_period_start, sku_id, x_vendor_line_id, tags"
    )


def read_focus(settings: Settings, month_start: date) -> pa.Table:
    """One billing month of fct_focus_cost with FOCUS column names, as Arrow."""
    wh = Warehouse.from_settings(settings)
    relation = wh.table("marts", FOCUS_TABLE)
    return _query(wh, focus_select(relation, "cast(billing_period_start as date) = @month_start"),
                  month_start)


def focus_months(settings: Settings) -> list[date]:
    wh = Warehouse.from_settings(settings)
    sql = (
        f"select distinct cast(billing_period_start as date) as m "
        f"from {wh.table('marts', FOCUS_TABLE)} order by 1"
    )
    table = _query(wh, sql)
    return list(table.column(0).to_pylist())


def write_focus(table: pa.Table, fmt: str, path: Path) -> None:
    """Date-times as UTC timestamps (Parquet) or ISO 8601 text with Z (CSV)."""
    for name in _DATETIME_COLUMNS:
        i = table.schema.get_field_index(name)
        col = table.column(i)
        if pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        if fmt == "csv":
            col = pc.strftime(col.cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        else:
            col = col.cast(pa.timestamp("us", tz="UTC"))
        table = table.set_column(i, name, col)
    write_table(table, fmt, path)


def _query(wh: Warehouse, sql: str, month_start: date | None = None) -> pa.Table:
    return query_mart(wh, sql, month_start, table=FOCUS_TABLE,
                      todo="ingest billing exports and run `tokenbook transform` first")
