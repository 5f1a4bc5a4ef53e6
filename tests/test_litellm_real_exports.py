"""LiteLLM exports as a LiteLLM proxy's owner has them, through `tokenbook ingest gateway`
with no --format: the ``LiteLLM_SpendLogs`` table copied out of Postgres (`\\copy ... csv
header`: Postgres' timestamp text, JSON columns as text, empty strings for absent values), and
the one-object-per-call files of the GCS bucket logger.

Shapes from BerriAI/litellm: the spend-log columns (``schema.prisma``; ``custom_llm_provider``
only exists since 2025 and is empty on older rows and on failed calls, ``api_base`` is empty
when the deployment sets none), ``error_information.llm_provider`` of a failed call, and the
bucket logger's object names ``<date>/<response id>`` / ``<date>/failure-<hex>`` (no suffix)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from ingestion.gateway import litellm
from tests import gateway_cli
from tokenbook.pricing import default as price_default

DAY = "2026-11-04"

COLUMNS = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
           "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
           "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
           "cache_hit", "cache_key", "request_tags", "team_id", "end_user",
           "requester_ip_address", "messages", "response", "session_id", "status",
           "proxy_server_request"]


def _ingest(tmp_path: Path, *files: Path):
    return gateway_cli.ingest(tmp_path, *files, day=DAY)


_rows = gateway_cli.rows


def _spend_row(rid: str, minute: int, model: str, **kw) -> dict:
    usage = {"prompt_tokens": 2000, "completion_tokens": 420, "total_tokens": 2420,
             "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 256}}
    row = dict.fromkeys(COLUMNS, "")
    row.update(request_id=rid, call_type="acompletion", api_key="5d1e0c9a", spend="2.15e-05",
               total_tokens="2420", prompt_tokens="2000", completion_tokens="420",
               startTime=f"2026-11-04 08:{minute:02d}:00.125",
               endTime=f"2026-11-04 08:{minute:02d}:02.625", model=model, model_group=model,
               metadata=json.dumps({"user_api_key_team_alias": "freight-eng", "status": "success",
                                    "usage_object": usage, "error_information": None}),
               request_tags=json.dumps(["feature:route_planner"]), messages="{}",
               response="{}", status="success", proxy_server_request="{}", cache_hit="False")
    row.update(kw)
    return row


def _psql_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_spend_logs_without_custom_llm_provider_load_with_litellms_provider(tmp_path):
    """Rows with an empty ``custom_llm_provider`` and no ``api_base`` (older proxies, a
    deployment without api_base) get the provider LiteLLM itself routes the bare model name to;
    a failed call gets the ``llm_provider`` LiteLLM wrote in its error information. A row that
    names no provider anywhere and a model LiteLLM does not know is still quarantined, and
    counted."""
    failed_meta = json.dumps({"status": "failure", "usage_object": None, "error_information": {
        "error_code": "429", "error_class": "RateLimitError", "llm_provider": "anthropic",
        "error_message": "litellm.RateLimitError: AnthropicException - rate limited"}})
    rows = [
        _spend_row("chatcmpl-r1", 1, "gpt-5-mini"),
        _spend_row("chatcmpl-r2", 2, "claude-sonnet-4-5-20250929"),
        _spend_row("fail-r3", 3, "lane-finetune-v2", spend="0", total_tokens="0",
                   prompt_tokens="0", completion_tokens="0", status="failure",
                   metadata=failed_meta),
        _spend_row("chatcmpl-r4", 4, "lane-finetune-v2"),
        _spend_row("chatcmpl-r5", 5, "gpt-5-mini", custom_llm_provider="azure",
                   api_base="https://freight-east.openai.azure.com/"),
    ]
    path = _psql_csv(tmp_path / "spend_logs.csv", rows)
    result, wh = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, provider, model, status, input_tokens, "
                     "cache_read_input_tokens, reasoning_tokens, gateway_cost_usd "
                     "from raw.gateway_calls order by request_id") == [
        ("chatcmpl-r1", "openai", "gpt-5-mini", "ok", 2000, 1536, 256,
         Decimal("0.000021500")),
        ("chatcmpl-r2", "anthropic", "claude-sonnet-4-5-20250929", "ok", 2000, 1536, 256,
         Decimal("0.000021500")),
        ("chatcmpl-r5", "azure", "gpt-5-mini", "ok", 2000, 1536, 256,
         Decimal("0.000021500")),
        ("fail-r3", "anthropic", "lane-finetune-v2", "rate_limited", 0, None, None,
         Decimal("0E-9")),
    ]
    assert _rows(wh, "select line_number, reason from raw.quarantine") == [
        (4, "missing required field: provider")]
    assert _rows(wh, "select rows_read, rows_loaded, rows_quarantined, rows_duplicate "
                     "from raw.load_audit") == [(5, 4, 1, 0)]


def test_bare_model_providers_are_the_shipped_price_maps():
    """The reader's bare-model table is generated from the default price book's LiteLLM
    snapshot: a refreshed snapshot without the regenerated table fails here."""
    with open(litellm.BARE_MODELS, newline="", encoding="utf-8") as fh:
        shipped = [tuple(r) for r in csv.reader(fh)][1:]
    assert shipped == price_default.bare_models(price_default.default_rows())
    by_model = {m: p for m, p, _ in shipped}
    # what LiteLLM does with a bare name: its map's entry for that key
    assert by_model["gpt-5-mini"] == "openai"
    assert by_model["claude-sonnet-4-5-20250929"] == "anthropic"
    assert by_model["gemini-2.5-pro"] == "vertex_ai"


T0 = 1793779200  # 2026-11-04T08:00:00Z


def _logging_payload(i: int, **kw) -> dict:
    """A StandardLoggingPayload as the GCS bucket logger uploads it (json.dumps, one object)."""
    rec = {"id": f"chatcmpl-b{i}", "trace_id": f"tr-{i}", "call_type": "acompletion",
           "response_cost": 0.00105, "status": "success", "custom_llm_provider": "openai",
           "total_tokens": 1500, "prompt_tokens": 1200, "completion_tokens": 300,
           "startTime": T0 + 60 * i + 0.125, "endTime": T0 + 60 * i + 1.5,
           "completionStartTime": T0 + 60 * i + 1, "model": "gpt-4.1", "model_group": "gpt-4.1",
           "api_base": "https://api.openai.com/v1",
           "model_map_information": {"model_map_key": "gpt-4.1", "model_map_value": None},
           "metadata": {"user_api_key_hash": "5d1e", "user_api_key_team_alias": "freight-eng",
                        "usage_object": {"prompt_tokens": 1200, "completion_tokens": 300,
                                         "prompt_tokens_details": {"cached_tokens": 1024}}},
           "request_tags": ["feature:route_planner"], "end_user": "", "messages": [],
           "response": {"service_tier": "default"}, "error_str": None,
           "error_information": None, "hidden_params": {"litellm_model_name": "gpt-4.1"}}
    rec.update(kw)
    return rec


def test_gcs_bucket_logger_folder_without_suffixes_loads(tmp_path):
    """`gsutil cp -r gs://BUCKET/2026-11-04 .` gives a folder of objects named by response id
    (``failure-<hex>`` for a failed call) with no suffix: the folder loads, and a file without a
    suffix that is not JSON records (a lock file) is not read."""
    day = tmp_path / "bucket" / DAY
    day.mkdir(parents=True)
    (day / "chatcmpl-b0").write_text(json.dumps(_logging_payload(0)))
    (day / "chatcmpl-b1").write_text(json.dumps(_logging_payload(1)))
    (day / "failure-3f9a0c1e").write_text(json.dumps(_logging_payload(
        2, id="chatcmpl-b2", status="failure", response_cost=0.0, prompt_tokens=0,
        completion_tokens=0, total_tokens=0, response=None,
        metadata={"user_api_key_team_alias": "freight-eng", "usage_object": None},
        error_str="litellm.Timeout", error_information={
            "error_code": "408", "error_class": "Timeout", "llm_provider": "openai"})))
    (day / "LOCK").write_text("held by sync-job 4411\n")
    result, wh = _ingest(tmp_path, tmp_path / "bucket")
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, status, input_tokens, cache_read_input_tokens, "
                     "service_tier, feature from raw.gateway_calls order by request_id") == [
        ("chatcmpl-b0", "ok", 1200, 1024, "default", "route_planner"),
        ("chatcmpl-b1", "ok", 1200, 1024, "default", "route_planner"),
        ("chatcmpl-b2", "timeout", 0, None, None, "route_planner"),
    ]
    assert _rows(wh, "select count(*), sum(rows_read) from raw.load_audit") == [(3, 3)]


def _bucket_day(root: Path, calls: int) -> Path:
    """A copied bucket folder: ``calls`` one-call objects, a failed call, and one object holding
    three lines (a good one, a broken one, a record without tokens) so line numbers matter."""
    day = root / DAY
    day.mkdir(parents=True)
    for i in range(calls):
        (day / f"chatcmpl-b{i}").write_text(json.dumps(_logging_payload(i)))
    (day / "failure-77aa").write_text(json.dumps(_logging_payload(
        calls, id="chatcmpl-fail", status="failure", response_cost=0.0, prompt_tokens=0,
        completion_tokens=0, total_tokens=0, metadata={"usage_object": None},
        error_information={"error_code": "429", "llm_provider": "openai"})))
    (day / "chatcmpl-multi").write_text("\n".join([
        json.dumps(_logging_payload(calls + 1, id="chatcmpl-m1")),
        '{"id": "chatcmpl-m2", "startTime": 1793779',
        json.dumps(_logging_payload(calls + 2, id="chatcmpl-m3", prompt_tokens=None)),
    ]) + "\n")
    return root


def test_many_one_call_objects_are_read_together_with_the_same_result(tmp_path, monkeypatch):
    """A bucket logger writes one object per call: a day of a busy proxy is thousands of files.
    They are read in one pass (the per-file path took 53 s and 1.9 GB for 500 objects), and
    that pass gives exactly what reading them one by one gives: the same rows, the same
    quarantine (file and line), the same audit per file."""
    _bucket_day(tmp_path / "bucket", 40)
    tables = ("select * from raw.gateway_calls order by request_id",
              "select source_file, line_number, reason from raw.quarantine "
              "order by source_file, line_number",
              "select source_file, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
              "from raw.load_audit order by source_file")
    (tmp_path / "together").mkdir()
    result, wh = _ingest(tmp_path / "together", tmp_path / "bucket")
    assert result.exit_code == 0, result.output
    together = [_rows(wh, sql) for sql in tables]
    # batches of at most ~2 KB of text: the 42 files in several batches, same tables
    from ingestion.gateway import read

    monkeypatch.setattr(read, "BATCH_MAX_TOTAL_BYTES", 2048)
    seen = []
    real = read._read_litellm_batch
    monkeypatch.setattr(read, "_read_litellm_batch",
                        lambda *a, **k: seen.append(len(a[3])) or real(*a, **k))
    (tmp_path / "batches").mkdir()
    result, wh = _ingest(tmp_path / "batches", tmp_path / "bucket")
    assert result.exit_code == 0, result.output
    assert len(seen) > 2 and sum(seen) <= 42
    in_batches = [_rows(wh, sql) for sql in tables]
    monkeypatch.setattr(litellm, "BATCH_MAX_BYTES", 0)  # every file alone
    (tmp_path / "alone").mkdir()
    result, wh = _ingest(tmp_path / "alone", tmp_path / "bucket")
    assert result.exit_code == 0, result.output
    alone = [_rows(wh, sql) for sql in tables]
    assert together == alone == in_batches
    rows, quarantined, audit = together
    assert len(rows) == 40 + 1 + 1
    assert [(Path(f).name, line, reason) for f, line, reason in quarantined] == [
        ("chatcmpl-multi", 2, "not JSON"),
        ("chatcmpl-multi", 3, "missing required field: input_tokens")]
    assert sum(r[1] for r in audit) == 40 + 1 + 3
    assert all(read == loaded + quar + dup for _, read, loaded, quar, dup in audit)


def test_responses_served_from_litellms_cache_bill_no_tokens(tmp_path):
    """LiteLLM's own response cache (Redis, in-memory): the hit is logged with spend 0,
    ``cache_hit`` "True" (SpendLogs) / true (StandardLoggingPayload), a request id
    ``<id>_cache_hit<epoch>`` and the cached answer's usage. Nothing reached the vendor, so
    the call loads with 0 tokens (the price book would otherwise charge the full usage again),
    and the usage it served stays visible in extra."""
    hit_id = "chatcmpl-r1_cache_hit1793779380.52"
    spend = _psql_csv(tmp_path / "spend_logs.csv", [
        _spend_row("chatcmpl-r1", 1, "gpt-5-mini", custom_llm_provider="openai"),
        _spend_row(hit_id, 3, "gpt-5-mini", custom_llm_provider="openai", spend="0",
                   cache_hit="True", cache_key="8c1e0f"),
    ])
    slp = tmp_path / "callbacks.jsonl"
    slp.write_text(json.dumps(_logging_payload(
        7, id="chatcmpl-b7_cache_hit1793779700.1", cache_hit=True, response_cost=0.0,
        saved_cache_cost=0.00105)) + "\n")
    result, wh = _ingest(tmp_path, spend, slp)
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, status, input_tokens, output_tokens, "
                     "cache_read_input_tokens, reasoning_tokens, gateway_cost_usd "
                     "from raw.gateway_calls order by request_id") == [
        ("chatcmpl-b7_cache_hit1793779700.1", "ok", 0, 0, None, None, Decimal("0E-9")),
        ("chatcmpl-r1", "ok", 2000, 420, 1536, 256, Decimal("0.000021500")),
        (hit_id, "ok", 0, 0, None, None, Decimal("0E-9")),
    ]
    served = {rid: json.loads(extra)["litellm_cache_hit_tokens"] for rid, extra in _rows(
        wh, "select request_id, extra from raw.gateway_calls where request_id like '%cache_hit%'")}
    assert served == {hit_id: {"prompt_tokens": 2000, "completion_tokens": 420},
                      "chatcmpl-b7_cache_hit1793779700.1": {"prompt_tokens": 1200,
                                                            "completion_tokens": 300}}


def test_prompt_tokens_that_leave_out_the_cache_are_converted(tmp_path):
    """Not every LiteLLM release counts Anthropic's cache inside ``prompt_tokens``. Usage
    objects as spend logs of those releases hold them (the numbers of BerriAI/litellm#11364
    and #15056; #23342 for /v1/messages): reads added but writes left out, or neither added.
    Such rows were quarantined as 'cache tokens above input tokens' (every call that writes a
    cached system prompt); input now includes what the cache counts prove is missing, and a
    row whose prompt_tokens can hold its cache counts is taken as logged."""
    def usage(prompt, completion, read, write):
        return json.dumps({"status": "success", "usage_object": {
            "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": None},
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write}})
    rows = [
        # prompt = 6 uncached + 30,940 read; 460 written left out (#11364)
        _spend_row("msg-reads-only", 1, "claude-sonnet-4-5", custom_llm_provider="anthropic",
                   prompt_tokens="30946", completion_tokens="102",
                   metadata=usage(30946, 102, 30940, 460)),
        # prompt = 31 uncached; 1,253 written left out (#15056)
        _spend_row("msg-write-only", 2, "claude-sonnet-4-5", custom_llm_provider="anthropic",
                   prompt_tokens="31", completion_tokens="467", metadata=usage(31, 467, 0, 1253)),
        # Anthropic's own count: 12 uncached, 2,495 read (#23342, call_type anthropic_messages)
        _spend_row("msg-anthropic-count", 3, "claude-sonnet-4-5", call_type="anthropic_messages",
                   custom_llm_provider="anthropic", prompt_tokens="12", completion_tokens="80",
                   metadata=usage(12, 80, 2495, 0)),
        # the usual count: prompt 1,700 = 1,000 uncached + 600 read + 100 written
        _spend_row("msg-inclusive", 4, "claude-sonnet-4-5", custom_llm_provider="anthropic",
                   prompt_tokens="1700", completion_tokens="300", metadata=usage(1700, 300, 600, 100)),
    ]
    result, wh = _ingest(tmp_path, _psql_csv(tmp_path / "spend_logs.csv", rows))
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, input_tokens, output_tokens, cache_read_input_tokens, "
                     "cache_write_input_tokens from raw.gateway_calls order by request_id") == [
        ("msg-anthropic-count", 12 + 2495, 80, 2495, 0),
        ("msg-inclusive", 1700, 300, 600, 100),
        ("msg-reads-only", 30946 + 460, 102, 30940, 460),
        ("msg-write-only", 31 + 1253, 467, 0, 1253),
    ]
    assert _rows(wh, "select count(*) from raw.quarantine") == [(0,)]


def test_one_hour_cache_writes_in_litellms_usage_shape_keep_their_ttl(tmp_path):
    """LiteLLM's own Usage puts the cache write's TTL split in
    ``prompt_tokens_details.cache_creation_token_details`` (not Anthropic's top-level
    ``cache_creation``): a 1-hour write must load as ``1h`` (priced at twice the input price,
    not the 5-minute 1.25x), and a usage object carrying the write only as
    ``prompt_tokens_details.cache_creation_tokens`` still has its cache write."""
    def meta(details: dict, **top):
        return json.dumps({"status": "success", "usage_object": {
            "prompt_tokens": 5040, "completion_tokens": 60, "total_tokens": 5100,
            "prompt_tokens_details": {"cached_tokens": 0, **details}, **top}})
    rows = [
        _spend_row("msg-1h", 1, "claude-sonnet-4-5", custom_llm_provider="anthropic",
                   prompt_tokens="5040", completion_tokens="60", metadata=meta(
                       {"cache_creation_tokens": 5000, "cache_creation_token_details": {
                           "ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 5000}},
                       cache_creation_input_tokens=5000, cache_read_input_tokens=0)),
        _spend_row("msg-5m", 2, "claude-sonnet-4-5", custom_llm_provider="anthropic",
                   prompt_tokens="5040", completion_tokens="60", metadata=meta(
                       {"cache_creation_tokens": 5000, "cache_creation_token_details": {
                           "ephemeral_5m_input_tokens": 5000, "ephemeral_1h_input_tokens": 0}})),
    ]
    result, wh = _ingest(tmp_path, _psql_csv(tmp_path / "spend_logs.csv", rows))
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, input_tokens, cache_write_input_tokens, "
                     "cache_write_ttl from raw.gateway_calls order by request_id") == [
        ("msg-1h", 5040, 5000, "1h"), ("msg-5m", 5040, 5000, "5m")]


def test_spend_logs_metadata_pairs_attribute_the_call(tmp_path):
    """LiteLLM's other documented way to tag a request is custom key/value pairs,
    ``metadata: {"spend_logs_metadata": {...}}`` (or the ``x-litellm-spend-logs-metadata``
    header), stored in the spend log's metadata: they attribute the call where no request tag
    does; a request tag wins over a pair."""
    def meta(pairs):
        return json.dumps({"status": "success", "spend_logs_metadata": pairs,
                           "usage_object": {"prompt_tokens": 2000, "completion_tokens": 420}})
    rows = [
        _spend_row("chatcmpl-p1", 1, "gpt-5-mini", custom_llm_provider="openai",
                   request_tags="[]", metadata=meta({"feature": "customs_forms",
                                                     "segment": "public_sector",
                                                     "project": "proj_7"})),
        _spend_row("chatcmpl-p2", 2, "gpt-5-mini", custom_llm_provider="openai",
                   request_tags=json.dumps(["feature:route_planner"]),
                   metadata=meta({"feature": "customs_forms", "env": "staging"})),
        _spend_row("chatcmpl-p3", 3, "gpt-5-mini", custom_llm_provider="openai",
                   request_tags="[]", metadata=meta(None)),
    ]
    result, wh = _ingest(tmp_path, _psql_csv(tmp_path / "spend_logs.csv", rows))
    assert result.exit_code == 0, result.output
    assert _rows(wh, "select request_id, feature, customer_segment, project_id, environment "
                     "from raw.gateway_calls order by request_id") == [
        ("chatcmpl-p1", "customs_forms", "public_sector", "proj_7", None),
        ("chatcmpl-p2", "route_planner", None, None, "staging"),
        ("chatcmpl-p3", None, None, None, None),
    ]
