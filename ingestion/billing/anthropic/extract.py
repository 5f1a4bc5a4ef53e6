"""Pull one day of Anthropic messages usage and costs from the Admin API into files.

The key comes from ``ANTHROPIC_ADMIN_KEY`` or the Airflow connection ``anthropic_admin``
(password). Files: ``<out_dir>/anthropic/usage-messages-YYYY-MM-DD.jsonl`` and
``cost-report-YYYY-MM-DD.jsonl``, one API page per line, read back by ``parse.py``.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from ingestion.billing.http import AdminApiClient, resolve_key, write_pages

BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
KEY_ENV = "ANTHROPIC_ADMIN_KEY"
CONN_ID = "anthropic_admin"
USAGE_GROUP_BY = ["model", "workspace_id", "api_key_id", "service_tier", "context_window"]
COST_GROUP_BY = ["workspace_id", "description"]


def client(base_url: str = BASE_URL, **kwargs) -> AdminApiClient:
    key = resolve_key(KEY_ENV, CONN_ID)
    headers = {"x-api-key": key, "anthropic-version": API_VERSION}
    return AdminApiClient(base_url=base_url, headers=headers, **kwargs)


def extract_day(day: date, out_dir: Path, api: AdminApiClient | None = None) -> list[Path]:
    """Write the day's usage and cost-report pages (UTC day buckets); returns the files."""
    api = api or client()
    window = {
        "starting_at": f"{day}T00:00:00Z",
        "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
        "bucket_width": "1d",
    }
    out = Path(out_dir) / "anthropic"
    usage = out / f"usage-messages-{day}.jsonl"
    costs = out / f"cost-report-{day}.jsonl"
    write_pages(
        api.pages(
            "organizations/usage_report/messages",
            {**window, "group_by[]": USAGE_GROUP_BY, "limit": 31},
        ),
        usage,
    )
    write_pages(
        api.pages("organizations/cost_report", {**window, "group_by[]": COST_GROUP_BY}),
        costs,
    )
    return [usage, costs]
