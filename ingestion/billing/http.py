"""A small HTTP client for the vendors' admin APIs: JSON GETs, cursor paging
(``has_more``/``next_page``), retries with exponential backoff on 429 and 5xx honouring
``Retry-After``, and API keys from the environment or an Airflow connection (never code).

Standard library only (urllib), so extraction runs in a bare Airflow worker.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from ingestion.billing.errors import BillingError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(BillingError):
    """An admin-API request that failed for good (after retries, or a 4xx)."""


def resolve_key(env_var: str, conn_id: str | None = None) -> str:
    """The API key from ``env_var``, else from the Airflow connection ``conn_id`` (its password).
    Raises BillingError saying where to put it."""
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    if conn_id:
        try:
            from airflow.sdk import BaseHook  # Airflow 3
        except ImportError:  # pragma: no cover - older Airflow
            try:
                from airflow.hooks.base import BaseHook
            except ImportError:
                BaseHook = None  # noqa: N806
        if BaseHook is not None:
            try:
                conn = BaseHook.get_connection(conn_id)
            except Exception:  # connection missing: fall through to the error below
                conn = None
            if conn is not None and conn.password:
                return conn.password
    where = f" or the Airflow connection {conn_id!r} (password field)" if conn_id else ""
    raise BillingError(f"no API key: set the environment variable {env_var}{where}")


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class AdminApiClient:
    base_url: str
    headers: Mapping[str, str]
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    requests_made: int = field(default=0, init=False)

    def get(self, path: str, params: Mapping[str, object]) -> dict:
        query = urllib.parse.urlencode(
            [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])
             if v is not None]
        )  # fmt: skip
        url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}" + (f"?{query}" if query else "")
        attempt = 0
        while True:
            attempt += 1
            req = urllib.request.Request(url, headers=dict(self.headers), method="GET")
            self.requests_made += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code in RETRY_STATUSES and attempt <= self.max_retries:
                    wait = _retry_after_seconds(exc.headers.get("Retry-After"))
                    if wait is None:
                        wait = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                    self.sleep(wait)
                    continue
                raise ApiError(f"GET {path} failed with HTTP {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError) as exc:
                if attempt <= self.max_retries:
                    self.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
                    continue
                raise ApiError(f"GET {path} failed: {exc}") from exc
            try:
                return json.loads(body)
            except ValueError as exc:
                raise ApiError(f"GET {path} returned a body that is not JSON") from exc

    def pages(
        self, path: str, params: Mapping[str, object], max_pages: int = 1000
    ) -> Iterator[dict]:
        """Every page of a report, following ``next_page`` while ``has_more``."""
        cursor: str | None = None
        for _ in range(max_pages):
            page = self.get(path, {**params, "page": cursor})
            yield page
            if not page.get("has_more"):
                return
            cursor = page.get("next_page")
            if not cursor:
                raise ApiError(f"GET {path}: has_more is true but next_page is empty")
        raise ApiError(f"GET {path}: more than {max_pages} pages; narrow the time range")


def write_pages(pages: Iterator[dict], out_path) -> int:
    """Write pages as JSON Lines (one page per line) atomically; returns the page count."""
    from pathlib import Path

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for page in pages:
            fh.write(json.dumps(page, separators=(",", ":")) + "\n")
            n += 1
    tmp.replace(out_path)
    return n
