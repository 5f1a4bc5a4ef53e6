"""LiteLLM spend logs and OTel GenAI spans -> native records: golden files, one test per token
conversion, the reader interface, and the mapping rules (tags, parents, sibling spans)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from ingestion.gateway import litellm, otel
from ingestion.gateway.readers import READER_COLUMNS, detect_format

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LITELLM = FIXTURES / "litellm" / "spend_logs.jsonl"
LITELLM_CSV = FIXTURES / "litellm" / "spend_logs.csv"
OTEL = FIXTURES / "otel" / "genai_spans.jsonl"


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _rows(con, reader, path: Path) -> list[dict]:
    reader(con, path, "out")
    cur = con.execute("select * from out order by source_line")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        for k in ("extra", "metadata"):
            if r.get(k) is not None:
                r[k] = json.loads(r[k])
    return rows


def _golden(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())


def _without_raw(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "raw_line"} for r in rows]


@pytest.mark.parametrize(
    "reader,path,golden",
    [
        (litellm.read, LITELLM, "litellm/spend_logs.expected.json"),
        (litellm.read, LITELLM_CSV, "litellm/spend_logs_csv.expected.json"),
        (otel.read, OTEL, "otel/genai_spans.expected.json"),
    ],
)
def test_golden_files(con, reader, path, golden):
    assert _without_raw(_rows(con, reader, path)) == _golden(golden)


@pytest.mark.parametrize("reader,path", [(litellm.read, LITELLM), (otel.read, OTEL)])
def test_reader_interface_columns_and_types(con, reader, path):
    reader(con, path, "out")
    desc = con.execute("describe out").fetchall()
    assert [d[0] for d in desc] == list(READER_COLUMNS)
    assert {d[0]: d[1] for d in desc}["source_line"] == "BIGINT"
    assert all(d[1] == "VARCHAR" for d in desc if d[0] != "source_line")
    lines = [r[0] for r in con.execute("select source_line from out").fetchall()]
    assert len(lines) == len(set(lines))
    assert con.execute("select count(*) from out where raw_line is null").fetchone()[0] == 0


def test_detect_format_recognises_both(con):
    assert detect_format(LITELLM) == "litellm"
    assert detect_format(OTEL) == "otel"


@pytest.mark.parametrize(
    "reader,path,texts",
    [
        (litellm.read, LITELLM, ["charged twice", "Sorry to hear", "draft an email"]),
        (otel.read, OTEL, ["charged twice", "Summarise the contract", "The contract says"]),
    ],
)
def test_prompt_and_response_text_never_leave_the_reader(con, reader, path, texts):
    assert all(t in path.read_text() for t in texts)
    reader(con, path, "out")
    dump = json.dumps(con.execute("select * from out").fetchall(), default=str)
    for t in texts:
        assert t not in dump


# --- LiteLLM conversions ---------------------------------------------------------------------
def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["request_id"]: r for r in rows if r["request_id"]}


def test_litellm_prompt_tokens_already_include_anthropic_cache_reads_and_writes(con):
    r = _by_id(_rows(con, litellm.read, LITELLM))["msg_01XFDUDYJgAACzvnptvVoYEL"]
    # prompt_tokens 3620 = 120 uncached + 3000 cache read + 500 cache write: no addition
    assert (r["input_tokens"], r["cache_read_input_tokens"], r["cache_write_input_tokens"]) == (
        "3620",
        "3000",
        "500",
    )
    assert r["cache_write_ttl"] == "1h"


def test_litellm_openai_cached_tokens_are_cache_reads_inside_input(con):
    r = _by_id(_rows(con, litellm.read, LITELLM))["chatcmpl-AQ7x1f0c9e2d4b"]
    assert (r["input_tokens"], r["cache_read_input_tokens"]) == ("2300", "1024")
    assert r["cache_write_input_tokens"] is None


def test_litellm_completion_tokens_include_reasoning(con):
    r = _by_id(_rows(con, litellm.read, LITELLM))["chatcmpl-o3m-5521"]
    assert (r["output_tokens"], r["reasoning_tokens"]) == ("900", "640")


def test_litellm_failed_call_is_zero_tokens_zero_spend_with_status(con):
    rows = _by_id(_rows(con, litellm.read, LITELLM))
    r = rows["chatcmpl-failed-7781"]
    assert (r["input_tokens"], r["output_tokens"], r["cost_usd"], r["status"]) == (
        "0",
        "0",
        "0.0",
        "rate_limited",
    )
    assert r["feature"] is None and r["customer_segment"] is None  # no tags: unattributed
    csv_rows = _by_id(_rows(con, litellm.read, LITELLM_CSV))
    assert csv_rows["csv-req-2"]["status"] == "timeout"


def test_litellm_spend_latency_provider_and_tags(con):
    rows = _by_id(_rows(con, litellm.read, LITELLM))
    assert rows["chatcmpl-AQ7x1f0c9e2d4b"]["cost_usd"] == "0.0048725"
    assert rows["chatcmpl-AQ7x1f0c9e2d4b"]["latency_ms"] == "2350.0"
    assert rows["chatcmpl-o3m-5521"]["provider"] == "azure"  # from api_base
    assert rows["bedrock-run-0091"]["provider"] == "bedrock"  # from the model prefix
    # tags in metadata.tags (older proxies), timestamp without offset read as UTC
    assert rows["bedrock-run-0091"]["feature"] == "outreach_writer"
    assert rows["bedrock-run-0091"]["timestamp"] == "2026-11-02T09:15:00.250000Z"
    # team: the tag wins over the key's team alias; the alias fills in without a tag
    assert rows["msg_01XFDUDYJgAACzvnptvVoYEL"]["team"] == "docs"
    assert rows["chatcmpl-AQ7x1f0c9e2d4b"]["team"] == "cx-platform"


def test_litellm_bad_lines_are_rows_with_a_reason(con):
    rows = _rows(con, litellm.read, LITELLM)
    bad = [(r["source_line"], r["parse_error"], r["raw_line"]) for r in rows if r["parse_error"]]
    assert bad == [
        (7, "not JSON", 'this line is not JSON {"request_id": "x"'),
        (8, "not a JSON object", "[1, 2, 3]"),
    ]


def test_litellm_json_array_and_gzip_give_the_same_records(con, tmp_path):
    records = [json.loads(line) for line in LITELLM.read_text().splitlines()[:3]]
    arr = tmp_path / "export.json"
    arr.write_text(json.dumps(records, indent=2))
    gz = tmp_path / "spend.jsonl.gz"
    gz.write_bytes(gzip.compress(LITELLM.read_bytes()))
    want = _without_raw(_rows(con, litellm.read, LITELLM))
    got_arr = _without_raw(_rows(con, litellm.read, arr))
    assert [r["request_id"] for r in got_arr] == [r["request_id"] for r in want[:3]]
    assert [{**r, "source_line": 0} for r in got_arr] == [{**r, "source_line": 0} for r in want[:3]]
    assert _without_raw(_rows(con, litellm.read, gz)) == want


# --- OTel conversions ------------------------------------------------------------------------
def _attr(k: str, v) -> dict:
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def _span(span_id: str, attrs: dict, parent: str | None = None, **kw) -> dict:
    s = {
        "traceId": "0123456789abcdef0123456789abcdef",
        "spanId": span_id,
        "name": kw.get("name", "chat"),
        "kind": 3,
        "startTimeUnixNano": kw.get("start", "1793610000000000000"),
        "endTimeUnixNano": kw.get("end", "1793610001500000000"),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
        "status": kw.get("status", {}),
    }
    if parent:
        s["parentSpanId"] = parent
    return s


def _otel_file(tmp_path: Path, *spans: dict, resource: dict | None = None) -> Path:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr(k, v) for k, v in (resource or {}).items()]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }
    p = tmp_path / "spans.jsonl"
    p.write_text(json.dumps(doc) + "\n")
    return p


def test_otel_input_tokens_include_cached_tokens_no_conversion(con):
    r = _by_id(_rows(con, otel.read, OTEL))["chatcmpl-AQ7x1f0c9e2d4b"]
    assert (r["input_tokens"], r["cache_read_input_tokens"], r["output_tokens"]) == (
        "2300",
        "1024",
        "312",
    )


def test_otel_traceloop_cache_creation_spelling_is_cache_write(con, tmp_path):
    p = _otel_file(
        tmp_path,
        _span(
            "aaaaaaaaaaaaaaaa",
            {
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-3-5-haiku",
                "gen_ai.usage.prompt_tokens": 900,
                "gen_ai.usage.completion_tokens": 40,
                "gen_ai.usage.cache_creation_input_tokens": 700,
                "gen_ai.usage.cache_read_input_tokens": 100,
            },
        ),
    )
    (r,) = _rows(con, otel.read, p)
    assert (r["provider"], r["input_tokens"], r["output_tokens"]) == ("anthropic", "900", "40")
    assert (r["cache_write_input_tokens"], r["cache_read_input_tokens"]) == ("700", "100")
    assert r["request_id"] == "aaaaaaaaaaaaaaaa"  # no response id: the span id
    assert r["timestamp"] == "2026-11-02T09:00:00.000000Z" and r["latency_ms"] == "1500.0"


def test_otel_sdk_cache_write_spelling_and_reasoning(con, tmp_path):
    p = _otel_file(
        tmp_path,
        _span(
            "bbbbbbbbbbbbbbbb",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.response.model": "o3",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 500,
                "gen_ai.usage.reasoning.output_tokens": 420,
                "gen_ai.usage.cache_write.input_tokens": 30,
            },
        ),
    )
    (r,) = _rows(con, otel.read, p)
    assert (r["output_tokens"], r["reasoning_tokens"], r["cache_write_input_tokens"]) == (
        "500",
        "420",
        "30",
    )


def test_otel_sibling_spans_with_one_response_id_are_one_call(con):
    rows = _rows(con, otel.read, OTEL)
    same = [r for r in rows if r["request_id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"]
    assert len(same) == 1
    # merged: the SDK span (first) gives every field; nothing summed
    assert (same[0]["input_tokens"], same[0]["cache_write_input_tokens"]) == ("3620", "500")


def test_otel_attribution_resolved_up_the_parent_chain(con):
    rows = _by_id(_rows(con, otel.read, OTEL))
    a = rows["chatcmpl-AQ7x1f0c9e2d4b"]  # two levels below the server span
    assert (a["feature"], a["customer_segment"], a["team"], a["customer_id"]) == (
        "ticket_router",
        "enterprise",
        "cx-platform",
        "northwind-001",
    )
    assert a["environment"] == "prod"  # resource attribute deployment.environment.name
    assert rows["bedrock-req-3f9a"]["feature"] == "kb_lookup_rerank"  # own value wins
    assert rows["9999aaaabbbbcccc"]["feature"] == "kb_lookup"  # from the agent span
    failed = rows["00f067aa0ba902b7"]
    assert failed["feature"] is None and failed["status"] == "rate_limited"
    assert (failed["input_tokens"], failed["output_tokens"]) == ("0", "0")


def test_otel_only_model_call_spans_are_records(con):
    rows = _rows(con, otel.read, OTEL)
    records = [r for r in rows if not r["parse_error"]]
    # 8 spans in the file + 2 unreadable lines: 5 calls, agent/db/app spans are not records
    assert len(records) == 5
    assert {r["extra"]["otel_span_name"] for r in records}.isdisjoint(
        {"invoke_agent search_agent", "SELECT docs", "summarize_document", "draft_reply"}
    )
    assert [r["parse_error"] for r in rows if r["parse_error"]] == [
        "not JSON",
        "not an OTLP trace export (no resourceSpans)",
    ]


def test_otel_pretty_printed_document_and_gzip(con, tmp_path):
    first = json.loads(OTEL.read_text().splitlines()[0])
    pretty = tmp_path / "export.json"
    pretty.write_text(json.dumps(first, indent=2))
    (r,) = _rows(con, otel.read, pretty)
    assert r["request_id"] == "chatcmpl-AQ7x1f0c9e2d4b" and r["feature"] == "ticket_router"
    gz = tmp_path / "spans.jsonl.gz"
    gz.write_bytes(gzip.compress(OTEL.read_bytes()))
    assert _without_raw(_rows(con, otel.read, gz)) == _golden("otel/genai_spans.expected.json")


def test_otel_parent_in_another_export_line_still_attributes(con, tmp_path):
    parent = _span("cccccccccccccccc", {"app.feature": "call_recap", "segment": "smb"})
    child = _span(
        "dddddddddddddddd",
        {
            "gen_ai.provider.name": "gcp.vertex_ai",
            "gen_ai.request.model": "gemini-2.5-pro",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
        },
        parent="cccccccccccccccc",
    )
    p = tmp_path / "two.jsonl"
    docs = [
        {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [s]}]}]}
        for s in (child, parent)
    ]
    p.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    (r,) = _rows(con, otel.read, p)
    assert (r["feature"], r["customer_segment"], r["provider"]) == (
        "call_recap",
        "smb",
        "vertex_ai",
    )


def test_readers_scale_without_python_loops(con, tmp_path):
    """20k LiteLLM rows and 20k OTel spans read through DuckDB in a few seconds."""
    import time

    line = LITELLM.read_text().splitlines()[0]
    rec = json.loads(line)
    big = tmp_path / "big.jsonl"
    with big.open("w") as fh:
        for i in range(20_000):
            rec["request_id"] = f"req-{i}"
            fh.write(json.dumps(rec) + "\n")
    t = time.perf_counter()
    litellm.read(con, big, "big")
    lt = time.perf_counter() - t
    assert con.execute("select count(distinct request_id) from big").fetchone()[0] == 20_000
    spans = [
        _span(
            f"{i:016x}",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.response.id": f"r{i}",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": i,
                "gen_ai.usage.output_tokens": 1,
            },
        )
        for i in range(20_000)
    ]
    p = _otel_file(tmp_path, *spans)
    t = time.perf_counter()
    otel.read(con, p, "bigo")
    ot = time.perf_counter() - t
    assert con.execute("select count(*) from bigo").fetchone()[0] == 20_000
    assert lt < 30 and ot < 30, (lt, ot)
