"""Spans written the way real instrumentation libraries write them, through `tokenbook ingest
gateway` with no --format: OpenInference (Arize: indexed message attributes, input.value,
EMBEDDING spans), OpenLLMetry / Traceloop (``llm.request.type``, association properties) and
Strands Agents on Bedrock (input tokens without the cache, and a total that says so).

Every export here is written by the test in the shape the library's own code and tests show
(Arize-ai/openinference semconv and its Strands processor, traceloop/openllmetry's
``LLMRequestTypeValues``), with names that are no one's real data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests import gateway_cli

DAY = "2026-11-04"
T0 = 1793779200  # 2026-11-04T08:00:00Z
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _ingest(tmp_path: Path, *files: Path):
    return gateway_cli.ingest(tmp_path, *files, day=DAY)


_rows = gateway_cli.rows


def _av(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def _span(span_id: str, name: str, attrs: dict, parent: str = "", at: float = 0) -> dict:
    return {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": name,
            "kind": 1, "startTimeUnixNano": str(int((T0 + at) * 10**9)),
            "endTimeUnixNano": str(int((T0 + at + 2) * 10**9)),
            "attributes": [{"key": k, "value": _av(v)} for k, v in attrs.items()],
            "status": {"code": 1}}


def _export(path: Path, scope: str, *spans: dict) -> Path:
    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": _av("freight-desk")}]},
        "scopeSpans": [{"scope": {"name": scope}, "spans": list(spans)}]}]}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


PROMPT = "Summarise waybill WB-5531 for Odile Marchetti, odile.m@example.org"
ANSWER = "Waybill WB-5531 ships 14 pallets to Rotterdam"


def _openinference_export(path: Path) -> Path:
    """What openinference-instrumentation-openai writes for one chat call and one embeddings
    call: the request and answer as ``input.value`` / ``output.value``, each message flattened
    into ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``, the template's
    variables, and the embedded text in ``embedding.embeddings.N.embedding.text``."""
    chat = _span("b7ad6b7169203331", "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.provider": "openai",
        "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": json.dumps({"temperature": 0}),
        "input.value": json.dumps({"messages": [{"role": "user", "content": PROMPT}]}),
        "input.mime_type": "application/json",
        "output.value": json.dumps({"choices": [{"message": {"content": ANSWER}}]}),
        "output.mime_type": "application/json",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": PROMPT,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER,
        "llm.output_messages.0.message.contents.0.message_content.type": "text",
        "llm.output_messages.0.message.contents.0.message_content.text": ANSWER,
        "llm.prompt_template.template": "Summarise waybill {waybill} for {name}",
        "llm.prompt_template.variables": json.dumps({"waybill": "WB-5531",
                                                     "name": "Odile Marchetti"}),
        "llm.prompt_template.version": "v3",
        "llm.token_count.prompt": 1200, "llm.token_count.completion": 80,
        "llm.token_count.total": 1280, "llm.token_count.prompt_details.cache_read": 1024,
        "session.id": "sess-19"}, at=1)
    embed = _span("c7ad6b7169203332", "CreateEmbeddings", {
        "openinference.span.kind": "EMBEDDING", "llm.system": "openai",
        "embedding.model_name": "text-embedding-3-small",
        "embedding.embeddings.0.embedding.text": PROMPT,
        "llm.token_count.prompt": 12, "llm.token_count.total": 12}, at=3)
    return _export(path, "openinference.instrumentation.openai", chat, embed)


def test_openinference_prompt_and_answer_text_never_land(tmp_path):
    """OpenInference spells prompt and answer text differently from the GenAI conventions;
    none of it may reach raw.gateway_calls (extra) or raw.quarantine, while the call's
    numbers and its harmless attributes (session, template version) are kept."""
    path = _openinference_export(tmp_path / "spans.jsonl")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    stored = " ".join(str(v) for row in _rows(
        wh, "select * from raw.gateway_calls union all by name "
            "select * from raw.quarantine") for v in row)
    for text in ("WB-5531", "Odile", "Rotterdam", "Summarise waybill"):
        assert text not in stored, text
    (extra,) = _rows(wh, "select extra from raw.gateway_calls "
                         "where request_id = 'b7ad6b7169203331'")[0]
    kept = json.loads(extra)["otel_attributes"]
    assert kept["session.id"] == "sess-19"
    assert kept["llm.prompt_template.version"] == "v3"
    assert kept["input.mime_type"] == "application/json"


def test_openinference_embedding_span_is_an_embeddings_call(tmp_path):
    """An OpenInference EMBEDDING span names its model in ``embedding.model_name`` and has no
    completion count: it is an embeddings call with 0 output tokens, not a record missing its
    model and output."""
    path = _openinference_export(tmp_path / "spans.jsonl")
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider, model, input_tokens, output_tokens, "
                     "cache_read_input_tokens from raw.gateway_calls order by request_id") == [
        ("b7ad6b7169203331", "openai", "gpt-4o-2024-08-06", 1200, 80, 1024),
        ("c7ad6b7169203332", "openai", "text-embedding-3-small", 12, 0, None),
    ]
    assert _rows(wh, "select count(*) from raw.quarantine") == [(0,)]


def test_openllmetry_embedding_request_type_and_association_properties(tmp_path):
    """OpenLLMetry marks an embeddings call ``llm.request.type = embedding`` (no completion
    count) and carries the attribution set with ``Traceloop.set_association_properties`` as
    ``traceloop.association.properties.<key>``, on the call span or an ancestor."""
    workflow = _span("a7ad6b7169203330", "triage.workflow", {
        "traceloop.span.kind": "workflow", "traceloop.workflow.name": "triage",
        "traceloop.association.properties.feature": "parcel_triage",
        "traceloop.association.properties.customer_segment": "mid_market"})
    embed = _span("07ad6b7169203336", "openai.embeddings", {
        "gen_ai.system": "openai", "llm.request.type": "embedding",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.response.model": "text-embedding-3-small",
        "gen_ai.usage.prompt_tokens": 64, "llm.usage.total_tokens": 64,
        "gen_ai.prompt.0.content": PROMPT}, parent="a7ad6b7169203330", at=1)
    chat = _span("17ad6b7169203337", "anthropic.chat", {
        "gen_ai.system": "Anthropic", "llm.request.type": "chat",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.id": "msg_01parcel",
        "gen_ai.usage.prompt_tokens": 2100, "gen_ai.usage.completion_tokens": 150,
        "llm.usage.total_tokens": 2250, "gen_ai.usage.cache_read_input_tokens": 2000,
        "traceloop.association.properties.team": "parcel-ops"},
        parent="a7ad6b7169203330", at=2)
    path = _export(tmp_path / "traceloop.jsonl", "opentelemetry.instrumentation.openai",
                   workflow, embed, chat)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider, model, input_tokens, output_tokens, "
                     "cache_read_input_tokens, feature, customer_segment, team "
                     "from raw.gateway_calls order by request_id") == [
        ("07ad6b7169203336", "openai", "text-embedding-3-small", 64, 0, None,
         "parcel_triage", "mid_market", None),
        ("msg_01parcel", "anthropic", "claude-3-5-haiku-20241022", 2100, 150, 2000,
         "parcel_triage", "mid_market", "parcel-ops"),
    ]


def test_strands_bedrock_input_without_cache_is_converted(tmp_path):
    """Strands Agents on Bedrock writes Bedrock's inputTokens, which EXCLUDE the cache, beside
    ``gen_ai.usage.cache_read_input_tokens`` / ``cache_write_input_tokens`` and a total that
    adds them all: input is converted to our convention (cache included), not quarantined as
    'cache tokens above input tokens'. A span whose total is input + output is left alone.
    Strands writes ``gen_ai.system = strands-agents`` whatever serves the call: the provider is
    the one LiteLLM's price map gives the model id (a Bedrock inference profile -> bedrock)."""
    strands = _span("d7ad6b7169203333", "chat", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents",
        "gen_ai.request.model": "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "gen_ai.usage.input_tokens": 4299, "gen_ai.usage.output_tokens": 631,
        "gen_ai.usage.prompt_tokens": 4299, "gen_ai.usage.completion_tokens": 631,
        "gen_ai.usage.cache_read_input_tokens": 35574,
        "gen_ai.usage.cache_write_input_tokens": 17787,
        "gen_ai.usage.total_tokens": 58291}, at=1)
    # Strands 1.34+ on a client whose input already includes the cache: total = in + out
    included = _span("e7ad6b7169203334", "chat", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents",
        "gen_ai.request.model": "gpt-4.1-mini",
        "gen_ai.usage.input_tokens": 800, "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 300,
        "gen_ai.usage.cache_creation.input_tokens": 100,
        "gen_ai.usage.cache_read_input_tokens": 300,
        "gen_ai.usage.cache_write_input_tokens": 100,
        "gen_ai.usage.total_tokens": 1000}, at=2)
    path = _export(tmp_path / "strands.jsonl", "strands.telemetry.tracer", strands, included)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider, input_tokens, output_tokens, "
                     "cache_read_input_tokens, cache_write_input_tokens "
                     "from raw.gateway_calls order by request_id") == [
        ("d7ad6b7169203333", "bedrock", 4299 + 35574 + 17787, 631, 35574, 17787),
        ("e7ad6b7169203334", "openai", 800, 200, 300, 100),
    ]
    assert _rows(wh, "select count(*) from raw.quarantine") == [(0,)]


