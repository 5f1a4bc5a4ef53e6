"""LiteLLM spend-log reader: ``LiteLLM_SpendLogs`` rows (JSONL, a JSON array, a CSV or a Parquet export)
mapped onto native gateway-log records (reader interface: see ``readers.py``).

What LiteLLM writes (checked against the proxy's schema and STACK_NOTES.md):

- ``prompt_tokens`` already INCLUDES Anthropic cache reads and writes and OpenAI cached tokens,
  so ``input_tokens = prompt_tokens`` (our convention: input is all input). The split comes from
  ``metadata.usage_object`` (``cache_read_input_tokens``, ``cache_creation_input_tokens``,
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``,
  ``cache_creation.ephemeral_{5m,1h}_input_tokens``, or as LiteLLM's own Usage writes them
  ``prompt_tokens_details.cache_creation_tokens`` and
  ``prompt_tokens_details.cache_creation_token_details.ephemeral_{5m,1h}_input_tokens``) or
  ``metadata.additional_usage_values``.
- ``completion_tokens`` includes reasoning tokens: ``output_tokens = completion_tokens``.
- ``spend`` is LiteLLM's own USD estimate: ``cost_usd``.
- ``startTime``/``endTime`` are UTC (a value without an offset is read as UTC); ``latency_ms``
  is their difference.
- A failed call is a row with zero tokens and zero spend and ``status = 'failure'`` (or
  ``metadata.status``): status ``error``, ``rate_limited`` (error code 429 / RateLimitError) or
  ``timeout``; a retried call is one row.
- A response LiteLLM served from its own cache (``cache_hit`` "True" in SpendLogs, ``true`` in
  StandardLoggingPayload; ``request_id`` ``<id>_cache_hit<epoch>``) never reached the vendor:
  spend 0, and its tokens are loaded as 0 (nothing is billed); the usage it served is kept in
  ``extra.litellm_cache_hit_tokens``.
- Custom key/value pairs in ``metadata.spend_logs_metadata`` fill the same fields as the tags
  (keys as the tag prefixes: ``feature``, ``segment``, ``team``, ...) when no tag does.
- Tags arrive as ``request_tags`` (and older proxies: ``metadata.tags``) like
  ``"feature:invoice_triage"``: ``feature:``, ``segment:``/``customer_segment:``, ``team:``,
  ``customer:``/``customer_id:``, ``env:``/``environment:``, ``class:``/``request_class:``,
  ``project:``, ``template:``/``prompt_template:`` fill the native fields; the other request
  tags (plain ones like ``checkout``, the proxy's ``User-Agent: ...``) stay in
  ``extra.request_tags``. ``team`` falls back to
  ``metadata.user_api_key_team_alias``; ``customer_id`` to ``end_user``.
- ``service_tier``: ``metadata.usage_object.service_tier`` (Anthropic writes it in usage), else
  the ``response`` column's ``service_tier`` (OpenAI writes it on the response; an object, or
  JSON text in a CSV export), else a top-level ``service_tier``; normalised by ``tiers.py``.
- StandardLoggingPayload (what LiteLLM's logger callbacks, e.g. s3 / gcs_bucket, write) is read
  too: ``id`` is the ``request_id``, ``response_cost`` the cost, ``trace_id`` the trace,
  ``startTime``/``endTime`` epoch seconds (floats), ``error_information`` top level.
- ``provider`` is ``custom_llm_provider``, else the model's ``provider/`` prefix, else the
  ``llm_provider`` LiteLLM wrote in ``error_information`` (a failed call), else the provider
  recognised from ``api_base``, else the provider LiteLLM itself routes a bare model name to
  (``litellm_bare_models.csv``: its price map's entry for that key, e.g. ``gpt-5-mini`` ->
  openai, ``claude-sonnet-4-5`` -> anthropic). Rows written before LiteLLM had the
  ``custom_llm_provider`` column, and failed calls, leave it empty, often with no ``api_base``
  either.

Prompt and response text (``messages``, ``response``, ``proxy_server_request``) is dropped;
every other unmapped column lands in ``extra``; LiteLLM's ``metadata`` object is the native
``metadata`` (both redacted by the pipeline).
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

from ingestion.gateway.readers import READER_COLUMNS, ReaderError, has_known_suffix, is_parquet
from ingestion.raw.sniff import SniffError, read_failure, sniff

# Columns mapped onto native fields or dropped (never copied into ``extra``).
_MAPPED = (
    "service_tier",
    "request_id",
    "id",
    "trace_id",
    "response_cost",
    "startTime",
    "endTime",
    "model",
    "custom_llm_provider",
    "prompt_tokens",
    "completion_tokens",
    "spend",
    "api_key",
    "end_user",
    "status",
    "metadata",
    "request_tags",
)
_PROMPT_TEXT = ("messages", "response", "proxy_server_request")
# Tag prefixes (lower case, before the colon) per native field, in order of preference.
_TAG_FIELDS: dict[str, tuple[str, ...]] = {
    "feature": ("feature",),
    "customer_segment": ("segment", "customer_segment"),
    "team": ("team",),
    "customer_id": ("customer", "customer_id"),
    "environment": ("env", "environment"),
    "request_class": ("class", "request_class"),
    "project_id": ("project", "project_id"),
    "prompt_template_id": ("template", "prompt_template", "prompt_template_id"),
}


# The provider LiteLLM routes a model name without a ``provider/`` prefix to (its price map's
# entry for that key), generated with the default price book (``tokenbook.pricing.default``).
BARE_MODELS = Path(__file__).resolve().with_name("litellm_bare_models.csv")


def bare_models_table(con) -> str:
    """TEMP table ``(bare_model, bare_provider)`` of ``BARE_MODELS``, read once per connection
    and kept for the load's other files; returns its name."""
    con.execute(
        "create temp table if not exists _tb_litellm_bare_models as select model as bare_model, "
        f"provider as bare_provider from read_csv({_q(str(BARE_MODELS))}, header = true, "
        "columns = {'model': 'VARCHAR', 'provider': 'VARCHAR', 'source_snapshot': 'VARCHAR'})"
    )
    return "_tb_litellm_bare_models"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def load_lines(con, path: Path, into: str) -> None:
    """TEMP table ``into(source_line BIGINT, raw_line VARCHAR)``: the file's lines, 1-based,
    blank lines kept (so numbers match an editor's). ``.gz`` is decompressed by streaming."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"file not found: {path}")
    tmp = None
    try:
        src = path
        if path.name.lower().endswith(".gz"):
            tmp = tempfile.NamedTemporaryFile(suffix=".txt", delete=False)
            with gzip.open(path, "rb") as fh, tmp:
                shutil.copyfileobj(fh, tmp, 1 << 20)
            src = Path(tmp.name)
        con.execute(f"create or replace temp table {into} as {_lines_sql(_q(str(src)))}")
        # A final newline leaves an empty last element: not a line.
        con.execute(
            f"delete from {into} where source_line = (select max(source_line) from {into}) "
            "and raw_line = ''"
        )
    except (OSError, EOFError) as exc:
        raise ReaderError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # duckdb errors: unreadable, not UTF-8, ...
        if "duckdb" in type(exc).__module__:
            raise ReaderError(read_failure(path, "text lines", exc)) from exc
        raise
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def load_records(con, path: Path, into: str) -> None:
    """TEMP table ``into(source_line, raw_line, j JSON, parse_error)``: one row per record of
    a JSONL file, a JSON array file, a CSV file with a header (values as strings), or a Parquet
    file (typed values; MAP columns as objects)."""
    path = Path(path)
    if _is_csv(path):
        _load_csv(con, path, into)
        return
    if is_parquet(path):
        _load_parquet(con, path, into)
        return
    lines = f"{into}_lines"
    load_lines(con, path, lines)
    first = con.execute(
        f"select ltrim(raw_line) from {lines} where source_line = "
        f"(select min(source_line) from {lines} where trim(raw_line) <> '')"
    ).fetchone()
    whole = None
    if first is not None and (
        first[0].startswith("[") or (first[0].startswith("{") and not _is_json(con, first[0]))
    ):
        # Maybe a JSON array or one pretty-printed document; if the whole text is not JSON
        # either, it is JSONL with a bad first line.
        whole = con.execute(
            f"select string_agg(raw_line, chr(10) order by source_line) from {lines}"
        ).fetchone()[0]
        if not _is_json(con, whole or ""):
            whole = None
            if first[0].startswith("{") and _load_stream(con, path, into):
                # pretty-printed objects one after another (the OpenTelemetry Python SDK's
                # ConsoleSpanExporter writes each span so)
                con.execute(f"drop table if exists {lines}")
                return
    if whole is not None:
        con.execute(
            f"""
            create or replace temp table {into} as
            with doc as (select cast(? as JSON) as d)
            select cast(n as bigint) as source_line, cast(e as varchar) as raw_line, e as j,
                   case when json_type(e) <> 'OBJECT' then 'not a JSON object' end as parse_error
            from doc,
                 unnest(case when json_type(d) = 'ARRAY' then json_extract(d, '$[*]')
                             else [d] end) with ordinality as u(e, n)
            """,
            [whole],
        )
    else:
        _json_lines(con, lines, into)
    con.execute(f"drop table if exists {lines}")


def _lines_sql(files_sql: str, filename: bool = False) -> str:
    """SELECT (``filename``,) source_line, raw_line: each line of the files (a SQL string or
    list of strings, read whole by ``read_text``), 1-based, CR of a CRLF end dropped."""
    name = "filename, " if filename else ""
    return f"""
        select {name}cast(n as bigint) as source_line,
               regexp_replace(line, '\\r$', '') as raw_line
        from (select {name}string_split(content, chr(10)) as ls from read_text({files_sql})),
             unnest(ls) with ordinality as u(line, n)
    """


def _json_lines(con, lines: str, into: str, keep: tuple[str, ...] = ()) -> None:
    """TEMP table ``into``: (``keep``,) source_line, raw_line, j, parse_error, one row per
    non-blank line of the table ``lines`` (JSON lines: a line that is not a JSON object keeps
    its reason)."""
    kept = "".join(f"{k}, " for k in keep)
    con.execute(
        f"""
        create or replace temp table {into} as
        select {kept}source_line, raw_line, j,
               case when j is null then 'not JSON'
                    when json_type(j) <> 'OBJECT' then 'not a JSON object' end as parse_error
        from (select {kept}source_line, raw_line,
                     case when json_valid(raw_line) then cast(raw_line as JSON) end as j
              from {lines} where trim(raw_line) <> '')
        """
    )


def _load_stream(con, path: Path, into: str) -> bool:
    """TEMP table ``into`` from a file of JSON values written one after another (not one per
    line); False (nothing created) when the file is not such a stream, e.g. JSON lines with a
    broken first line, whose good lines the line path must still read."""
    try:
        con.execute(
            f"""
            create or replace temp table {into} as
            select cast(row_number() over () as bigint) as source_line,
                   cast(json as varchar) as raw_line, json as j,
                   case when json_type(json) <> 'OBJECT' then 'not a JSON object' end
                     as parse_error
            from read_json_objects({_q(str(path))}, format = 'unstructured')
            """
        )
    except Exception as exc:
        import duckdb

        if "duckdb" in type(exc).__module__ and not isinstance(exc, duckdb.InterruptException):
            con.execute(f"drop table if exists {into}")
            return False
        raise  # a Ctrl-C (core/interrupts.py) stops the load
    return True


def _load_parquet(con, path: Path, into: str) -> None:
    """A Parquet export of the table (typed columns; JSON columns as text or MAPs): one record
    per row, numbered by its row in the file, null columns left out as in a CSV."""
    if not path.is_file():
        raise ReaderError(f"file not found: {path}")
    try:
        con.execute(
            f"""
            create or replace temp table {into} as
            select cast(file_row_number + 1 as bigint) as source_line,
                   cast(j as varchar) as raw_line, j, cast(null as varchar) as parse_error
            from (
              select file_row_number,
                     json_merge_patch(json_merge_patch('{{}}', to_json(t)),
                                      '{{"file_row_number": null}}') as j
              from read_parquet({_q(str(path))}, file_row_number = true) as t
            )
            order by source_line
            """
        )
    except Exception as exc:
        raise ReaderError(f"cannot read {path} as Parquet: {exc}") from exc


def _expand_pages(con, path: Path, recs: str) -> str:
    """The records of ``recs`` with each page of the proxy's spend-logs API
    (``/spend/logs/ui``: ``{"data": [rows], "total", "page", ...}``) replaced by its rows,
    numbered in document order; returns the table to read (``recs`` when there is no page).
    Raises ReaderError for the summarised ``/spend/logs`` answer (spend per day, no calls)."""
    is_page = (
        "(parse_error is null and json_type(j, '$.data') = 'ARRAY' "
        "and (j->'$.request_id') is null)"
    )
    is_summary = (
        "(parse_error is null and (j->'$.request_id') is null and (j->'$.spend') is not null "
        "and ((j->'$.users') is not null or (j->'$.models') is not null))"
    )
    pages, summaries, records = con.execute(
        f"select count(*) filter (where {is_page}), count(*) filter (where {is_summary}), "
        f"count(*) filter (where parse_error is null) from {recs}"
    ).fetchone()
    if records and summaries == records:
        raise ReaderError(
            f"{path} is LiteLLM's summarised spend (spend per day, by user and model), not one "
            "row per call: ask the proxy for the rows (`/spend/logs?...&summarize=false`, or "
            "`/spend/logs/ui`) or export the LiteLLM_SpendLogs table"
        )
    if not pages:
        return recs
    expanded = f"{recs}_rows"
    con.execute(
        f"""
        create or replace temp table {expanded} as
        select cast(row_number() over (order by source_line, k) as bigint) as source_line,
               case when e is null then raw_line else cast(e as varchar) end as raw_line,
               coalesce(e, j) as j,
               case when e is not null and json_type(e) <> 'OBJECT' then 'not a JSON object'
                    else parse_error end as parse_error
        from (
          select source_line, raw_line, parse_error, j, e, k
          from {recs}, unnest(json_extract(j, '$.data[*]')) with ordinality as u(e, k)
          where {is_page}
          union all
          select source_line, raw_line, parse_error, j, null, 0 from {recs}
          where not coalesce({is_page}, false)
        )
        """
    )
    con.execute(f"drop table if exists {recs}")
    return expanded


def _is_csv(path: Path) -> bool:
    """A CSV file: by its name (``.csv``, ``.csv.gz``), or by its content when the name says
    neither JSON nor Parquet (``\\copy ... to 'spend_logs' csv header`` names no suffix)."""
    lower = path.name.lower()
    if lower.endswith((".csv", ".csv.gz")):
        return True
    if has_known_suffix(path) or not path.is_file():
        return False
    try:
        return sniff(path).kind == "csv"
    except SniffError:
        return False


def _is_json(con, text: str) -> bool:
    return bool(con.execute("select json_valid(?)", [text]).fetchone()[0])


def _load_csv(con, path: Path, into: str) -> None:
    try:
        con.execute(
            f"""
            create or replace temp table {into} as
            select source_line, cast(j as varchar) as raw_line, j,
                   cast(null as varchar) as parse_error
            from (
              -- merging into {{}} drops the keys of empty (null) CSV fields
              select cast(row_number() over () as bigint) as source_line,
                     json_merge_patch('{{}}', to_json(t)) as j
              from read_csv({_q(str(path))}, header = true, all_varchar = true,
                          auto_detect = true) as t
            )
            """
        )
    except Exception as exc:
        raise ReaderError(read_failure(path, "CSV with a header", exc)) from exc


def _python_literal_as_json(text: str) -> str:
    """SQL: JSON text of a Python literal of dicts/lists of str, numbers, True/False/None (what
    pandas' ``to_csv`` writes for a JSON column): single quotes become double quotes, the
    constants JSON's. Only used when the result is valid JSON (a string holding a quote makes
    it invalid, and the value stays unparsed)."""
    swapped = f"replace({text}, '''', '\"')"
    # twice: a match consumes the delimiter the next one needs (``[None, None]``)
    for py, js in (("True", "true"), ("False", "false"), ("None", "null")) * 2:
        swapped = (
            f"regexp_replace({swapped}, '([\\[{{:,]\\s*){py}(\\s*[\\]}},])', '\\1{js}\\2', 'g')"
        )
    return swapped


def _from_string_or_json(v: str) -> str:
    """A JSON value that may also arrive as text inside a string (CSV exports): JSON text, or a
    Python literal (a CSV written by pandas)."""
    text = f"({v}->>'$')"
    py = _python_literal_as_json(text)
    return (
        f"(case when json_type({v}) = 'VARCHAR' then "
        f"(case when json_valid({text}) then cast({text} as JSON) "
        f"when regexp_matches({text}, '^\\s*[\\[{{]') and json_valid({py}) "
        f"then cast({py} as JSON) end) "
        f"when json_type({v}) = 'NULL' then null else {v} end)"
    )


def _utc_text(expr: str) -> str:
    """RFC 3339 UTC text of a timestamp text (no offset = UTC); the input when unparseable."""
    return f"coalesce(strftime({_ts(expr)} at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'), {expr})"


def _ts(expr: str) -> str:
    """TIMESTAMPTZ of a timestamp text: RFC 3339 / ISO (no offset = UTC) or epoch seconds
    (StandardLoggingPayload's float ``startTime``, e.g. ``1793779200.25``)."""
    with_tz = (
        f"(case when regexp_matches({expr}, '(Z|[+-]\\d\\d(:?\\d\\d)?)$') then {expr} "
        f"else {expr} || '+00:00' end)"
    )
    epoch_us = f"cast(round(try_cast({expr} as decimal(20, 6)) * 1000000) as bigint)"
    return (
        f"(case when regexp_matches({expr}, '^\\s*\\d{{9,11}}(\\.\\d*)?\\s*$') "
        f"then make_timestamp({epoch_us}) at time zone 'UTC' "
        f"else try_cast({with_tz} as timestamptz) end)"
    )


def _input_tokens(read: str, write: str) -> str:
    """SQL: input tokens of a row (text), cache reads and writes included.

    ``prompt_tokens`` includes both in most LiteLLM releases, but not in all: mid-2025
    releases added only the cache reads to Anthropic's input (a spend log of that time:
    prompt 30,946 = 6 uncached + 30,940 read, with 460 written; BerriAI/litellm#11364, #15056:
    prompt 31 with 1,253 written), and a 2026 change (BerriAI/litellm#23342) follows
    Anthropic's count, no cache at all, for /v1/messages calls. When the cache counts exceed
    prompt_tokens, it cannot include them: it then excludes the writes (reads <= prompt) or
    both (reads > prompt), and they are added. Otherwise prompt_tokens is taken as logged (a
    row of those releases whose uncached input exceeds its writes cannot be told apart)."""
    p = "try_cast(prompt_tokens as bigint)"
    r, w = (f"coalesce(try_cast({x} as bigint), 0)" for x in (read, write))
    return (
        f"case when {p} is not null and {r} + {w} > {p} "
        f"then cast(case when {r} > {p} then {p} + {r} + {w} else {p} + {w} end as varchar) "
        "else prompt_tokens end"
    )


def _tag(field: str) -> str:
    """SQL: the value of ``field`` from the request tags (``feature:x``), else from the custom
    key/value pairs of ``metadata.spend_logs_metadata`` (LiteLLM's other documented way to tag
    a request: ``{"spend_logs_metadata": {"feature": "x"}}`` in the request's metadata or the
    ``x-litellm-spend-logs-metadata`` header), keys as the tag prefixes."""
    prefixes = _TAG_FIELDS[field]
    picks = [f"list_filter(tags, lambda t: lower(t) like {_q(p + ':%')})[1]" for p in prefixes]
    first = f"coalesce({', '.join(picks)})"
    tagged = f"nullif(trim(substr({first}, strpos({first}, ':') + 1)), '')"
    pairs = ", ".join(f"nullif(trim({_m('$.spend_logs_metadata.' + p)}), '')" for p in prefixes)
    return f"coalesce({tagged}, {pairs})"


# Top-level columns read as text (one JSON parse per record for all of them).
_TOP = (
    "request_id",
    "startTime",
    "endTime",
    "model",
    "custom_llm_provider",
    "api_base",
    "prompt_tokens",
    "completion_tokens",
    "spend",
    "api_key",
    "end_user",
    "status",
    # StandardLoggingPayload (LiteLLM's logger callbacks) spellings
    "id",
    "trace_id",
    "response_cost",
    "error_information",
    "error_information.error_code",
    "error_information.error_class",
    "error_information.llm_provider",
    # OpenAI's tier is on the response, not in usage: the response column or a top-level one
    "response.service_tier",
    # "True" (SpendLogs) / true (StandardLoggingPayload): served from LiteLLM's own cache
    "cache_hit",
    "service_tier",
)
# metadata paths read as text (one parse of metadata per record).
_META = (
    "$.status",
    "$.error_information",
    "$.error_information.error_code",
    "$.error_information.error_class",
    "$.error_information.llm_provider",
    "$.user_api_key_team_alias",
    "$.usage_object.cache_read_input_tokens",
    "$.usage_object.prompt_tokens_details.cached_tokens",
    "$.additional_usage_values.cache_read_input_tokens",
    "$.usage_object.cache_creation_input_tokens",
    "$.additional_usage_values.cache_creation_input_tokens",
    "$.usage_object.cache_creation.ephemeral_1h_input_tokens",
    "$.usage_object.cache_creation.ephemeral_5m_input_tokens",
    # LiteLLM's own Usage: the write and its TTL split inside prompt_tokens_details
    "$.usage_object.prompt_tokens_details.cache_creation_tokens",
    "$.usage_object.prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens",
    "$.usage_object.prompt_tokens_details.cache_creation_token_details.ephemeral_5m_input_tokens",
    "$.usage_object.completion_tokens_details.reasoning_tokens",
    "$.additional_usage_values.completion_tokens_details.reasoning_tokens",
    "$.usage_object.service_tier",
    *(f"$.spend_logs_metadata.{p}" for ps in _TAG_FIELDS.values() for p in ps),
)


def _m(*paths: str) -> str:
    """First present (non-empty) metadata value among ``paths``, as text."""
    vals = [f"nullif(mf[{_META.index(p) + 1}], '')" for p in paths]
    return f"coalesce({', '.join(vals)})" if len(vals) > 1 else vals[0]


_PROVIDER_FROM_API_BASE = """
case
  when api_base like '%openai.azure.com%' or api_base like '%azure%' then 'azure'
  when api_base like '%api.openai.com%' then 'openai'
  when api_base like '%anthropic.com%' then 'anthropic'
  when api_base like '%bedrock%' then 'bedrock'
  when api_base like '%aiplatform.googleapis.com%' then 'vertex_ai'
  when api_base like '%generativelanguage.googleapis.com%' then 'gemini'
end"""


def read(con, path: Path, into: str) -> None:
    """Read one LiteLLM spend-log file into the TEMP table ``into`` (reader interface)."""
    path = Path(path)
    recs = f"{into}_recs"
    load_records(con, path, recs)
    recs = _expand_pages(con, path, recs)
    _map(con, recs, into)


# A JSON-lines file up to this size can be read with others in one pass (read_many).
BATCH_MAX_BYTES = 32 * 1024 * 1024


def batchable(path: Path) -> bool:
    """True for a small, uncompressed JSON-lines file (a bucket logger's object holds one
    call): such files are read together by ``read_many``, one pass over all of them instead
    of a dozen statements per file (5,000 one-call files: see ingestion/README.md)."""
    path = Path(path)
    if path.name.lower().endswith((".gz", ".csv", ".parquet")) or not path.is_file():
        return False
    if path.stat().st_size > BATCH_MAX_BYTES:
        return False
    try:
        return sniff(path).kind == "jsonl"
    except SniffError:
        return False


def read_many(con, paths: list[Path], into: str) -> bool:
    """Read several JSON-lines spend-log files (``batchable``) into the TEMP table ``into``
    with a ``filename`` column, each record numbered by its line in its file, as ``read``
    numbers it. False (nothing created) when one of them needs to be read alone: a page of the
    spend-logs API or a summarised answer (``read`` expands or refuses them by file name)."""
    recs, lines = f"{into}_recs", f"{into}_lines"
    files = "[" + ", ".join(_q(str(p)) for p in paths) + "]"
    con.execute(f"create or replace temp table {lines} as {_lines_sql(files, filename=True)}")
    _json_lines(con, lines, recs, keep=("filename",))
    con.execute(f"drop table if exists {lines}")
    pages = con.execute(
        f"select count(*) from {recs} where parse_error is null and (j->'$.request_id') is null "
        "and (json_type(j, '$.data') = 'ARRAY' or ((j->'$.spend') is not null "
        "and ((j->'$.users') is not null or (j->'$.models') is not null)))"
    ).fetchone()[0]
    if pages:
        con.execute(f"drop table if exists {recs}")
        return False
    _map(con, recs, into, keep=("filename",))
    return True


def _map(con, recs: str, into: str, keep: tuple[str, ...] = ()) -> None:
    """The records of ``recs`` (source_line, raw_line, j, parse_error, and the ``keep``
    columns) mapped onto the reader columns (and ``keep``) in the TEMP table ``into``."""
    base = f"{into}_base"
    bare = bare_models_table(con)
    kept = "".join(f"{k}, " for k in keep)
    # A response LiteLLM served from its own cache (Redis, in-memory, ...) never reached the
    # vendor: LiteLLM logs it with spend 0, cache_hit "True" and the cached answer's usage. No
    # token of it is billed, so its token counts are 0 (our convention: tokens the vendor
    # processes) and the counts it served are kept in extra.litellm_cache_hit_tokens.
    hit = "coalesce(lower(cache_hit_raw) in ('true', '1'), false)"
    read = _m(
        "$.usage_object.cache_read_input_tokens",
        "$.usage_object.prompt_tokens_details.cached_tokens",
        "$.additional_usage_values.cache_read_input_tokens",
    )
    write = _m(
        "$.usage_object.cache_creation_input_tokens",
        "$.additional_usage_values.cache_creation_input_tokens",
        "$.usage_object.prompt_tokens_details.cache_creation_tokens",
    )
    status_raw = f"lower(coalesce(status_top, {_m('$.status')}))"
    has_err = f"(coalesce({_m('$.error_information')}, err_info_top) is not null)"
    err = f"coalesce({_m('$.error_information.error_code')}, err_code_top, '')"
    err_class = (
        f"lower(coalesce({_m('$.error_information.error_class')}, err_class_top, ''))"
    )
    status = f"""
      case
        when {status_raw} is null and not {has_err} then null
        when {status_raw} in ('success', 'ok') and not {has_err} then 'ok'
        when {err} = '429' or {err_class} like '%ratelimit%' then 'rate_limited'
        when {err} in ('408', '504') or {err_class} like '%timeout%' then 'timeout'
        when {status_raw} in ('success', 'ok') then 'ok'
        else 'error'
      end"""
    ttl_1h = _m(
        "$.usage_object.cache_creation.ephemeral_1h_input_tokens",
        "$.usage_object.prompt_tokens_details.cache_creation_token_details"
        ".ephemeral_1h_input_tokens",
    )
    ttl_5m = _m(
        "$.usage_object.cache_creation.ephemeral_5m_input_tokens",
        "$.usage_object.prompt_tokens_details.cache_creation_token_details"
        ".ephemeral_5m_input_tokens",
    )
    ttl = (
        f"case when coalesce(try_cast({ttl_1h} as bigint), 0) > 0 then '1h' "
        f"when coalesce(try_cast({ttl_5m} as bigint), 0) > 0 then '5m' end"
    )
    # RFC 7386 merge patches whose nulls remove the mapped and prompt-text keys.
    patch_all = _q(json.dumps(dict.fromkeys((*_MAPPED, *_PROMPT_TEXT))))
    patch_text = _q(json.dumps(dict.fromkeys(_PROMPT_TEXT)))
    model_prefix = "case when model like '%/%' then split_part(model, '/', 1) end"
    native = {
        "request_id": "coalesce(request_id, id_raw)",
        "timestamp": f"case when start_raw is not null then {_utc_text('start_raw')} end",
        "provider": (
            f"coalesce(provider_raw, {model_prefix}, "
            f"{_m('$.error_information.llm_provider')}, err_provider_top, "
            f"{_PROVIDER_FROM_API_BASE}, bare_provider)"
        ),
        "model": "model",
        "input_tokens": f"case when {hit} then '0' else {_input_tokens(read, write)} end",
        "output_tokens": f"case when {hit} then '0' else completion_tokens end",
        "trace_id": "trace_raw",
        "attempt": "null",
        "latency_ms": "cast((epoch_us(end_ts) - epoch_us(start_ts)) / 1000.0 as varchar)",
        "feature": _tag("feature"),
        "customer_segment": _tag("customer_segment"),
        "team": f"coalesce({_tag('team')}, {_m('$.user_api_key_team_alias')})",
        "customer_id": f"coalesce({_tag('customer_id')}, end_user)",
        "environment": _tag("environment"),
        "request_class": _tag("request_class"),
        "api_key_id": "api_key",
        "project_id": _tag("project_id"),
        "cache_read_input_tokens": f"case when {hit} then null else {read} end",
        "cache_write_input_tokens": f"case when {hit} then null else {write} end",
        "cache_write_ttl": f"case when {hit} then null else {ttl} end",
        "reasoning_tokens": f"case when {hit} then null else " + _m(
            "$.usage_object.completion_tokens_details.reasoning_tokens",
            "$.additional_usage_values.completion_tokens_details.reasoning_tokens",
        ) + " end",
        "batch": "null",
        "service_tier": (
            f"coalesce({_m('$.usage_object.service_tier')}, tier_response, "
            "tier_response_text, tier_top)"
        ),
        "status": status,
        "outcome": "null",
        "quality_score": "null",
        "prompt_template_id": _tag("prompt_template_id"),
        "prompt_prefix_hash": "null",
        "prompt_preview": "null",
        "metadata": f"cast(json_merge_patch(meta, {patch_text}::JSON) as varchar)",
        "cost_usd": "coalesce(spend, response_cost)",
    }
    select_cols = []
    for col in READER_COLUMNS:
        if col in ("source_line", "parse_error"):
            select_cols.append(col)
        elif col == "raw_line":
            # the record without its prompt/response text (quarantine keeps raw_line)
            select_cols.append(
                f"case when parse_error is null then cast(json_merge_patch(j, "
                f"{patch_text}::JSON) as varchar) else raw_line end as raw_line"
            )
        elif col == "extra":
            select_cols.append(
                # a metadata / request_tags text that did not parse is kept, not dropped
                f"case when parse_error is null then nullif(cast(json_merge_patch("
                f"json_merge_patch(j, {patch_all}::JSON), json_object("
                "'metadata_unparsed', case when meta is null then j->>'$.metadata' end, "
                "'request_tags_unparsed', case when tags_json is null "
                "then j->>'$.request_tags' end, "
                "'request_tags', case when len(other_tags) > 0 then to_json(other_tags) end, "
                f"'litellm_cache_hit_tokens', case when {hit} then json_object("
                "'prompt_tokens', try_cast(prompt_tokens as bigint), "
                "'completion_tokens', try_cast(completion_tokens as bigint)) end"
                ")) as varchar), '{}') end as extra"
            )
        else:
            select_cols.append(
                f"case when parse_error is null then cast({native[col]} as varchar) end as {col}"
            )
    top = ", ".join(_q("$." + k) for k in _TOP)
    named = ",\n".join(f"nullif(f[{i + 1}], '') as {_TOP_NAMES[k]}" for i, k in enumerate(_TOP))
    # Each level is a table, so every JSON document is parsed once per level.
    con.execute(
        f"""
        create or replace temp table {base} as
        select {kept}source_line, raw_line, parse_error, j, {named},
               {_ts("start_raw0")} as start_ts, {_ts("end_raw")} as end_ts,
               meta, tags_json,
               -- the response as JSON text (a CSV export): only its tier is read
               case when json_type(j, '$.response') = 'VARCHAR'
                         and json_valid(j->>'$.response')
                    then nullif(json_extract_string(j->>'$.response', '$.service_tier'), '')
               end as tier_response_text
        from (
          select *, f[2] as start_raw0,
                 {_from_string_or_json("jf[1]")} as meta,
                 {_from_string_or_json("jf[2]")} as tags_json
          from (
            select {kept}source_line, raw_line, parse_error, j,
                   json_extract_string(j, [{top}]) as f,
                   json_extract(j, ['$.metadata', '$.request_tags']) as jf
            from {recs}
          )
        )
        """
    )
    meta_paths = ", ".join(_q(p) for p in _META)
    known_tag = " or ".join(
        f"lower(t) like {_q(p + ':%')}" for ps in _TAG_FIELDS.values() for p in ps
    )
    con.execute(
        f"""
        create or replace temp table {into} as
        with tagged0 as (
          select *,
                 json_extract_string(meta, [{meta_paths}]) as mf,
                 coalesce(case when json_type(tags_json) = 'ARRAY'
                               then json_extract_string(tags_json, '$[*]') end, []) as req_tags
          from {base}
        ),
        tagged as (
          select *,
                 list_concat(
                   req_tags,
                   coalesce(case when json_type(meta, '$.tags') = 'ARRAY'
                                 then json_extract_string(meta, '$.tags[*]') end, [])
                 ) as tags,
                 -- request tags no native field takes (plain tags, the proxy's own)
                 list_filter(req_tags, lambda t: not ({known_tag})) as other_tags
          from tagged0
        )
        select {kept}{", ".join(select_cols)}
        from tagged left join {bare} as bare on bare.bare_model = tagged.model
        order by {kept}source_line
        """
    )
    con.execute(f"drop table if exists {recs}")
    con.execute(f"drop table if exists {base}")


_TOP_NAMES = {
    "request_id": "request_id",
    "startTime": "start_raw",
    "endTime": "end_raw",
    "model": "model",
    "custom_llm_provider": "provider_raw",
    "api_base": "api_base",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "spend": "spend",
    "api_key": "api_key",
    "end_user": "end_user",
    "status": "status_top",
    "id": "id_raw",
    "trace_id": "trace_raw",
    "response_cost": "response_cost",
    "error_information": "err_info_top",
    "error_information.error_code": "err_code_top",
    "error_information.error_class": "err_class_top",
    "error_information.llm_provider": "err_provider_top",
    "response.service_tier": "tier_response",
    "cache_hit": "cache_hit_raw",
    "service_tier": "tier_top",
}
