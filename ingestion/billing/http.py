"""A small HTTP client for the vendors' admin APIs: JSON GETs, cursor paging
(``has_more``/``next_page``), retries, and API keys from the environment or an Airflow
connection (never code).

Built on requests (one ``Session`` per client, every request with a timeout) and tenacity:

- retried: HTTP 429 and 5xx (500, 502, 503, 504), connection errors and timeouts;
- never retried: any other status (a 400, 401, 403 or 404 will not get better by asking again);
- wait: the server's ``Retry-After`` (seconds or an HTTP date) when it sends one, capped at
  ``MAX_RETRY_AFTER_S``; otherwise exponential backoff ``backoff_s * 2**n`` capped at
  ``max_backoff_s``, plus a random jitter of up to ``jitter_s`` so that many workers refused at
  the same moment do not all come back at the same moment;
- at most ``max_retries + 1`` requests per call, then ``ApiError`` with the last status.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
import tenacity

from ingestion.billing.errors import BillingError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A server asking for more than this gets a retry after this long anyway: an extract is a task
# in a nightly run, and a one-hour Retry-After must not hold an Airflow worker for an hour per
# attempt (the task's own retries come back later).
MAX_RETRY_AFTER_S = 60.0


class ApiError(BillingError):
    """An admin-API request that failed for good (after retries, or a 4xx)."""


class _TransientError(ApiError):
    """A failure worth another attempt (429, 5xx, connection). Raised as the final ApiError
    when the attempts run out, so its message is the one the user sees."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def resolve_key(env_var: str, conn_id: str | None = None) -> str:
    """The API key from ``env_var``, else from the Airflow connection ``conn_id`` (its password).
    Raises BillingError saying where to put it."""
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    failed = ""
    if conn_id:
        # Airflow is optional here (the extract also runs from the CLI): import it only when a
        # connection is asked for.
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
            except Exception as exc:  # noqa: BLE001 - said in the error below, never swallowed
                conn = None
                if type(exc).__name__ != "AirflowNotFoundException":  # not merely absent
                    first = (str(exc).strip().splitlines() or [""])[0][:200]
                    failed = (f" (looking up the Airflow connection {conn_id!r} failed: "
                              f"{type(exc).__name__}: {first})")
            if conn is not None and conn.password:
                return conn.password
    where = f" or the Airflow connection {conn_id!r} (password field)" if conn_id else ""
    raise BillingError(f"no API key: set the environment variable {env_var}{where}{failed}")


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date); None if absent or
    unreadable. Not capped here: see ``MAX_RETRY_AFTER_S``."""
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
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """The server's Retry-After (capped) when the failure carried one, else jittered backoff."""

    def __init__(self, backoff: tenacity.wait.wait_base):
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return self.backoff(retry_state)


@dataclass
class AdminApiClient:
    """``max_retries``: retries after the first request (so at most ``max_retries + 1``
    requests per GET). ``sleep``: how to wait (tests pass a recorder)."""

    base_url: str
    headers: Mapping[str, str]
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter_s: float = 1.0
    requests_made: int = field(default=0, init=False)
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_TransientError),
            stop=tenacity.stop_after_attempt(max(0, self.max_retries) + 1),
            wait=_RetryAfterOrBackoff(tenacity.wait_exponential_jitter(
                initial=self.backoff_s, max=self.max_backoff_s, jitter=self.jitter_s)),
            sleep=self.sleep,
            before_sleep=tenacity.before_sleep_log(log, logging.WARNING),
            reraise=True,  # the last ApiError itself, not tenacity's RetryError
        )

    def get(self, path: str, params: Mapping[str, object]) -> dict:
        query = [(k, v) for k, vs in params.items()
                 for v in (vs if isinstance(vs, list) else [vs]) if v is not None]
        url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
        return self._retrying()(self._get_once, path, url, query)

    def _get_once(self, path: str, url: str, query: list[tuple[str, object]]) -> dict:
        self.requests_made += 1
        try:
            resp = self.session.get(url, params=query, headers=dict(self.headers),
                                    timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _TransientError(f"GET {path} failed: {exc}") from exc
        except requests.RequestException as exc:  # a malformed URL and the like: no retry
            raise ApiError(f"GET {path} failed: {exc}") from exc
        if resp.status_code >= 400:
            detail = resp.content[:300].decode("utf-8", "replace")
            message = f"GET {path} failed with HTTP {resp.status_code}: {detail}"
            if resp.status_code in RETRY_STATUSES:
                raise _TransientError(message,
                                      _retry_after_seconds(resp.headers.get("Retry-After")))
            raise ApiError(message)
        try:
            return json.loads(resp.content)
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
