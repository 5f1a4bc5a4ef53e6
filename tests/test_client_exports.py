"""Real client exports the reader fixtures do not use load clean through `tokenbook ingest
gateway` with no --format: LiteLLM's StandardLoggingPayload (what its S3 / GCS / custom loggers
write), OpenTelemetry spans written one per line with their attributes as an object (the Python
SDK's span JSON), and OTLP files whose non-GenAI spans are counted, not silently dropped."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion.gateway import otel
from tests import gateway_cli

DAY = "2026-11-04"
T0 = 1793779200  # 2026-11-04T08:00:00Z


def _ingest(tmp_path: Path, *files: Path):
    return gateway_cli.ingest(tmp_path, *files, day=DAY)


_rows = gateway_cli.rows


def _audit_balances(wh: Path) -> None:
    for read, loaded, quar, dup in _rows(wh, "select rows_read, rows_loaded, rows_quarantined, "
                                         "rows_duplicate from raw.load_audit"):
        assert read == loaded + quar + dup


def _standard_logging_payload(i: int, **kw) -> dict:
    rec = {
        "id": f"slp-{i}", "trace_id": f"trace-{i // 2}", "call_type": "acompletion",
        "response_cost": 0.00215, "status": "success", "total_tokens": 1300,
        "prompt_tokens": 1000, "completion_tokens": 300,
        "startTime": T0 + 60 * i + 0.25, "endTime": T0 + 60 * i + 1.75,
        "completionStartTime": T0 + 60 * i + 0.9, "response_time": 1.5,
        "model": "claude-sonnet-4-5-20250929", "model_id": "dep-1", "model_group": "writer",
        "custom_llm_provider": "anthropic", "api_base": "https://api.anthropic.com/v1/messages",
        "metadata": {"user_api_key_team_alias": "tariff-ops", "usage_object": {
            "prompt_tokens": 1000, "completion_tokens": 300, "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 100, "service_tier": "standard"}},
        "cache_hit": False, "cache_key": None, "saved_cache_cost": 0.0,
        "request_tags": ["feature:tariff_lookup", "segment:wholesale"], "end_user": "",
        "requester_ip_address": "", "messages": [{"role": "user", "content": "a question"}],
        "response": {"choices": []}, "error_str": None, "error_information": None,
        "model_parameters": {}, "hidden_params": {},
    }
    rec.update(kw)
    return rec


def test_litellm_standard_logging_payload_loads(tmp_path):
    """LiteLLM's loggers (s3, gcs_bucket, a custom callback) write StandardLoggingPayload:
    ``id`` not ``request_id``, ``response_cost`` not ``spend``, epoch-second float times and
    a top-level ``error_information``."""
    recs = [_standard_logging_payload(0), _standard_logging_payload(1),
            _standard_logging_payload(
                2, status="failure", response_cost=0.0, prompt_tokens=0, completion_tokens=0,
                total_tokens=0, metadata={"usage_object": None},
                error_str="RateLimitError", error_information={
                    "error_code": "429", "error_class": "RateLimitError",
                    "error_message": "rate limited"})]
    path = tmp_path / "litellm-callbacks.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    rows = _rows(wh, "select request_id, trace_id, call_ts, provider, input_tokens, "
                     "output_tokens, cache_read_input_tokens, cache_write_input_tokens, "
                     "service_tier, status, gateway_cost_usd, latency_ms, feature, team "
                     "from raw.gateway_calls order by request_id")
    assert [r[0] for r in rows] == ["slp-0", "slp-1", "slp-2"]
    first = rows[0]
    assert first[1] == "trace-0"
    assert first[2] == datetime(2026, 11, 4, 8, 0, 0, 250000)
    assert first[3:9] == ("anthropic", 1000, 300, 600, 100, "default")
    assert (first[9], str(first[10]), first[11]) == ("ok", "0.002150000", 1500.0)
    assert first[12:] == ("tariff_lookup", "tariff-ops")
    assert rows[2][9] == "rate_limited" and rows[2][4:6] == (0, 0)
    _audit_balances(wh)
    # mapped fields are not also kept as unknown fields
    (extra,) = _rows(wh, "select extra from raw.gateway_calls where request_id = 'slp-0'")[0]
    assert not {"id", "response_cost", "trace_id"} & set(json.loads(extra))


def _av(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # proto3 JSON: int64 as a string
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_av(x) for x in v]}}
    return {"stringValue": v}


def _otlp_span(trace: str, span: str, name: str, attrs: dict, parent: str = "",
               at: float = 0, status: dict | None = None) -> dict:
    return {"traceId": trace, "spanId": span, "parentSpanId": parent, "flags": 256,
            "name": name, "kind": 3,
            "startTimeUnixNano": str(int((T0 + at) * 10**9)),
            "endTimeUnixNano": str(int((T0 + at + 1.5) * 10**9)),
            "attributes": [{"key": k, "value": _av(v)} for k, v in attrs.items()],
            "status": status or {}}


def _resource_spans(service: str, scope: str, spans: list[dict]) -> dict:
    return {"resource": {"attributes": [{"key": "service.name", "value": _av(service)},
                                        {"key": "app.team", "value": _av("claims-eng")}]},
            "scopeSpans": [{"scope": {"name": scope, "version": "1.0"}, "spans": spans}]}


TA, TB = "4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4737"


def _collector_file(path: Path) -> Path:
    """Two OTLP/JSON documents, one per line (the collector's file exporter), several
    resourceSpans each: a request trace (server span with the attribution, a database span,
    the GenAI call, its HTTP client span), an Anthropic call seen by two instrumentations (two
    sibling spans, one response id), an agent span, and a health check (no GenAI at all)."""
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_01dup",
            "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 700,
            "gen_ai.usage.cache_read.input_tokens": 3000}
    doc1 = {"resourceSpans": [
        _resource_spans("claims-api", "opentelemetry.instrumentation.fastapi", [
            _otlp_span(TA, "00f067aa0ba902b7", "POST /claims/score",
                       {"http.request.method": "POST", "app.feature": "claims_scoring"}),
            _otlp_span(TA, "10f067aa0ba902b7", "SELECT claims",
                       {"db.system.name": "postgresql"}, parent="00f067aa0ba902b7"),
        ]),
        _resource_spans("claims-api", "opentelemetry.instrumentation.openai_v2", [
            _otlp_span(TA, "20f067aa0ba902b7", "chat gpt-4.1", {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.response.model": "gpt-4.1-2025-04-14", "gen_ai.response.id": "chatcmpl-1",
                "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 400,
                "gen_ai.usage.cache_read.input_tokens": 1500,
                "gen_ai.response.finish_reasons": ["stop"],
                "openai.response.service_tier": "Default"},
                parent="00f067aa0ba902b7", at=1),
            _otlp_span(TA, "30f067aa0ba902b7", "POST", {"http.request.method": "POST"},
                       parent="20f067aa0ba902b7", at=1),
        ]),
    ]}
    doc2 = {"resourceSpans": [
        _resource_spans("underwriter", "anthropic", [
            _otlp_span(TB, "a0f067aa0ba902b7", "invoke_agent underwriter", {
                "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5", "app.feature": "policy_summary"}),
            _otlp_span(TB, "b0f067aa0ba902b7", "chat claude-sonnet-4-5", chat,
                       parent="a0f067aa0ba902b7", at=2),
        ]),
        _resource_spans("underwriter", "opentelemetry.instrumentation.anthropic", [
            _otlp_span(TB, "c0f067aa0ba902b7", "anthropic.chat",
                       {**chat, "gen_ai.usage.cache_creation.input_tokens": 1000},
                       parent="a0f067aa0ba902b7", at=2),
        ]),
        _resource_spans("claims-api", "opentelemetry.instrumentation.fastapi", [
            _otlp_span(TB, "d0f067aa0ba902b7", "GET /healthz", {"http.request.method": "GET"}),
        ]),
    ]}
    path.write_text(json.dumps(doc1, separators=(",", ":")) + "\n"
                    + json.dumps(doc2, separators=(",", ":")) + "\n")
    return path


def test_otlp_collector_file_loads_and_counts_every_span(tmp_path):
    path = _collector_file(tmp_path / "traces.json")
    result, wh = _ingest(tmp_path, path)
    # a truncated line (the collector killed mid-write) is one unreadable document
    broken = _collector_file(tmp_path / "traces-cut.jsonl")
    broken.write_text(broken.read_text() + '{"resourceSpans":[{"resource":\n')
    (tmp_path / "cut").mkdir()
    result_cut, wh_cut = _ingest(tmp_path / "cut", broken)
    assert result_cut.exit_code == 0, result_cut.output
    assert ("traces-cut.jsonl: 8 spans = 2 call records + 4 spans that are not GenAI calls"
            ) in " ".join(result_cut.output.split())
    assert "rows read = 2 call records + 1 unreadable document;" in " ".join(
        result_cut.output.split())
    assert _rows(wh_cut, "select rows_read, rows_quarantined from raw.load_audit") == [(3, 1)]
    assert result.exit_code == 0, result.output
    rows = _rows(wh, "select request_id, provider, model, input_tokens, output_tokens, "
                     "cache_read_input_tokens, cache_write_input_tokens, service_tier, feature, "
                     "team from raw.gateway_calls order by request_id")
    assert rows == [
        ("chatcmpl-1", "openai", "gpt-4.1-2025-04-14", 2000, 400, 1500, None, "default",
         "claims_scoring", "claims-eng"),
        ("msg_01dup", "anthropic", "claude-sonnet-4-5", 5000, 700, 3000, 1000, None,
         "policy_summary", "claims-eng"),
    ]
    _audit_balances(wh)
    # the 8 spans are all accounted for: 2 call records read, and what was not a call
    out = " ".join(result.output.split())
    assert ("traces.json: 8 spans = 2 call records (rows read) + 4 spans that are not GenAI "
            "calls (HTTP, database, application) + 1 GenAI span that is not a model call "
            "(agent, tool, or no model nor usage) + 1 span of a call already counted (a second "
            "instrumentation, merged); only call records are loaded or quarantined"
            ) in out, result.output
    (read,) = _rows(wh, "select rows_read from raw.load_audit")[0]
    assert read == 2


def _sdk_span(trace: str, span: str, name: str, attrs: dict, parent: str | None = None,
              start: str = "2026-11-04T09:00:00.123456Z", end: str = "2026-11-04T09:00:01.623456Z",
              status: str = "UNSET") -> dict:
    """A span as the OpenTelemetry Python SDK writes it (ConsoleSpanExporter,
    ``ReadableSpan.to_json()``): 0x ids, ISO times, attributes as an object."""
    return {"name": name,
            "context": {"trace_id": "0x" + trace, "span_id": "0x" + span, "trace_state": "[]"},
            "kind": "SpanKind.CLIENT", "parent_id": ("0x" + parent) if parent else None,
            "start_time": start, "end_time": end, "status": {"status_code": status},
            "attributes": attrs, "events": [], "links": [],
            "resource": {"attributes": {"service.name": "quote-engine",
                                        "app.team": "pricing-eng"}, "schema_url": ""}}


def test_flattened_attribute_span_exports_load(tmp_path):
    """Spans one per line with their attributes as a JSON object (the Python SDK's span JSON;
    and the same with OTLP's camelCase ids and nanosecond times) are OTel spans: detected
    without --format and mapped like OTLP/JSON."""
    tr = "7bf92f3577b34da6a3ce929d0e0e4739"
    sdk = [
        _sdk_span(tr, "aaaaaaaaaaaaaaa1", "POST /quote", {"http.request.method": "POST",
                                                         "app.feature": "quote_explainer",
                                                         "app.customer_segment": "broker"}),
        _sdk_span(tr, "aaaaaaaaaaaaaaa2", "chat claude-haiku-4-5", {
            "gen_ai.operation.name": "chat", "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.response.id": "msg_flat1",
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_creation.input_tokens": 1024,
            "gen_ai.input.messages": '[{"role": "user", "content": "quarterly margin plan"}]',
            "gen_ai.prompt.0.content": "quarterly margin plan",
            "gen_ai.response.finish_reasons": ["end_turn"]}, parent="aaaaaaaaaaaaaaa1"),
        _sdk_span(tr, "aaaaaaaaaaaaaaa3", "chat gpt-4.1-mini", {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4.1-mini", "error.type": "RateLimitError"},
            parent="aaaaaaaaaaaaaaa1", start="2026-11-04T09:00:02Z",
            end="2026-11-04T09:00:02.5Z", status="ERROR"),
    ]
    sdk_path = tmp_path / "sdk-spans.jsonl"
    sdk_path.write_text("\n".join(json.dumps(s) for s in sdk) + "\n")
    camel = {"traceId": "8bf92f3577b34da6a3ce929d0e0e4740", "spanId": "bbbbbbbbbbbbbbb1",
             "name": "chat gpt-4.1", "startTimeUnixNano": str((T0 + 3600) * 10**9),
             "endTimeUnixNano": str((T0 + 3602) * 10**9), "status": {"code": 0},
             "attributes": {"gen_ai.provider.name": "openai",
                            "gen_ai.response.model": "gpt-4.1-2025-04-14",
                            "gen_ai.response.id": "chatcmpl-flat2",
                            "gen_ai.usage.input_tokens": "900",
                            "gen_ai.usage.output_tokens": "60",
                            "gen_ai.usage.reasoning.output_tokens": "20",
                            "openai.response.service_tier": "FLEX", "app.feature": "quote_explainer"},
             "resource": {"attributes": {"service.name": "quote-engine"}}}
    camel_path = tmp_path / "flat-spans.json"
    camel_path.write_text(json.dumps([camel]))
    result, wh = _ingest(tmp_path, sdk_path, camel_path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select distinct source_format from raw.gateway_calls") == [("otel",)]
    rows = _rows(wh, "select request_id, call_ts, provider, model, input_tokens, output_tokens, "
                     "cache_write_input_tokens, reasoning_tokens, service_tier, status, "
                     "latency_ms, feature, customer_segment, team, trace_id "
                     "from raw.gateway_calls order by call_ts")
    assert rows == [
        ("chatcmpl-flat2", datetime(2026, 11, 4, 9, 0, 0), "openai", "gpt-4.1-2025-04-14",
         900, 60, None, 20, "flex", "ok", 2000.0, "quote_explainer", None, None,
         "8bf92f3577b34da6a3ce929d0e0e4740"),
        ("msg_flat1", datetime(2026, 11, 4, 9, 0, 0, 123456), "anthropic", "claude-haiku-4-5",
         1200, 80, 1024, None, None, "ok", 1500.0, "quote_explainer", "broker", "pricing-eng",
         tr),
        ("aaaaaaaaaaaaaaa3", datetime(2026, 11, 4, 9, 0, 2), "openai", "gpt-4.1-mini", 0, 0,
         None, None, None, "rate_limited", 500.0, "quote_explainer", "broker", "pricing-eng",
         tr),
    ]
    _audit_balances(wh)
    assert _rows(wh, "select count(*) from raw.quarantine") == [(0,)]
    # prompt content attributes are dropped from flattened spans as from OTLP ones
    stored = _rows(wh, "select cast(extra as varchar) from raw.gateway_calls")
    assert "margin plan" not in json.dumps(stored)
    assert "end_turn" in json.dumps(stored)  # other attributes are kept


def test_litellm_service_tier_outside_the_usage_object(tmp_path):
    """OpenAI writes ``service_tier`` on the response, not in ``usage``: a spend log keeps it
    in the ``response`` column (an object, or JSON text in a CSV export) or a top-level
    ``service_tier``; a flex or priority call must not load as a standard-price one."""
    base = {"call_type": "acompletion", "api_key": "hk_3e1", "spend": 0.0009,
            "prompt_tokens": 500, "completion_tokens": 40, "startTime": "2026-11-04T08:10:00Z",
            "endTime": "2026-11-04T08:10:02Z", "model": "gpt-5-mini",
            "custom_llm_provider": "openai", "status": "success",
            "metadata": {"usage_object": {"prompt_tokens": 500, "completion_tokens": 40}},
            "request_tags": ["feature:route_planner"]}
    recs = [
        {**base, "request_id": "tier-response", "response": {
            "id": "chatcmpl-9", "service_tier": "flex",
            "choices": [{"message": {"content": "text never stored"}}]}},
        {**base, "request_id": "tier-response-text", "response": json.dumps(
            {"id": "chatcmpl-10", "service_tier": "Priority", "choices": []})},
        {**base, "request_id": "tier-top", "service_tier": "SCALE"},
        {**base, "request_id": "tier-none"},
    ]
    path = tmp_path / "spend.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, service_tier from raw.gateway_calls "
                     "order by request_id") == [
        ("tier-none", None), ("tier-response", "flex"), ("tier-response-text", "priority"),
        ("tier-top", "scale")]
    assert "service_tier outside" not in result.output
    extras = " ".join(e or "" for (e,) in _rows(wh, "select extra from raw.gateway_calls"))
    assert "service_tier" not in extras and "text never stored" not in extras


def test_format_detected_when_the_first_record_is_longer_than_the_head(tmp_path):
    """A collector batch is one OTLP line of hundreds of KB, and a LiteLLM spend log that stores
    prompts has records of that size too: detection must read the whole first record, not
    give up at 64 KiB and call the file native (which then refuses every record)."""
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4.1-mini", "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10}
    spans = [_otlp_span(TA, f"{i:016x}", "chat", {**chat, "gen_ai.response.id": f"c-{i}"},
                        at=i) for i in range(600)]
    batch = {"resourceSpans": [_resource_spans("bulk-scorer", "openai_v2", spans)]}
    otlp = tmp_path / "collector.jsonl"
    otlp.write_text(json.dumps(batch) + "\n")
    assert otlp.stat().st_size > 4 * 65536
    pretty = tmp_path / "one-export.json"
    pretty.write_text(json.dumps({"resourceSpans": [_resource_spans(
        "bulk-scorer", "openai_v2", [_otlp_span(TB, f"{i:016x}", "chat", {
            **chat, "gen_ai.response.id": f"p-{i}"}, at=i) for i in range(600)])]}, indent=2))
    big = {"request_id": "ll-big", "call_type": "acompletion", "spend": 0.01,
           "prompt_tokens": 30000, "completion_tokens": 10, "model": "gpt-4.1-mini",
           "messages": [{"role": "user", "content": "word " * 40000}],
           "startTime": "2026-11-04T08:00:00Z", "endTime": "2026-11-04T08:00:09Z",
           "custom_llm_provider": "openai", "status": "success"}
    small = {**big, "request_id": "ll-small", "messages": []}
    lines = tmp_path / "spend.jsonl"
    lines.write_text(json.dumps(big) + "\n" + json.dumps(small) + "\n")
    array = tmp_path / "spend-array.json"
    array.write_text(json.dumps([{**big, "request_id": "ll-big-a"},
                                 {**small, "request_id": "ll-small-a"}], indent=2))
    result, wh = _ingest(tmp_path, otlp, pretty, lines, array)
    assert result.exit_code == 0, result.output
    assert dict(_rows(wh, "select source_format, count(*) from raw.gateway_calls group by 1")
                ) == {"otel": 1200, "litellm": 4}
    assert _rows(wh, "select count(*) from raw.quarantine") == [(0,)]
    _audit_balances(wh)


def test_litellm_csv_export_without_a_csv_name_loads(tmp_path):
    """`\\copy (select * from "LiteLLM_SpendLogs") to 'spend_logs' csv header` names the file as
    told: a CSV recognised as LiteLLM's spend logs is read as CSV whatever its name."""
    header = ("request_id,call_type,spend,prompt_tokens,completion_tokens,startTime,endTime,"
              "model,custom_llm_provider,metadata,request_tags,status")
    meta = json.dumps({"usage_object": {"prompt_tokens": 800, "completion_tokens": 20,
                                        "prompt_tokens_details": {"cached_tokens": 512}}})
    row = ["pg-1", "acompletion", "1.2e-05", "800", "20", "2026-11-04 08:00:00.123",
           "2026-11-04 08:00:00.923", "gemini-2.5-flash", "vertex_ai", meta,
           json.dumps(["feature:ledger_match"]), "success"]

    def csv_line(values):
        return ",".join('"' + v.replace('"', '""') + '"' for v in values)

    for name in ("spend_logs", "spend_logs.txt"):
        path = tmp_path / name
        path.write_text(header + "\n" + csv_line(row) + "\n")
        result, wh = _ingest(tmp_path, path)
        assert result.exit_code == 0, (name, result.output)
        assert _rows(wh, "select request_id, source_format, input_tokens, "
                         "cache_read_input_tokens, gateway_cost_usd, feature "
                         "from raw.gateway_calls") == [
            ("pg-1", "litellm", 800, 512, Decimal("0.000012000"), "ledger_match")]
        wh.unlink()


def test_litellm_csv_written_by_pandas_keeps_tags_and_usage(tmp_path):
    """``pd.read_sql('select * from "LiteLLM_SpendLogs"', con).to_csv(...)`` writes the JSON
    columns as Python literals (``['feature:x']``, ``{'usage_object': {...}, 'x': None}``):
    the tags and the cache split must not silently vanish."""
    header = ("request_id,spend,prompt_tokens,completion_tokens,startTime,endTime,model,"
              "custom_llm_provider,metadata,request_tags,status")
    meta = repr({"user_api_key_team_alias": "recon-team", "error_information": None,
                 "usage_object": {"prompt_tokens": 900, "completion_tokens": 30,
                                  "cache_read_input_tokens": 600, "service_tier": "priority"},
                 "cache_hit": False})
    tags = repr(["feature:ledger_match", "segment:public_sector"])
    values = ["pd-1", "0.0031", "900", "30", "2026-11-04 08:00:00.123456+00:00",
              "2026-11-04 08:00:01.123456+00:00", "claude-sonnet-4-5", "anthropic", meta, tags,
              "success"]
    # a literal that is not JSON-convertible (a string holding a quote) is kept as text
    odd = [*values]
    odd[0], odd[8], odd[9] = "pd-2", repr({"note": "team's budget"}), "[]"

    def line(vs):
        return ",".join('"' + v.replace('"', '""') + '"' for v in vs)

    path = tmp_path / "spend_logs.csv"
    path.write_text(header + "\n" + line(values) + "\n" + line(odd) + "\n")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select feature, customer_segment, team, cache_read_input_tokens, "
                     "service_tier, status from raw.gateway_calls order by request_id") == [
        ("ledger_match", "public_sector", "recon-team", 600, "priority", "ok"),
        (None, None, None, None, None, "ok")]
    extra = json.loads(_rows(wh, "select extra from raw.gateway_calls "
                                 "where request_id = 'pd-2'")[0][0])
    assert extra["metadata_unparsed"] == repr({"note": "team's budget"})
    assert "request_tags_unparsed" not in extra
    (first_extra,) = _rows(wh, "select extra from raw.gateway_calls where request_id = 'pd-1'")[0]
    assert "unparsed" not in (first_extra or "")


@pytest.mark.parametrize("written,server,stored", [
    ("azure.ai.inference", None, "azure_ai"),
    ("ibm.watsonx.ai", None, "watsonx"),
    ("gcp.gen_ai", "generativelanguage.googleapis.com", "gemini"),
    ("gcp.gen_ai", "us-central1-aiplatform.googleapis.com", "vertex_ai"),
    ("gcp.gen_ai", None, "gcp.gen_ai"),
    ("aws.bedrock", None, "bedrock"),
    ("Mistral_AI", None, "mistral_ai"),
])
def test_otel_well_known_provider_names(tmp_path, written, server, stored):
    """The GenAI conventions' well-known ``gen_ai.provider.name`` values map onto the names
    the price book uses; ``gcp.gen_ai`` (the Google Gen AI SDK, either endpoint) is told apart
    by ``server.address``, and stays as written when it cannot be."""
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": written,
             "gen_ai.request.model": "some-model", "gen_ai.usage.input_tokens": 10,
             "gen_ai.usage.output_tokens": 2}
    if server:
        attrs["server.address"] = server
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"resourceSpans": [_resource_spans(
        "svc", "sdk", [_otlp_span(TA, "00f067aa0ba902b7", "chat", attrs)])]}) + "\n")
    con = duckdb.connect()
    otel.read(con, path, "out")
    assert con.execute("select provider from out").fetchall() == [(stored,)]