def test_provider_from_the_model_when_the_span_names_none_and_older_azure_spelling(tmp_path):
    """A model-call span without any provider attribute (OpenInference spans before
    ``llm.provider`` existed carry only ``llm.model_name``) takes the provider LiteLLM's price
    map gives the model; an unknown model without a provider stays quarantined. The
    conventions' earlier ``az.ai.inference`` is Azure AI Foundry (``azure_ai``), as
    ``azure.ai.inference`` is."""
    bare = _span("a1ad6b7169203331", "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.model_name": "claude-haiku-4-5-20251001",
        "llm.token_count.prompt": 300, "llm.token_count.completion": 20}, at=1)
    unknown = _span("a2ad6b7169203332", "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.model_name": "parcel-sorter-ft-7",
        "llm.token_count.prompt": 300, "llm.token_count.completion": 20}, at=2)
    foundry = _span("a3ad6b7169203333", "chat Mistral-Large-2411", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "az.ai.inference",
        "gen_ai.request.model": "Mistral-Large-2411", "gen_ai.response.id": "cmpl-az1",
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}, at=3)
    path = _export(tmp_path / "spans.jsonl", "mixed", bare, unknown, foundry)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider from raw.gateway_calls order by 1") == [
        ("a1ad6b7169203331", "anthropic"), ("cmpl-az1", "azure_ai")]
    assert _rows(wh, "select line_number, reason from raw.quarantine") == [
        (2, "missing required field: provider")]


