"""Extract steps: admin APIs against recorded pages served on 127.0.0.1 (paging, 429 + Retry-After,
5xx backoff, auth headers, keys from the environment), and the GCP export query on BigQuery
(sqlglot parse + a patched client)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import duckdb
import pytest

from ingestion.billing.http import AdminApiClient, ApiError
from ingestion.billing.loader import BillingError, ingest_billing

FIX = Path(__file__).parent / "fixtures" / "billing"


class Recorded:
    """Routes (path, page cursor) -> recorded page; optional failures served first."""

    def __init__(self, routes: dict[tuple[str, str | None], Path], failures=None):
        self.routes = routes
        self.failures = list(failures or [])  # [(status, headers)]
        self.delay_s = 0.0  # answer this late (timeouts)
        self.requests: list[tuple[str, dict, dict]] = []


@pytest.fixture
def server():
    state: dict[str, Recorded] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            rec = state["rec"]
            if rec.delay_s:
                time.sleep(rec.delay_s)
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            rec.requests.append((url.path, query, {k.lower(): v for k, v in self.headers.items()}))
            if rec.failures:
                status, headers = rec.failures.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "slow down"}}')
                return
            page = query.get("page", [None])[0]
            target = rec.routes.get((url.path, page))
            if target is None:
                self.send_response(404)
                self.end_headers()
                return
            body = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(rec: Recorded) -> str:
        state["rec"] = rec
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield serve
    httpd.shutdown()
    httpd.server_close()


def page_cursor(name: str) -> str:
    return json.loads((FIX / name).read_text())["next_page"]


def test_openai_extract_pages_retries_and_loads(server, tmp_path, monkeypatch):
    from ingestion.billing.openai import extract

    rec = Recorded(
        {
            ("/v1/organization/usage/completions", None): FIX / "openai_usage_completions_page1.json",
            ("/v1/organization/usage/completions", page_cursor("openai_usage_completions_page1.json")):
                FIX / "openai_usage_completions_page2.json",
            ("/v1/organization/costs", None): FIX / "openai_costs_page1.json",
        },
        failures=[(429, {"Retry-After": "2"}), (503, {})],
    )  # fmt: skip
    base = server(rec)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-test-0000")
    waits: list[float] = []
    # jitter off: this test pins the schedule (test_backoff_is_jittered checks the jitter)
    api = extract.client(base_url=base, sleep=waits.append, backoff_s=0.5, jitter_s=0)
    files = extract.extract_day(date(2026, 11, 2), tmp_path, api)

    assert waits == [2.0, 1.0]  # Retry-After honoured, then exponential backoff (0.5 * 2)
    paths = [r[0] for r in rec.requests]
    assert paths == ["/v1/organization/usage/completions"] * 4 + ["/v1/organization/costs"]
    first_query = rec.requests[0][1]
    assert first_query["start_time"] == ["1793577600"]
    assert first_query["end_time"] == ["1793664000"]
    assert first_query["group_by"] == ["model", "project_id", "api_key_id", "batch", "service_tier"]
    assert rec.requests[3][1]["page"] == [page_cursor("openai_usage_completions_page1.json")]
    assert all(r[2]["authorization"] == "Bearer sk-admin-test-0000" for r in rec.requests)
    assert [len(f.read_text().splitlines()) for f in files] == [2, 1]

    con = duckdb.connect()
    # The recorded pages reach into the next day: date the load so both fit its window.
    (r,) = ingest_billing(con, "openai", files, load_date=date(2026, 11, 3))
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (21, 19, 2)
    # Nothing of the key ever lands.
    assert "sk-admin" not in str(con.execute("select * from raw.billing_lines").fetchall())


def test_anthropic_extract_headers_and_paging(server, tmp_path, monkeypatch):
    from ingestion.billing.anthropic import extract

    rec = Recorded(
        {
            ("/v1/organizations/usage_report/messages", None):
                FIX / "anthropic_usage_messages_page1.json",
            ("/v1/organizations/usage_report/messages",
             page_cursor("anthropic_usage_messages_page1.json")):
                FIX / "anthropic_usage_messages_page2.json",
            ("/v1/organizations/cost_report", None): FIX / "anthropic_cost_report_page1.json",
        }
    )  # fmt: skip
    base = server(rec)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-test")
    files = extract.extract_day(date(2026, 11, 2), tmp_path, extract.client(base_url=base))
    assert len(rec.requests) == 3
    _, query, headers = rec.requests[0]
    assert query["starting_at"] == ["2026-11-02T00:00:00Z"]
    assert query["group_by[]"][:2] == ["model", "workspace_id"]
    assert headers["x-api-key"] == "sk-ant-admin01-test"
    assert headers["anthropic-version"] == "2023-06-01"
    con = duckdb.connect()
    results = ingest_billing(con, "anthropic", files)
    assert sum(r.rows_loaded for r in results) == 19


def test_client_gives_up_after_retries_and_on_4xx(server):
    rec = Recorded({}, failures=[(500, {})] * 3)
    base = server(rec)
    waits: list[float] = []
    api = AdminApiClient(base, {}, max_retries=2, backoff_s=0.1, sleep=waits.append, jitter_s=0)
    with pytest.raises(ApiError, match="HTTP 500"):
        api.get("organization/costs", {})
    assert waits == [0.1, 0.2] and len(rec.requests) == 3
    rec = Recorded({})  # 404: no retry
    base = server(rec)
    with pytest.raises(ApiError, match="HTTP 404"):
        AdminApiClient(base, {}, sleep=waits.append).get("organization/costs", {})
    assert len(rec.requests) == 1


COSTS = {("/v1/organization/costs", None): FIX / "openai_costs_page1.json"}


def test_backoff_is_jittered_within_its_bounds(server):
    """Two clients refused the same way do not come back on the same schedule, and each wait
    stays within backoff * 2**n .. backoff * 2**n + jitter."""
    schedules = []
    for _ in range(2):
        rec = Recorded(COSTS, failures=[(503, {})] * 3)
        base = server(rec)
        waits: list[float] = []
        api = AdminApiClient(base, {}, max_retries=3, backoff_s=0.5, jitter_s=0.25,
                             sleep=waits.append)
        assert api.get("organization/costs", {})["object"] == "page"
        assert len(rec.requests) == 4
        assert len(waits) == 3
        for n, wait in enumerate(waits):
            assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.25, waits
        schedules.append(waits)
    assert schedules[0] != schedules[1]


def test_backoff_never_exceeds_its_cap(server):
    rec = Recorded(COSTS, failures=[(502, {})] * 4)
    waits: list[float] = []
    api = AdminApiClient(server(rec), {}, backoff_s=10, max_backoff_s=15, sleep=waits.append)
    api.get("organization/costs", {})
    assert waits[0] >= 10 and all(w <= 15 for w in waits) and waits[-1] == 15


@pytest.mark.parametrize("retry_after", ["3600", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_a_long_retry_after_is_capped(server, retry_after):
    """A server asking for an hour (or a date far ahead) is retried after MAX_RETRY_AFTER_S."""
    from ingestion.billing.http import MAX_RETRY_AFTER_S

    rec = Recorded(COSTS, failures=[(429, {"Retry-After": retry_after})])
    waits: list[float] = []
    page = AdminApiClient(server(rec), {}, sleep=waits.append).get("organization/costs", {})
    assert MAX_RETRY_AFTER_S == 60.0
    assert waits == [60.0]
    assert page["object"] == "page" and len(rec.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_a_client_error_is_not_retried(server, status):
    rec = Recorded(COSTS, failures=[(status, {"Retry-After": "1"})])
    waits: list[float] = []
    with pytest.raises(ApiError, match=f"GET organization/costs failed with HTTP {status}: "
                                       ".*slow down"):
        AdminApiClient(server(rec), {}, sleep=waits.append).get("organization/costs", {})
    assert len(rec.requests) == 1 and waits == []


def test_503_is_retried_then_succeeds(server):
    rec = Recorded(COSTS, failures=[(503, {})])
    waits: list[float] = []
    api = AdminApiClient(server(rec), {}, backoff_s=2, sleep=waits.append)
    page = api.get("organization/costs", {"limit": 7, "group_by": ["a", "b"], "page": None})
    assert page == json.loads((FIX / "openai_costs_page1.json").read_text())
    assert len(rec.requests) == 2 and api.requests_made == 2
    assert rec.requests[1][1] == {"limit": ["7"], "group_by": ["a", "b"]}  # None left out
    assert len(waits) == 1 and 2 <= waits[0] <= 3


def test_attempts_are_capped(server):
    rec = Recorded(COSTS, failures=[(503, {})] * 50)
    waits: list[float] = []
    with pytest.raises(ApiError, match="HTTP 503"):
        AdminApiClient(server(rec), {}, sleep=waits.append).get("organization/costs", {})
    assert len(rec.requests) == 6 and len(waits) == 5  # max_retries=5: one request + 5 retries


def test_connection_errors_and_timeouts_are_retried_then_reported(server):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    api = AdminApiClient(f"http://127.0.0.1:{port}/v1", {}, max_retries=2, sleep=waits.append)
    with pytest.raises(ApiError, match="GET organization/costs failed: "):
        api.get("organization/costs", {})
    assert api.requests_made == 3 and len(waits) == 2

    rec = Recorded(COSTS)
    rec.delay_s = 0.5
    api = AdminApiClient(server(rec), {}, max_retries=1, timeout_s=0.1, sleep=waits.append)
    with pytest.raises(ApiError, match="(?i)timed out"):
        api.get("organization/costs", {})
    assert api.requests_made == 2


def test_missing_key_says_where_to_put_it(monkeypatch):
    from ingestion.billing.openai import extract

    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    with pytest.raises(BillingError, match="OPENAI_ADMIN_KEY.*openai_admin"):
        extract.client()


def test_gcp_export_query_is_bigquery_sql_and_job_is_parameterised(tmp_path):
    import sqlglot
    from google.cloud import bigquery

    from ingestion.billing.gcp import extract

    table = "orbit-billing.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
    sql = extract.export_query(table)
    parsed = sqlglot.parse_one(sql, read="bigquery")
    t = parsed.find(sqlglot.exp.Table)
    assert (t.catalog, t.db, t.name) == tuple(table.split("."))
    # every @parameter the SQL uses is one the job passes
    used = {p.name for p in parsed.find_all(sqlglot.exp.Parameter)}
    assert used == set(extract.query_parameters(date(2026, 11, 1)))
    with pytest.raises(BillingError, match="project.dataset.table"):
        extract.export_query("nope; drop table x")

    rows = [
        {"row_json": line} for line in (FIX / "gcp_billing_export.jsonl").read_text().splitlines()
    ]
    client = mock.Mock(spec=bigquery.Client)
    client.query.return_value.result.return_value = rows
    out = extract.extract_month(client, table, date(2026, 11, 15), tmp_path)

    (call,) = client.query.call_args_list
    assert call.args[0] == sql
    params = {p.name: (p.type_, p.value) for p in call.kwargs["job_config"].query_parameters}
    assert params["invoice_month"] == ("STRING", "202611")
    assert params["partition_start"] == ("DATE", date(2026, 10, 29))
    assert params["partition_end"] == ("DATE", date(2026, 12, 4))
    assert out.name == "billing-export-2026-11.jsonl"
    con = duckdb.connect()
    (r,) = ingest_billing(con, "gcp", [out], month=date(2026, 11, 1))
    assert (r.rows_read, r.rows_loaded) == (7, 3)