def test_litellm_tags_without_a_known_prefix_are_kept(tmp_path):
    """LiteLLM tags are often plain (``checkout``, ``prod``) or the proxy's own
    (``User-Agent: ...``): the ones no native field takes stay in ``extra.request_tags``, so an
    organisation can still map them; the prefixed ones fill their fields."""
    rec = {"request_id": "tags-1", "spend": 0.001, "prompt_tokens": 100, "completion_tokens": 5,
           "startTime": "2026-11-04T08:00:00Z", "endTime": "2026-11-04T08:00:01Z",
           "model": "gpt-4.1-mini", "custom_llm_provider": "openai", "status": "success",
           "request_tags": ["checkout", "feature:basket_summary", "prod",
                            "User-Agent: OpenAI/Python 1.99"]}
    plain = {**rec, "request_id": "tags-2", "request_tags": ["feature:basket_summary"]}
    path = tmp_path / "spend.jsonl"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(plain) + "\n")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    rows = dict(_rows(wh, "select request_id, extra from raw.gateway_calls"))
    assert json.loads(rows["tags-1"])["request_tags"] == [
        "checkout", "prod", "User-Agent: OpenAI/Python 1.99"]
    assert "request_tags" not in json.loads(rows["tags-2"] or "{}")
    assert _rows(wh, "select distinct feature from raw.gateway_calls") == [("basket_summary",)]