def _ai_sdk_call(n: int, provider: str, model: str, parent_attrs: dict | None = None) -> list:
    """One generateText call as the Vercel AI SDK traces it: the ``ai.generateText`` span
    (``ai.*`` attributes only: the prompt, the summed usage) and its ``ai.generateText.doGenerate``
    child, the model call, with the standard gen_ai attributes (its provider id as
    gen_ai.system) beside the prompt and answer text."""
    outer, inner = f"{n:x}".rjust(16, "9"), f"{n:x}".rjust(16, "8")
    return [
        _span(outer, "ai.generateText", {
            "operation.name": "ai.generateText", "ai.operationId": "ai.generateText",
            "ai.model.provider": provider, "ai.model.id": model,
            "ai.prompt": json.dumps({"prompt": PROMPT}), "ai.response.text": ANSWER,
            "ai.usage.promptTokens": 500, "ai.usage.completionTokens": 60,
            "ai.telemetry.metadata.feature": "dispatch_notes", **(parent_attrs or {})}, at=n),
        _span(inner, "ai.generateText.doGenerate", {
            "operation.name": "ai.generateText.doGenerate",
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": provider, "ai.model.id": model,
            "ai.prompt.format": "messages",
            "ai.prompt.messages": json.dumps([{"role": "user", "content": PROMPT}]),
            "ai.response.text": ANSWER, "ai.response.toolCalls": "[]",
            "ai.response.id": f"resp-{n}", "ai.response.finishReason": "stop",
            "ai.usage.promptTokens": 500, "ai.usage.completionTokens": 60,
            "gen_ai.system": provider, "gen_ai.request.model": model,
            "gen_ai.response.model": model, "gen_ai.response.id": f"resp-{n}",
            "gen_ai.response.finish_reasons": "stop",
            "gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 60},
            parent=outer, at=n + 0.1),
    ]


def test_vercel_ai_sdk_provider_ids_and_prompt_text(tmp_path):
    """The Vercel AI SDK names providers by its own ids (``openai.chat``, ``anthropic.messages``,
    ``google.vertex.chat``, ``google.generative-ai``, ``amazon-bedrock``, ``azure.chat``): they
    map onto the price book's providers instead of loading as providers nothing can price. Its
    prompt and answer attributes (``ai.prompt``, ``ai.prompt.messages``, ``ai.response.text``)
    are never stored, and the outer ``ai.generateText`` span is not a second call. The
    telemetry metadata (``ai.telemetry.metadata.feature``) attributes the call."""
    calls = [("openai.chat", "gpt-4.1-mini", "openai"),
             ("openai.responses", "gpt-5-mini", "openai"),
             ("anthropic.messages", "claude-sonnet-4-5", "anthropic"),
             ("google.vertex.chat", "gemini-2.5-flash", "vertex_ai"),
             ("google.generative-ai", "gemini-2.5-flash", "gemini"),
             ("amazon-bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock"),
             ("azure.chat", "dispatch-gpt4o", "azure_openai"),
             ("xAI.chat", "grok-4", "xai"),
             ("mistral.chat", "mistral-large-latest", "mistral")]
    spans = [s for i, (p, m, _) in enumerate(calls) for s in _ai_sdk_call(i + 1, p, m)]
    path = _export(tmp_path / "ai-sdk.jsonl", "ai", *spans)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider, model, input_tokens, output_tokens, feature "
                     "from raw.gateway_calls order by request_id") == [
        (f"resp-{i + 1}", stored, model, 500, 60, "dispatch_notes")
        for i, (_, model, stored) in enumerate(calls)]
    stored_text = " ".join(str(v) for row in _rows(wh, "select * from raw.gateway_calls")
                           for v in row)
    for text in ("WB-5531", "Odile", "Rotterdam"):
        assert text not in stored_text, text
    assert f"{2 * len(calls)} spans = {len(calls)} call records" in " ".join(
        result.output.split())


