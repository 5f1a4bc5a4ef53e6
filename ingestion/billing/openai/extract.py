"""Pull one day of OpenAI usage (completions) and costs from the Admin API into files.

The key comes from ``OPENAI_ADMIN_KEY`` or the Airflow connection ``openai_admin`` (password).
Files: ``<out_dir>/openai/usage-completions-YYYY-MM-DD.jsonl`` and ``costs-YYYY-MM-DD.jsonl``,
one API page per line, read back by ``parse.py``.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from pathlib import Path

from ingestion.billing.http import AdminApiClient, resolve_key, write_pages

BASE_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_ADMIN_KEY"
CONN_ID = "openai_admin"
USAGE_GROUP_BY = ["model", "project_id", "api_key_id", "batch", "service_tier"]
COST_GROUP_BY = ["line_item", "project_id"]


def _epoch(d: date) -> int:
    return calendar.timegm(datetime(d.year, d.month, d.day).timetuple())


def client(base_url: str = BASE_URL, **kwargs) -> AdminApiClient:
    key = resolve_key(KEY_ENV, CONN_ID)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return AdminApiClient(base_url=base_url, headers=headers, **kwargs)


def extract_day(day: date, out_dir: Path, api: AdminApiClient | None = None) -> list[Path]:
    """Write the day's usage and cost pages (UTC day buckets); returns the files written."""
    api = api or client()
    window = {"start_time": _epoch(day), "end_time": _epoch(day + timedelta(days=1))}
    out = Path(out_dir) / "openai"
    usage = out / f"usage-completions-{day}.jsonl"
    costs = out / f"costs-{day}.jsonl"
    write_pages(
        api.pages(
            "organization/usage/completions",
            {**window, "bucket_width": "1d", "group_by": USAGE_GROUP_BY, "limit": 31},
        ),
        usage,
    )
    write_pages(
        api.pages(
            "organization/costs",
            {**window, "bucket_width": "1d", "group_by": COST_GROUP_BY, "limit": 31},
        ),
        costs,
    )
    return [usage, costs]