def test_parquet_exports_of_litellm_and_otel_tables_load(tmp_path):
    """Detection already names a Parquet file with LiteLLM_SpendLogs' columns ``litellm`` and
    one of a ClickHouse ``otel_traces`` table ``otel``: their readers must read Parquet (typed
    columns: TIMESTAMP, DOUBLE, JSON text, MAP attributes), not fail on it as text."""
    con = duckdb.connect()
    spend = tmp_path / "spend_logs.parquet"
    con.execute(f"""
        copy (select * from (values
          ('pq-1', 0.0021::double, 1000::bigint, 50::bigint,
           timestamp '2026-11-04 08:00:00.250', timestamp '2026-11-04 08:00:01.000',
           'claude-haiku-4-5', 'anthropic',
           '{{"usage_object": {{"cache_read_input_tokens": 400, "service_tier": "batch"}}}}',
           '["feature:freight_quotes"]', 'success'),
          ('pq-2', 0::double, 0::bigint, 0::bigint,
           timestamp '2026-11-04 08:01:00', timestamp '2026-11-04 08:01:30',
           'gpt-4.1-mini', 'openai', '{{"error_information": {{"error_code": "408"}}}}',
           '[]', 'failure')
        ) as t(request_id, spend, prompt_tokens, completion_tokens, "startTime", "endTime",
               model, custom_llm_provider, metadata, request_tags, status))
        to '{spend}' (format parquet)""")
    traces = tmp_path / "otel_traces.parquet"
    con.execute(f"""
        copy (select * from (values
          (timestamp '2026-11-04 09:00:00.5', 'cbf92f3577b34da6a3ce929d0e0e4743',
           'eeeeeeeeeeeeeee1', '', 'chat gpt-4.1', 'Client', 'freight-api',
           map {{'service.name': 'freight-api', 'app.team': 'logistics-ai'}},
           map {{'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4.1',
                 'gen_ai.usage.input_tokens': '300', 'gen_ai.usage.output_tokens': '30',
                 'app.feature': 'freight_quotes'}},
           750000000::bigint, 'Unset', ''),
          (timestamp '2026-11-04 09:00:00', 'cbf92f3577b34da6a3ce929d0e0e4743',
           'eeeeeeeeeeeeeee0', '', 'GET /quote', 'Server', 'freight-api',
           map {{'service.name': 'freight-api'}}, map {{'http.request.method': 'GET'}},
           2000000000::bigint, 'Unset', '')
        ) as t("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind",
               "ServiceName", "ResourceAttributes", "SpanAttributes", "Duration",
               "StatusCode", "StatusMessage"))
        to '{traces}' (format parquet)""")
    con.close()
    result, wh = _ingest(tmp_path, spend, traces)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, source_format, call_ts, provider, input_tokens, "
                     "cache_read_input_tokens, service_tier, status, latency_ms, feature, team "
                     "from raw.gateway_calls order by call_ts") == [
        ("pq-1", "litellm", datetime(2026, 11, 4, 8, 0, 0, 250000), "anthropic", 1000, 400,
         "batch", "ok", 750.0, "freight_quotes", None),
        ("pq-2", "litellm", datetime(2026, 11, 4, 8, 1), "openai", 0, None, None, "timeout",
         30000.0, None, None),
        ("eeeeeeeeeeeeeee1", "otel", datetime(2026, 11, 4, 9, 0, 0, 500000), "openai", 300,
         None, None, "ok", 750.0, "freight_quotes", "logistics-ai"),
    ]
    _audit_balances(wh)