def test_anthropic_input_count_without_the_cache_is_converted(tmp_path):
    """OpenLLMetry's Anthropic instrumentation before traceloop/openllmetry#2175 wrote
    Anthropic's ``input_tokens`` (the uncached part only) as the prompt count, beside the cache
    counts and no total: a call reading a 3,000-token cached prefix with 4 fresh tokens was
    quarantined as 'cache tokens above input tokens'. Cache counts above the input prove it
    excludes them: they are added."""
    old = _span("c1ad6b7169203331", "anthropic.chat", {
        "gen_ai.system": "Anthropic", "llm.request.type": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_01old",
        "gen_ai.usage.prompt_tokens": 4, "gen_ai.usage.completion_tokens": 90,
        "gen_ai.usage.cache_read_input_tokens": 3000,
        "gen_ai.usage.cache_creation_input_tokens": 0}, at=1)
    path = _export(tmp_path / "old.jsonl", "opentelemetry.instrumentation.anthropic", old)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, input_tokens, cache_read_input_tokens "
                     "from raw.gateway_calls") == [("msg_01old", 3004, 3000)]


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def test_grafana_tempo_trace_api_answer_loads(tmp_path):
    """A trace fetched from Grafana Tempo (``GET /api/traces/<id>``) is the OTLP export under
    ``batches`` with protobuf's JSON for the ids (base64) and enums (names): its model calls
    load with hex ids, the root span's attribution reaches them, and a failed call is one."""
    root, call, failed = "00f067aa0ba902b7", "10f067aa0ba902b7", "20f067aa0ba902b7"

    def tempo_span(span_id, name, attrs, parent=None, status=None, at=0):
        sp = _span(span_id, name, attrs, at=at)
        sp.update(traceId=_b64(TRACE), spanId=_b64(span_id), kind="SPAN_KIND_CLIENT",
                  status=status or {})
        sp.pop("parentSpanId")
        if parent:
            sp["parentSpanId"] = _b64(parent)
        return sp

    doc = {"batches": [{
        "resource": {"attributes": [{"key": "service.name", "value": _av("quote-api")}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": [
            tempo_span(root, "POST /quotes", {"app.feature": "freight_quote"}),
            tempo_span(call, "chat gpt-4.1-mini", {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4.1-mini", "gen_ai.response.id": "chatcmpl-tq1",
                "gen_ai.usage.input_tokens": 800, "gen_ai.usage.output_tokens": 50},
                parent=root, at=1),
            tempo_span(failed, "chat gpt-4.1-mini", {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4.1-mini", "error.type": "RateLimitError"},
                parent=root, status={"code": "STATUS_CODE_ERROR", "message": "429"}, at=2),
        ]}]}]}
    path = tmp_path / "tempo-trace.json"
    path.write_text(json.dumps(doc))
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, trace_id, status, input_tokens, feature "
                     "from raw.gateway_calls order by call_ts") == [
        ("chatcmpl-tq1", TRACE, "ok", 800, "freight_quote"),
        (failed, TRACE, "rate_limited", 0, "freight_quote"),
    ]


