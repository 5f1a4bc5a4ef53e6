"""Real clients load clean: every service tier the vendors write, and every OpenTelemetry GenAI
attribute spelling (current, earlier gen_ai.*, llm.*, openai.*), map onto the same columns; a
LiteLLM spend log and OTel spans using all of them ingest with exit 0."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion.gateway import otel
from ingestion.gateway.pipeline import ingest_gateway
from tokenbook.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRACE = "0123456789abcdef0123456789abcdef"


def _attr(k: str, v) -> dict:
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def _span(span_id: str, attrs: dict, start_s: int = 1793610000) -> dict:
    return {
        "traceId": TRACE, "spanId": span_id, "name": "chat", "kind": 3,
        "startTimeUnixNano": f"{start_s}000000000", "endTimeUnixNano": f"{start_s + 1}000000000",
        "attributes": [_attr(k, v) for k, v in attrs.items()], "status": {},
    }


def _spans_file(path: Path, spans: list[dict]) -> Path:
    doc = {"resourceSpans": [{"resource": {"attributes": []},
                              "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    path.write_text(json.dumps(doc) + "\n")
    return path


# One call in the current spelling; each case swaps ONE attribute for another spelling.
CURRENT = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.response.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1500,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_write.input_tokens": 200,
    "gen_ai.usage.reasoning.output_tokens": 120,
    "openai.response.service_tier": "priority",
}
EXPECTED = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": "1500",
            "output_tokens": "300", "cache_read_input_tokens": "1000",
            "cache_write_input_tokens": "200", "reasoning_tokens": "120",
            "service_tier": "priority"}
CURRENT_KEY = {"provider": "gen_ai.provider.name", "model": "gen_ai.response.model",
               "input_tokens": "gen_ai.usage.input_tokens",
               "output_tokens": "gen_ai.usage.output_tokens",
               "cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
               "cache_write_input_tokens": "gen_ai.usage.cache_write.input_tokens",
               "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
               "service_tier": "openai.response.service_tier"}
SPELLINGS = [
    (field, key) for field in CURRENT_KEY for key in otel.CALL_KEYS[field]
    if key != CURRENT_KEY[field]
]


def test_every_earlier_spelling_of_the_issue_is_covered():
    keys = {k for _, k in SPELLINGS}
    for named in ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.system",
                  "openai.request.service_tier"):
        assert named in keys
    assert any(k.startswith("llm.") for k in keys)
    assert {f for f, _ in SPELLINGS} == set(CURRENT_KEY)


@pytest.mark.parametrize("field,key", SPELLINGS, ids=[k for _, k in SPELLINGS])
def test_spelling_maps_onto_the_same_column(tmp_path, field, key):
    attrs = {k: v for k, v in CURRENT.items() if k != CURRENT_KEY[field]}
    attrs[key] = CURRENT[CURRENT_KEY[field]]
    con = duckdb.connect()
    otel.read(con, _spans_file(tmp_path / "spans.jsonl", [_span("aaaaaaaaaaaaaaaa", attrs)]),
              "out")
    cur = con.execute("select * from out")
    (row,) = [dict(zip([d[0] for d in cur.description], r, strict=True))
              for r in cur.fetchall()]
    assert {f: row[f] for f in EXPECTED} == EXPECTED, key
    # the value is mapped, not also kept as an unknown attribute
    assert key not in (json.loads(row["extra"])["otel_attributes"] or {})


@pytest.mark.parametrize("logged,stored", [
    ("default", "default"), ("auto", "default"), ("flex", "flex"), ("priority", "priority"),
    ("scale", "scale"), ("standard", "default"), ("Standard", "default"), ("batch", "batch"),
    ("standard_only", "default"), (" PRIORITY ", "priority"),
])
def test_service_tiers_as_vendors_write_them_are_normalised(tmp_path, logged, stored):
    f = tmp_path / "calls.jsonl"
    f.write_text(json.dumps({"request_id": "t1", "timestamp": "2026-11-02T10:00:00Z",
                             "provider": "anthropic", "model": "claude-sonnet-4-5",
                             "input_tokens": 10, "output_tokens": 2,
                             "service_tier": logged}) + "\n")
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="k")
    report = ingest_gateway([str(f)], settings)
    assert report.notes == []
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    assert con.execute("select service_tier from raw.gateway_calls").fetchall() == [(stored,)]


def test_an_unknown_tier_is_loaded_as_logged_and_reported(tmp_path):
    f = tmp_path / "calls.jsonl"
    recs = [{"request_id": f"u{i}", "timestamp": "2026-11-02T10:00:00Z", "provider": "openai",
             "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 2,
             "service_tier": tier} for i, tier in enumerate(["reserved-v2", "default", "flex"])]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="k")
    report = ingest_gateway([str(f)], settings)
    assert report.rows_loaded == 3 and report.rows_quarantined == 0
    (note,) = report.notes
    assert "1 loaded calls carry a service_tier outside" in note
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    assert sorted(r[0] for r in con.execute(
        "select service_tier from raw.gateway_calls").fetchall()) == [
        "default", "flex", "reserved-v2"]


def _litellm_with_every_tier(tmp_path: Path) -> Path:
    base = [json.loads(line) for line in (FIXTURES / "litellm" / "spend_logs.jsonl")
            .read_text().splitlines() if line.strip().startswith("{")]
    out = []
    tiers = ["default", "auto", "flex", "priority", "scale", "standard", "batch"]
    for i, tier in enumerate(tiers):
        rec = copy.deepcopy(base[i % 2])  # an OpenAI and an Anthropic call, alternately
        rec["request_id"] = f"{rec['request_id']}-{tier}"
        rec["metadata"]["usage_object"]["service_tier"] = tier
        out.append(json.dumps(rec))
    path = tmp_path / "spend_logs.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def test_litellm_log_and_otel_spans_with_every_tier_and_spelling_ingest_with_exit_0(tmp_path):
    spans = [_span(f"{i:016x}", {**{k: v for k, v in CURRENT.items()
                                    if k != CURRENT_KEY[field]},
                                 key: CURRENT[CURRENT_KEY[field]]}, 1793610000 + i)
             for i, (field, key) in enumerate(SPELLINGS)]
    spans_path = _spans_file(tmp_path / "spans.jsonl", spans)
    litellm_path = _litellm_with_every_tier(tmp_path)
    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    runner = CliRunner()
    # one load of the date (a second load of the same date would replace the first)
    result = runner.invoke(app, ["ingest", "gateway", str(litellm_path), str(spans_path),
                                 "--date", "2026-11-02", "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "service_tier outside" not in result.output  # every tier is known
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    tiers = dict(con.execute("select source_format, list(distinct service_tier order by "
                             "service_tier) from raw.gateway_calls group by 1").fetchall())
    assert tiers["litellm"] == ["batch", "default", "flex", "priority", "scale"]
    assert tiers["otel"] == ["priority"]
    assert con.execute("select count(*) from raw.gateway_calls where source_format = 'otel'"
                       ).fetchone()[0] == len(SPELLINGS)
    assert con.execute("select count(*) from raw.quarantine").fetchone()[0] == 0