def _spend_row(rid: str, minute: int) -> dict:
    return {"request_id": rid, "call_type": "acompletion", "api_key": "hk_77", "spend": 0.0004,
            "total_tokens": 260, "prompt_tokens": 240, "completion_tokens": 20,
            "startTime": f"2026-11-04T08:{minute:02d}:00.000Z",
            "endTime": f"2026-11-04T08:{minute:02d}:01.000Z", "model": "gpt-4.1-nano",
            "custom_llm_provider": "openai", "metadata": {}, "request_tags": [],
            "status": "success"}


def test_litellm_spend_logs_api_pages_load(tmp_path):
    """The proxy's ``/spend/logs/ui`` answers pages ``{"data": [rows], "total", "page",
    "page_size", "total_pages"}``: saved as is (pretty, or one page per line) they load, each
    row numbered in document order."""
    page1 = {"data": [_spend_row("api-1", 1), _spend_row("api-2", 2)], "total": 3, "page": 1,
             "page_size": 2, "total_pages": 2}
    page2 = {"data": [_spend_row("api-3", 3)], "total": 3, "page": 2, "page_size": 2,
             "total_pages": 2}
    pretty = tmp_path / "spend_page1.json"
    pretty.write_text(json.dumps(page1, indent=2))
    lines = tmp_path / "spend_pages.jsonl"
    lines.write_text(json.dumps({**page1, "data": [_spend_row("api-4", 4)]}) + "\n"
                     + json.dumps(page2) + "\n")
    result, wh = _ingest(tmp_path, pretty, lines)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, source_format, source_line from raw.gateway_calls "
                     "order by request_id") == [
        ("api-1", "litellm", 1), ("api-2", "litellm", 2), ("api-3", "litellm", 2),
        ("api-4", "litellm", 1)]
    _audit_balances(wh)


