"""Pull one invoice month of AI rows from the GCP billing export table on BigQuery into a
newline-delimited JSON file that ``parse.py`` reads (same nested shape as the table).

The export table is partitioned by usage day; the query prunes to the month (with a few days of
margin either side, since invoice months and usage days do not align at the edges) and filters
on ``invoice.month``. Credentials: google-cloud-bigquery's usual discovery (ADC, or a
service-account key file), never code.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from ingestion.billing.errors import BillingError

# Services whose rows carry LLM usage (matched against service.description).
AI_SERVICES_REGEX = r"(?i)vertex ai|gemini|generative language"
_TABLE_RX = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


def export_query(table: str) -> str:
    """The SQL reading one invoice month (parameters @invoice_month STRING 'YYYYMM',
    @partition_start DATE, @partition_end DATE, @services_regex STRING)."""
    if not _TABLE_RX.match(table):
        raise BillingError(
            f"bad billing export table {table!r}: write project.dataset.table, e.g. "
            "my-gcp-project.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
        )
    return f"""
SELECT TO_JSON_STRING(t) AS row_json
FROM `{table}` AS t
WHERE DATE(t._PARTITIONTIME) BETWEEN @partition_start AND @partition_end
  AND t.invoice.month = @invoice_month
  AND REGEXP_CONTAINS(t.service.description, @services_regex)
ORDER BY t.usage_start_time, t.sku.id
""".strip()


def query_parameters(month: date) -> dict[str, tuple[str, object]]:
    month = month.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return {
        "invoice_month": ("STRING", f"{month:%Y%m}"),
        "partition_start": ("DATE", month - timedelta(days=3)),
        "partition_end": ("DATE", next_month + timedelta(days=3)),
        "services_regex": ("STRING", AI_SERVICES_REGEX),
    }


def extract_month(client, table: str, month: date, out_dir: Path) -> Path:
    """Run the query with ``client`` (a google.cloud.bigquery.Client) and write
    ``<out_dir>/gcp/billing-export-YYYY-MM.jsonl``; returns the file."""
    from google.cloud import bigquery

    params = [
        bigquery.ScalarQueryParameter(name, kind, value)
        for name, (kind, value) in query_parameters(month).items()
    ]
    job = client.query(
        export_query(table), job_config=bigquery.QueryJobConfig(query_parameters=params)
    )
    out = Path(out_dir) / "gcp" / f"billing-export-{month:%Y-%m}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in job.result():
            fh.write(row["row_json"] + "\n")
    tmp.replace(out)
    return out
