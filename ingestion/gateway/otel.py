"""OpenTelemetry GenAI spans reader: OTLP/JSON trace exports mapped onto native gateway-log
records (reader interface: see ``readers.py``).

Input: OTLP/JSON ``ExportTraceServiceRequest`` documents, one per line (the collector's file
exporter) or one pretty-printed document per file: ``resourceSpans[] -> scopeSpans[] ->
spans[]`` (Grafana Tempo's trace API: ``batches[]``, ids in base64, decoded to hex); attributes are ``{key, value: {stringValue|intValue|doubleValue|boolValue|
arrayValue}}``, int64 values are strings, ids are hex, ``status.code`` an integer (2 = error).

Which spans are records: spans with ``gen_ai.*`` attributes naming a model or usage, except
agent/tool spans (``gen_ai.operation.name`` ``invoke_agent``, ``create_agent``,
``execute_tool``). Other spans (HTTP, database, application spans) are not records and are
not quarantined; they only lend attributes to their descendants. Nothing disappears from the
counts: the reader returns a :class:`~ingestion.gateway.readers.SkippedRecords` and the load
report notes, per file, ``N spans = call records (rows read) + spans that are not GenAI calls
+ GenAI spans that are not model calls + spans of a call already counted (merged siblings)``.

Mapping (both semantic-convention generations):

Every field below also accepts the earlier spellings listed in :data:`CALL_KEYS` (OpenLLMetry's
and OpenInference's ``llm.*``, ``openai.*``); the first present wins.

- ``provider``: ``gen_ai.provider.name``, else the older ``gen_ai.system``; lower-cased, with the
  convention's well-known values renamed to ours (``aws.bedrock`` -> ``bedrock``,
  ``azure.ai.openai`` -> ``azure_openai``, ``gcp.vertex_ai`` -> ``vertex_ai``,
  ``gcp.gemini`` -> ``gemini``, ``azure.ai.inference`` -> ``azure_ai``, ``ibm.watsonx.ai`` ->
  ``watsonx``; ``gcp.gen_ai``, the Google Gen AI SDK on either endpoint, by ``server.address``:
  ``vertex_ai`` or ``gemini``); anything else is kept as written (lower case).
- ``model``: ``gen_ai.response.model``, else ``gen_ai.request.model``.
- ``input_tokens``: ``gen_ai.usage.input_tokens`` (older: ``prompt_tokens``). It already
  INCLUDES cached tokens (STACK_NOTES.md), as our convention wants: no conversion.
- ``cache_read_input_tokens``: ``gen_ai.usage.cache_read.input_tokens`` or Traceloop's
  ``gen_ai.usage.cache_read_input_tokens``; ``cache_write_input_tokens``:
  ``gen_ai.usage.cache_write.input_tokens``, ``...cache_creation.input_tokens`` or
  ``...cache_creation_input_tokens``.
- ``output_tokens``: ``gen_ai.usage.output_tokens`` (older: ``completion_tokens``);
  ``reasoning_tokens``: ``gen_ai.usage.reasoning.output_tokens`` / ``...reasoning_tokens``.
  A failed call (status error) or an embeddings call without output usage counts 0.
- ``request_id``: ``gen_ai.response.id``, else the span id (a failed call has no response id).
  Spans of one trace with the same response id are ONE call (two instrumentations on one
  client): they become one record whose fields are the first non-null value in document order.
- ``trace_id``: the trace id; ``timestamp``: ``startTimeUnixNano`` as RFC 3339 UTC;
  ``latency_ms``: end - start.
- ``status``: ``ok``, or for status code 2: ``rate_limited`` (``error.type``/message naming a
  rate limit or 429), ``timeout``, else ``error``.
- Attribution (``feature``, ``customer_segment``, ``team``, ``customer_id``, ``environment``,
  ``request_class``, ``project_id``, ``prompt_template_id``): the nearest definition walking up
  the parent chain within the trace (the span itself first), then the span's resource
  attributes. Keys: ``app.<field>``, ``<field>``, ``tokenbook.<field>``, plus
  ``app.segment``/``segment``/``customer.segment``, ``customer.id``/``enduser.id``/``user.id``,
  ``deployment.environment.name``/``deployment.environment`` (see ``ATTRIBUTION_KEYS``).
- ``extra``: the span name, ids and scope, and its other attributes. Prompt and completion
  content attributes (``gen_ai.prompt.*``, ``gen_ai.completion.*``, ``gen_ai.input.messages``,
  ``gen_ai.output.messages``, ``gen_ai.system_instructions``, tool arguments/results,
  ``traceloop.entity.input/output``) are dropped, never stored. Span events are ignored.

``source_line`` numbers spans (and unreadable documents) in document order.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.gateway.litellm import bare_models_table, load_records
from ingestion.gateway.readers import READER_COLUMNS, SkippedRecords

# native field -> attribute keys, most specific first (searched up the parent chain).
ATTRIBUTION_KEYS: dict[str, tuple[str, ...]] = {
    "feature": ("app.feature", "feature", "tokenbook.feature"),
    "customer_segment": (
        "app.customer_segment",
        "customer_segment",
        "tokenbook.customer_segment",
        "app.segment",
        "segment",
        "customer.segment",
    ),
    "team": ("app.team", "team", "tokenbook.team"),
    "customer_id": (
        "app.customer_id",
        "customer_id",
        "tokenbook.customer_id",
        "customer.id",
        "enduser.id",
        "user.id",
    ),
    "environment": (
        "app.environment",
        "environment",
        "tokenbook.environment",
        "deployment.environment.name",
        "deployment.environment",
    ),
    "request_class": ("app.request_class", "request_class", "tokenbook.request_class"),
    "project_id": ("app.project_id", "project_id", "tokenbook.project_id"),
    "prompt_template_id": (
        "app.prompt_template_id",
        "prompt_template_id",
        "tokenbook.prompt_template_id",
    ),
}

# OpenLLMetry's association properties (``Traceloop.set_association_properties({...})``) are
# written as ``traceloop.association.properties.<key>`` on the spans below the call that set them;
# the Vercel AI SDK's telemetry metadata (``experimental_telemetry: {metadata: {...}}``) as
# ``ai.telemetry.metadata.<key>`` on each of its spans; OpenInference's ``using_metadata({...})``
# as one ``metadata`` attribute holding a JSON object (read as ``metadata.<key>``, see
# _with_metadata_keys), LiteLLM's OpenTelemetry callback as ``metadata.<key>`` attributes.
METADATA_PREFIXES = ("traceloop.association.properties", "ai.telemetry.metadata", "metadata")
ATTRIBUTION_KEYS = {
    field: (*keys, *(f"{prefix}.{k}" for prefix in METADATA_PREFIXES for k in keys
                     if "." not in k))
    for field, keys in ATTRIBUTION_KEYS.items()
}

# native field -> span attribute keys (the call span's own attributes), first present wins.
# Current GenAI semantic conventions first, then the earlier spellings: the experimental
# gen_ai.* names (gen_ai.system, prompt/completion tokens, Traceloop's cache_creation), the
# llm.* attributes of OpenLLMetry (llm.usage.*, llm.vendor, llm.request/response.model) and of
# OpenInference (llm.token_count.*, llm.model_name, llm.provider, llm.system), and openai.*
# (openai.request/response.service_tier). Token meanings are the same in every spelling:
# prompt/input counts INCLUDE cached tokens, completion/output include reasoning.
CALL_KEYS: dict[str, tuple[str, ...]] = {
    "response_id": ("gen_ai.response.id", "llm.response.id"),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system",
                 "llm.vendor"),
    "model": ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model",
              "llm.response.model_name", "llm.model_name", "llm.request.model",
              "llm.request.model_name", "embedding.model_name"),
    # OpenLLMetry's llm.request.type (chat, completion, embedding, rerank) and OpenInference's
    # span kind (LLM, EMBEDDING, AGENT, TOOL, ...) are normalised by OPERATION_NAMES
    "operation": ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                     "llm.token_count.prompt", "llm.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.token_count.completion", "llm.usage.completion_tokens"),
    "cache_read_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
        "llm.usage.cache_read_input_tokens",
    ),
    "cache_write_input_tokens": (
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.cache_write_input_tokens",
        "llm.token_count.prompt_details.cache_write",
        "llm.usage.cache_creation_input_tokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "llm.usage.reasoning_tokens",
    ),
    "service_tier": (
        "openai.response.service_tier",
        "gen_ai.openai.response.service_tier",
        "openai.request.service_tier",
        "gen_ai.openai.request.service_tier",
    ),
    # only read to tell whether input_tokens includes the cache tokens (see read())
    "total_tokens": ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total"),
    "error_type": ("error.type",),
}
# Keys that name a call's operation but do not make a span a GenAI span by themselves (every
# OpenInference span has a kind: CHAIN, RETRIEVER, ...).
NOT_GENAI_ON_THEIR_OWN = ("error.type", "openinference.span.kind")
# Operation spellings (lower case) -> the conventions' gen_ai.operation.name.
OPERATION_NAMES = {
    "embedding": "embeddings",  # OpenLLMetry's llm.request.type, OpenInference's EMBEDDING
    "agent": "invoke_agent",  # OpenInference AGENT spans
    "tool": "execute_tool",  # OpenInference TOOL spans
}
AGENT_OPERATIONS = ("invoke_agent", "create_agent", "execute_tool")
PROVIDER_NAMES = {
    "aws.bedrock": "bedrock",
    "azure.ai.openai": "azure_openai",
    "az.ai.openai": "azure_openai",
    "az.ai.inference": "azure_ai",  # the conventions' earlier spelling of azure.ai.inference
    "gcp.vertex_ai": "vertex_ai",
    "gcp.gemini": "gemini",
    "azure.ai.inference": "azure_ai",
    "ibm.watsonx.ai": "watsonx",
    # OpenInference's llm.provider / llm.system values
    "azure": "azure_openai",
    "aws": "bedrock",
    "vertexai": "vertex_ai",
}
# The Vercel AI SDK writes its provider id as gen_ai.system: <provider>.<api> ("openai.chat",
# "openai.responses", "anthropic.messages", "mistral.chat", "xAI.chat", "azure.chat",
# "google.generative-ai", "google.vertex.chat", "amazon-bedrock"). LIKE patterns (lower case)
# checked after the conventions' names, then the heads kept as the provider.
AI_SDK_PROVIDERS = {
    "google.generative-ai%": "gemini",
    "google.vertex.%": "vertex_ai",
    "amazon-bedrock%": "bedrock",
    "azure.%": "azure_openai",
}
AI_SDK_HEADS = ("openai", "anthropic", "mistral", "cohere", "groq", "xai", "deepseek",
                "perplexity", "togetherai", "fireworks", "cerebras")
# gen_ai.system values that name an agent framework, not who serves the call (Strands Agents
# writes "strands-agents" whatever model provider it uses): like a missing provider, the
# provider is then the one LiteLLM's price map gives the model name, if any
# (``litellm.BARE_MODELS``: ``us.anthropic.claude-sonnet-4-20250514-v1:0`` -> bedrock).
FRAMEWORK_SYSTEMS = ("strands-agents",)
# Attributes that carry prompt or completion text: dropped, never stored. The GenAI
# conventions' and OpenLLMetry's (gen_ai.prompt.N.content, traceloop.entity.input), and
# the Vercel AI SDK's (ai.prompt.messages, ai.response.text, ai.toolCall.args, ...), and
# OpenInference's, which flattens messages into indexed keys (llm.input_messages.0.message.content,
# llm.output_messages.0.message.contents.0.message_content.text) and writes the whole request and
# answer as input.value / output.value, the template's variables, the embedded texts
# (embedding.embeddings.N.embedding.text), retrieved documents and reranker queries.
PROMPT_TEXT_KEYS = (
    r"^(gen_ai\.(prompt|completion|input\.messages|output\.messages|system_instructions"
    r"|tool\.call\.arguments|tool\.call\.result|tool\.definitions)"
    r"|llm\.(prompts|completions|choices|input_messages|output_messages"
    r"|prompt_template\.(template|variables))"
    r"|(input|output)\.value|embedding\.embeddings|retrieval\.documents"
    r"|ai\.(prompt|response\.(text|toolCalls|reasoning|object)|result\.(text|toolCalls|object)"
    r"|toolCall\.(args|result)|values?|embeddings?)"
    r"|reranker\.(query|input_documents|output_documents)|message\.contents?"
    r"|traceloop\.entity\.(input|output))(\.|$)"
)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(keys: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(_q(k) for k in keys) + ")"


# One parse per attribute for the scalar kinds; arrays and kvlists only when present.
_KV_PATHS = (
    "['$.key', '$.value.stringValue', '$.value.intValue', '$.value.doubleValue', "
    "'$.value.boolValue', '$.value.bytesValue']"
)
_VALUE = (
    "coalesce(kvf[2], kvf[3], kvf[4], kvf[5], kvf[6], "
    "cast(to_json(list_transform(json_extract(kv, '$.value.arrayValue.values[*]'), "
    "lambda x: coalesce(x->>'stringValue', x->>'intValue', x->>'doubleValue', "
    "x->>'boolValue'))) as varchar), cast(kv->'$.value.kvlistValue' as varchar))"
)


def _attrs(json_expr: str) -> str:
    """LIST<STRUCT(k, v)> of an OTLP attribute array."""
    return (
        f"coalesce(list_transform(list_transform(json_extract({json_expr}, '$.attributes[*]'), "
        f"lambda kv: {{'kv': kv, 'kvf': json_extract_string(kv, {_KV_PATHS})}}), "
        f"lambda e: {{'k': e.kvf[1], 'v': {_VALUE.replace('kvf[', 'e.kvf[').replace('kv,', 'e.kv,').replace('kv->', 'e.kv->')}}}), [])"
    )


def _hex(expr: str) -> str:
    """SQL: a trace or span id as lower-case hex. OTLP/JSON writes hex; protobuf's own JSON
    mapping (Grafana Tempo's trace API) writes the bytes as base64: 24 characters ending ``==``
    for a 16-byte trace id, 12 ending ``=`` for an 8-byte span id, decoded to the same hex."""
    b64 = f"regexp_matches({expr}, '^([A-Za-z0-9+/]{{22}}==|[A-Za-z0-9+/]{{11}}=)$')"
    return f"(case when {b64} then lower(hex(from_base64({expr}))) else lower({expr}) end)"


def _with_metadata_keys(attrs: str, wanted: list[str]) -> str:
    """SQL: the attribute list ``attrs`` plus ``metadata.<key>`` entries for the keys of a
    ``metadata`` attribute holding a JSON object (OpenInference's ``using_metadata({...})``
    writes the application's metadata so) that are among ``wanted``."""
    pick = (f"list_filter(json_keys(a.v), lambda mk: ('metadata.' || mk) in {_in(wanted)})")
    pairs = ("lambda mk: {'k': 'metadata.' || mk, "
             "'v': json_extract_string(a.v, '$.\"' || replace(mk, '\"', '') || '\"')}")
    meta = (f"list_filter({attrs}, lambda a: a.k = 'metadata' and starts_with(ltrim(a.v), '{{') "
            "and json_valid(a.v))")
    return (f"list_concat({attrs}, flatten(list_transform({meta}, "
            f"lambda a: list_transform({pick}, {pairs}))))")


def _attr(keys: tuple[str, ...]) -> str:
    """First present attribute among ``keys`` in the span's ``attrs`` list."""
    picks = [f"list_filter(attrs, lambda a: a.k = {_q(k)})[1].v" for k in keys]
    return f"coalesce({', '.join(picks)})" if len(picks) > 1 else picks[0]


# A span exported on its own, one per line or as array elements ("flattened" exports): the
# OpenTelemetry Python SDK's span JSON (``context.trace_id`` "0x..", ISO ``start_time``,
# ``parent_id``, ``status.status_code`` "ERROR"), the JS SDK's console span (``id``,
# ``parentId``, microsecond ``timestamp``/``duration``), a single OTLP span with camelCase ids,
# or a ClickHouse ``otel_traces`` row (``TraceId``, ``SpanAttributes``, ``Timestamp``,
# ``Duration`` ns; also as Parquet, its MAP columns read as objects). Attributes may be an OTLP
# list or a flat object (values taken as text).
def _j(*paths: str) -> str:
    return "coalesce(" + ", ".join(f"j->>{_q(p)}" for p in paths) + ")"


def _hex_id(*paths: str) -> str:
    return f"lower(regexp_replace({_j(*paths)}, '^0x', ''))"


_FLAT_SPAN_ID = _hex_id("$.spanId", "$.span_id", "$.context.span_id", "$.SpanId",
                        "$.spanContext.spanId", "$.id")
_FLAT_ATTRS = "coalesce(j->'$.attributes', j->'$.SpanAttributes')"
_FLAT_RESOURCE = "coalesce(j->'$.resource.attributes', j->'$.ResourceAttributes')"


def _kv_list(obj: str) -> str:
    """OTLP attribute list (JSON) of ``obj``: as is when a list, built from a flat object."""
    built = (
        f"to_json(list_transform(json_keys({obj}), lambda k: {{'key': k, 'value': "
        f"{{'stringValue': json_extract_string({obj}, '$.\"' || replace(k, '\"', '') || '\"')}}}}))"
    )
    return (
        f"(case json_type({obj}) when 'ARRAY' then {obj} when 'OBJECT' then {built} "
        "else '[]'::JSON end)"
    )


def _flat_to_otlp() -> str:
    """SQL: the record ``j`` (one flattened span) as a one-span OTLP/JSON export."""
    iso_ns = "cast(epoch_ns(try_cast({} as timestamptz)) as varchar)"
    start = (
        f"coalesce({_j('$.startTimeUnixNano')}, "
        f"{iso_ns.format(_j('$.start_time', '$.startTime', '$.Timestamp'))}, "
        f"cast(try_cast(j->>'$.timestamp' as hugeint) * 1000 as varchar))"
    )
    end = (
        f"coalesce({_j('$.endTimeUnixNano')}, {iso_ns.format(_j('$.end_time', '$.endTime'))}, "
        f"cast(try_cast({start} as hugeint) + try_cast(j->>'$.Duration' as hugeint) "
        "as varchar), "
        f"cast(try_cast({start} as hugeint) + try_cast(j->>'$.duration' as hugeint) * 1000 "
        "as varchar))"
    )
    code = _j("$.status.code", "$.status.status_code", "$.StatusCode")
    return f"""json_object('resourceSpans', json_array(json_object(
      'resource', json_object('attributes', {_kv_list(_FLAT_RESOURCE)}),
      'scopeSpans', json_array(json_object(
        'scope', json_object('name', {_j('$.instrumentation_scope.name', '$.scope.name',
                                         '$.ScopeName', '$.instrumentationScope.name',
                                         '$.instrumentationLibrary.name')}),
        'spans', json_array(json_object(
          'traceId', {_hex_id('$.traceId', '$.trace_id', '$.context.trace_id', '$.TraceId',
                              '$.spanContext.traceId')},
          'spanId', {_FLAT_SPAN_ID},
          'parentSpanId', {_hex_id('$.parentSpanId', '$.parent_span_id', '$.parent_id',
                                   '$.parentId', '$.ParentSpanId')},
          'name', {_j('$.name', '$.SpanName')},
          'startTimeUnixNano', {start}, 'endTimeUnixNano', {end},
          'status', json_object(
            'code', case when upper({code}) in ('2', 'ERROR', 'STATUS_CODE_ERROR',
                                                'STATUSCODE.ERROR') then 2 else 0 end,
            'message', {_j('$.status.message', '$.status.description', '$.StatusMessage')}),
          'attributes', {_kv_list(_FLAT_ATTRS)})))))))"""


# Input tokens as our convention counts them (cache reads and writes included). Every
# instrumentation above counts so, except where the client passes on a vendor's usage that
# excludes the cache: Strands Agents on Bedrock writes Bedrock's inputTokens (no cache) beside
# the cache counts and a total that adds them up (input 4,299 + output 631 + cache read 35,574
# + cache write 17,787 = total 58,291). So when the cache counts are not zero and the total
# equals input + output + cache, but not input + output, the cache is added to the input
# (OpenInference's processor for Strands reads them the same way). Likewise when the cache
# counts exceed the input, which cannot then include them (OpenLLMetry's Anthropic
# instrumentation wrote Anthropic's input_tokens as the prompt count before
# traceloop/openllmetry#2175). Otherwise input is as logged.
_N = "coalesce(try_cast({} as double), 0)"
_CACHE = f"({_N.format('cache_read_input_tokens')} + {_N.format('cache_write_input_tokens')})"
_IN_OUT = f"({_N.format('input_tokens')} + {_N.format('output_tokens')})"
_INPUT_WITH_CACHE = (
    f"case when input_tokens is not null and {_CACHE} > 0 "
    f"and ({_CACHE} > {_N.format('input_tokens')} "
    f"or (try_cast(total_tokens as double) = {_IN_OUT} + {_CACHE} "
    f"and try_cast(total_tokens as double) <> {_IN_OUT})) "
    f"then cast(cast({_N.format('input_tokens')} + {_CACHE} as bigint) as varchar) "
    "else input_tokens end"
)


def read(con, path: Path, into: str) -> SkippedRecords:
    """Read one OTLP/JSON trace file into the TEMP table ``into`` (reader interface); returns
    how many spans the file held and which of them are not call records."""
    path = Path(path)
    recs = f"{into}_docs"
    load_records(con, path, recs)
    bare = bare_models_table(con)
    call_cols = ",\n".join(f"{_attr(keys)} as {name}" for name, keys in CALL_KEYS.items())
    gen_ai_keys = sorted({k for keys in CALL_KEYS.values() for k in keys
                          if k not in NOT_GENAI_ON_THEIR_OWN})
    attribution_keys = [k for keys in ATTRIBUTION_KEYS.values() for k in keys]
    mapped = sorted(set(gen_ai_keys) | set(NOT_GENAI_ON_THEIR_OWN))
    # gcp.gen_ai (the Google Gen AI SDK) serves either Google endpoint: server.address tells
    server = _attr(("server.address",))
    sdk_head = "split_part(lower(provider), '.', 1)"
    provider_case = (
        "case "
        + " ".join(f"when lower(provider) = {_q(k)} then {_q(v)}"
                   for k, v in PROVIDER_NAMES.items())
        + f" when lower(provider) = 'gcp.gen_ai' then (case when {server} like "
        f"'%aiplatform.googleapis.com%' then 'vertex_ai' when {server} like "
        "'%generativelanguage.googleapis.com%' then 'gemini' else 'gcp.gen_ai' end)"
        # the Vercel AI SDK's provider ids, <provider>.<api>
        + " ".join(f" when lower(provider) like {_q(k)} then {_q(v)}"
                   for k, v in AI_SDK_PROVIDERS.items())
        + f" when contains(provider, '.') and {sdk_head} in {_in(AI_SDK_HEADS)} "
        f"then {sdk_head}"
        + " else lower(provider) end"
    )
    # attribution: nearest ancestor (depth), then key preference order
    attribution = []
    for field, keys in ATTRIBUTION_KEYS.items():
        prio = "case k " + " ".join(f"when {_q(k)} then {i}" for i, k in enumerate(keys)) + " end"
        attribution.append(
            f"arg_min(v, depth * 100 + {prio}) filter (where k in {_in(keys)}) as {field}"
        )
    status = """
      case
        when coalesce(status_code, '0') not in ('2', 'STATUS_CODE_ERROR') then 'ok'
        when lower(coalesce(error_type, '') || ' ' || coalesce(status_message, ''))
             similar to '.*(ratelimit|rate limit|rate_limit|429).*' then 'rate_limited'
        when lower(coalesce(error_type, '') || ' ' || coalesce(status_message, ''))
             similar to '.*(timeout|timed out|408|504).*' then 'timeout'
        else 'error'
      end"""
    native = {
        "request_id": "coalesce(response_id, span_id)",
        "timestamp": (
            "strftime(make_timestamp(try_cast(start_ns as bigint) // 1000), "
            "'%Y-%m-%dT%H:%M:%S.%fZ')"
        ),
        "provider": "provider_norm",
        "model": "model",
        "input_tokens": f"coalesce({_INPUT_WITH_CACHE}, case when status <> 'ok' then '0' end)",
        "output_tokens": (
            "coalesce(output_tokens, case when status <> 'ok' or operation = 'embeddings' "
            "then '0' end)"
        ),
        "trace_id": "trace_id",
        "attempt": "null",
        "latency_ms": (
            "cast((try_cast(end_ns as hugeint) - try_cast(start_ns as hugeint)) / 1e6 as varchar)"
        ),
        **{f: f for f in ATTRIBUTION_KEYS},
        "api_key_id": "null",
        "cache_read_input_tokens": "cache_read_input_tokens",
        "cache_write_input_tokens": "cache_write_input_tokens",
        "cache_write_ttl": "null",
        "reasoning_tokens": "reasoning_tokens",
        "batch": "null",
        "service_tier": "service_tier",
        "status": "status",
        "outcome": "null",
        "quality_score": "null",
        "prompt_prefix_hash": "null",
        "prompt_preview": "null",
        "metadata": "null",
        "cost_usd": "null",
    }
    # Per-call fields merged over duplicate spans: first non-null in document order.
    merged_fields = [
        "span_id",
        "trace_id",
        "response_id",
        "provider_norm",
        "model",
        "operation",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
        "reasoning_tokens",
        "total_tokens",
        "service_tier",
        "status",
        "start_ns",
        "end_ns",
        "raw_span",
        "extra_json",
        *ATTRIBUTION_KEYS,
    ]
    merged = ",\n".join(
        f"arg_min({f}, span_no) filter (where {f} is not null) as {f}" for f in merged_fields
    )
    select_cols = []
    for col in READER_COLUMNS:
        if col == "source_line":
            select_cols.append("source_line")
        elif col == "raw_line":
            select_cols.append("raw_line")
        elif col == "parse_error":
            select_cols.append("parse_error")
        elif col == "extra":
            select_cols.append("extra")
        else:
            select_cols.append(f"cast({native[col]} as varchar) as {col}")
    # Unnest level by level into tables, so each level's JSON is parsed once (a lateral
    # unnest over a whole export per span would be quadratic in the export's size).
    con.execute(
        f"""
        create or replace temp table {into}_docs2 as
        select source_line as doc_line, raw_line, j,
               coalesce(parse_error,
                        case when coalesce(json_type(j->'resourceSpans'), '') <> 'ARRAY'
                             then 'not an OTLP trace export (no resourceSpans)' end)
                 as parse_error
        from (
          -- a span on its own (attributes as an object or an OTLP list): wrapped as an export
          select source_line, raw_line, parse_error,
                 case when parse_error is null and (j->'resourceSpans') is null
                           and json_type(j, '$.batches') = 'ARRAY'
                      -- Grafana Tempo's trace API: the same export, "batches" for resourceSpans
                      then json_object('resourceSpans', j->'$.batches')
                      when parse_error is null and (j->'resourceSpans') is null
                           and {_FLAT_SPAN_ID} is not null
                           and json_type({_FLAT_ATTRS}) in ('OBJECT', 'ARRAY')
                      then {_flat_to_otlp()} else j end as j
          from {recs}
        );
        create or replace temp table {into}_rs as
        select doc_line, rs_i, {_attrs("rs->" + _q("$.resource"))} as res_attrs,
               json_extract(rs, '$.scopeSpans[*]') as ss_list
        from {into}_docs2, unnest(json_extract(j, '$.resourceSpans[*]'))
             with ordinality as r(rs, rs_i)
        where parse_error is null;
        create or replace temp table {into}_ss as
        select doc_line, rs_i, ss_i, ss->>'$.scope.name' as scope_name,
               json_extract(ss, '$.spans[*]') as sp_list
        from {into}_rs, unnest(ss_list) with ordinality as s(ss, ss_i);
        create or replace temp table {into}_ordered as
        select *, cast(row_number() over (order by doc_line, rs_i, ss_i, sp_i) as bigint)
                  as span_no
        from (
          select ss.doc_line, ss.rs_i, ss.ss_i, sp_i, sp, rs.res_attrs, ss.scope_name,
                 cast(null as varchar) as parse_error, cast(null as varchar) as raw_line
          from {into}_ss as ss join {into}_rs as rs using (doc_line, rs_i),
               unnest(ss.sp_list) with ordinality as p(sp, sp_i)
          union all
          select doc_line, 0, 0, 0, null, null, null, parse_error, raw_line
          from {into}_docs2 where parse_error is not null
        );
        create or replace temp table {into}_spans as
        select * replace ({_with_metadata_keys("attrs", attribution_keys)} as attrs) from (
        select span_no, res_attrs, scope_name,
               -- the span without prompt/completion attributes or events
               cast(json_merge_patch(sp, json_object(
                 'events', null,
                 'attributes', to_json(list_filter(
                     coalesce(json_extract(sp, '$.attributes[*]'), []),
                     lambda kv: not regexp_matches(coalesce(kv->>'key', ''),
                                                   {_q(PROMPT_TEXT_KEYS)})))))
                    as varchar) as raw_span,
               {_hex("f[1]")} as trace_id, {_hex("f[2]")} as span_id,
               nullif({_hex("f[3]")}, '') as parent_id, f[4] as span_name,
               f[5] as start_ns, f[6] as end_ns, f[7] as status_code, f[8] as status_message,
               {_attrs("sp")} as attrs
        from (
          select *, json_extract_string(sp, ['$.traceId', '$.spanId', '$.parentSpanId',
                 '$.name', '$.startTimeUnixNano', '$.endTimeUnixNano', '$.status.code',
                 '$.status.message']) as f
          from {into}_ordered where parse_error is null
        ));
        """
    )
    operation = (
        "case lower(operation) "
        + " ".join(f"when {_q(k)} then {_q(v)}" for k, v in OPERATION_NAMES.items())
        + " else lower(operation) end"
    )
    # the spans with gen_ai attributes; is_call: a model call (not an agent or tool span, and
    # naming a model or usage)
    con.execute(
        f"""
        create or replace temp table {into}_genai as
        select *, coalesce(operation, '') not in {_in(AGENT_OPERATIONS)}
                  and (model is not null or input_tokens is not null
                       or output_tokens is not null) as is_call
        from (select * replace ({operation} as operation)
              from (select *, {call_cols} from {into}_spans
                    where len(list_filter(attrs, lambda a: a.k in {_in(gen_ai_keys)})) > 0))
        """
    )
    con.execute(
        f"""
        create or replace temp table {into} as
        with recursive ordered as (select * from {into}_ordered),
        spans as (select * from {into}_spans),
        calls0 as (select * from {into}_genai where is_call),
        calls as (
          select calls0.*, {status} as status,
                 case when provider is null or lower(provider) in {_in(FRAMEWORK_SYSTEMS)}
                      then coalesce(bare.bare_provider, lower(provider))
                      else {provider_case} end as provider_norm,
                 (select json_group_object(a.k, a.v) from unnest(attrs) as u(a)
                  where a.k not in {_in(mapped)} and a.k not in {_in(attribution_keys)}
                    and not regexp_matches(a.k, {_q(PROMPT_TEXT_KEYS)})) as attrs_json
          from calls0 left join {bare} as bare on bare.bare_model = calls0.model
        ),
        calls_x as (
          select *, cast(json_object('otel_span_name', span_name, 'otel_span_id', span_id,
                                     'otel_parent_span_id', parent_id,
                                     'otel_scope', scope_name,
                                     'otel_operation', operation,
                                     'otel_attributes', attrs_json) as varchar) as extra_json
          from calls
        ),
        chain as (
          select span_no as call_no, trace_id, span_id, parent_id, 0 as depth
          from calls_x
          union all
          select c.call_no, p.trace_id, p.span_id, p.parent_id, c.depth + 1
          from chain c join spans p on p.trace_id = c.trace_id and p.span_id = c.parent_id
          where c.depth < 64
        ),
        inherited as (
          select c.call_no, a.k, a.v, c.depth
          from chain c join spans s on s.trace_id = c.trace_id and s.span_id = c.span_id,
               unnest(s.attrs) as u(a)
          where a.k in {_in(attribution_keys)}
          union all
          select x.span_no, a.k, a.v, 1000
          from calls_x x, unnest(x.res_attrs) as u(a)
          where a.k in {_in(attribution_keys)}
        ),
        attributed as (
          select call_no, {", ".join(attribution)}
          from inherited group by call_no
        ),
        joined as (
          select x.*, {", ".join(f"t.{f}" for f in ATTRIBUTION_KEYS)},
                 coalesce(x.trace_id || '/' || x.response_id, 'span#' || x.span_no) as call_key
          from calls_x x left join attributed t on t.call_no = x.span_no
        ),
        merged as (
          select min(span_no) as source_line, {merged}
          from joined group by call_key
        ),
        records as (
          select source_line, raw_span as raw_line, cast(null as varchar) as parse_error,
                 {", ".join(select_cols[3:-1])}, extra_json as extra
          from merged
          union all
          select span_no, raw_line, parse_error,
                 {", ".join(f"null as {c}" for c in READER_COLUMNS[3:-1])}, null
          from ordered where parse_error is not null
        )
        select cast(source_line as bigint) as source_line, cast(raw_line as varchar) as raw_line,
               cast(parse_error as varchar) as parse_error,
               {", ".join(f"cast({c} as varchar) as {c}" for c in READER_COLUMNS[3:])}
        from records
        order by source_line
        """
    )
    spans, genai, calls = con.execute(
        f"select (select count(*) from {into}_spans), count(*), count(*) filter (where is_call) "
        f"from {into}_genai"
    ).fetchone()
    records, unreadable = con.execute(
        f"select count(*) filter (where parse_error is null), "
        f"count(*) filter (where parse_error is not null) from {into}"
    ).fetchone()
    for t in (recs, *(f"{into}_{x}" for x in ("docs2", "rs", "ss", "ordered", "spans", "genai"))):
        con.execute(f"drop table if exists {t}")
    return SkippedRecords(
        unit="spans",
        total=spans,
        records=records,
        unreadable=unreadable,
        skipped=[
            (spans - genai, "span that is not a GenAI call", "spans that are not GenAI calls",
             "(HTTP, database, application)"),
            (genai - calls, "GenAI span that is not a model call",
             "GenAI spans that are not model calls", "(agent, tool, or no model nor usage)"),
            (calls - records, "span of a call already counted",
             "spans of a call already counted", "(a second instrumentation, merged)"),
        ],
    )