def test_litellm_summarised_spend_logs_are_refused_with_what_to_do(tmp_path):
    """``/spend/logs?start_date=..&end_date=..`` answers spend per DAY by default
    (``summarize=true``): not calls; the command says so and how to get the rows."""
    summary = [{"startTime": "2026-11-04", "spend": 1.25, "users": {"u1": 1.25},
                "models": {"gpt-4.1-nano": 1.25}, "hk_77": 1.25},
               {"startTime": "2026-11-05", "spend": 0, "users": {}, "models": {}}]
    path = tmp_path / "spend_summary.json"
    path.write_text(json.dumps(summary))
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "spend per day" in out and "summarize=false" in out, result.output


def test_console_exporter_stream_of_pretty_spans_loads(tmp_path):
    """The Python SDK's ConsoleSpanExporter writes each span as an indented JSON object, one
    after another (no array, not one per line): the spans load, numbered in order."""
    tr = "dbf92f3577b34da6a3ce929d0e0e4744"
    spans = [
        _sdk_span(tr, "fffffffffffffff1", "POST /answer", {"app.feature": "policy_chat"}),
        _sdk_span(tr, "fffffffffffffff2", "chat gpt-4.1-mini", {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4.1-mini", "gen_ai.response.id": "chatcmpl-c1",
            "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 70},
            parent="fffffffffffffff1"),
    ]
    path = tmp_path / "console.json"
    path.write_text("".join(json.dumps(s, indent=4) + "\n" for s in spans))
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, source_format, source_line, input_tokens, feature "
                     "from raw.gateway_calls") == [
        ("chatcmpl-c1", "otel", 2, 700, "policy_chat")]
    assert "2 spans = 1 call record (rows read)" in " ".join(result.output.split())