def test_openinference_metadata_attributes_the_calls(tmp_path):
    """OpenInference applications tag their work with ``using_metadata({...})``: every span in
    that context carries one ``metadata`` attribute holding a JSON object. Its feature and
    segment attribute the model calls, the nearest span's first, like any attribute; a
    ``metadata`` that is not a JSON object is left alone."""
    chain = _span("d1ad6b7169203331", "RunnableSequence", {
        "openinference.span.kind": "CHAIN",
        "metadata": json.dumps({"feature": "waybill_summary", "customer_segment": "enterprise",
                                "run": 7})})
    inherits = _span("d2ad6b7169203332", "ChatOpenAI", {
        "openinference.span.kind": "LLM", "llm.provider": "openai",
        "llm.model_name": "gpt-4.1-mini", "llm.token_count.prompt": 300,
        "llm.token_count.completion": 20}, parent="d1ad6b7169203331", at=1)
    overrides = _span("d3ad6b7169203333", "ChatOpenAI", {
        "openinference.span.kind": "LLM", "llm.provider": "openai",
        "llm.model_name": "gpt-4.1-mini", "llm.token_count.prompt": 300,
        "llm.token_count.completion": 20,
        "metadata": json.dumps({"feature": "waybill_retry"})},
        parent="d1ad6b7169203331", at=2)
    odd = _span("d4ad6b7169203334", "ChatOpenAI", {
        "openinference.span.kind": "LLM", "llm.provider": "openai",
        "llm.model_name": "gpt-4.1-mini", "llm.token_count.prompt": 300,
        "llm.token_count.completion": 20, "metadata": "feature=not-json"}, at=3)
    path = _export(tmp_path / "langchain.jsonl", "openinference.instrumentation.langchain",
                   chain, inherits, overrides, odd)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, feature, customer_segment from raw.gateway_calls "
                     "order by request_id") == [
        ("d2ad6b7169203332", "waybill_summary", "enterprise"),
        ("d3ad6b7169203333", "waybill_retry", "enterprise"),
        ("d4ad6b7169203334", None, None),
    ]
