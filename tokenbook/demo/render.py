"""Render call attempts as native gateway-log JSON lines with DuckDB and write one gzip file
per day.

A line is assembled by SQL string concatenation, so a field can be absent (not just null),
objects can nest, and unknown extra fields appear where a real gateway would put them.
``concat_ws`` skips NULL parts: a part that is NULL is a field left out of the line.
"""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_HEX_LETTERS = np.frombuffer(b"abcdefabcdefabcd", np.uint8)
_LETTERS = np.frombuffer(b"abcdefghjkmnpqrstuvwxyzabcdefghj", np.uint8)


def hex_ids(
    rng: np.random.Generator, n: int, groups: tuple[int, ...], letters_only: bool = False
) -> pa.Array:
    """``n`` random hex ids in dash-separated ``groups`` (uuid-like for (8, 4, 4, 4, 12)).

    Every fourth character is a letter (a-f): still a plain hex string, but never a run of
    digits that a phone, card or SSN pattern could take for PII. ``letters_only`` gives ids of
    lowercase letters instead. Built as one byte buffer, no Python loop."""
    total = sum(groups)
    if letters_only:
        chars = _LETTERS[rng.integers(0, 32, size=(n, total), dtype=np.uint8)]
    else:
        nib = rng.integers(0, 16, size=(n, total), dtype=np.uint8)
        chars = _HEX[nib]
        chars[:, ::4] = _HEX_LETTERS[nib[:, ::4]]
    width = total + len(groups) - 1
    out = np.full((n, width), ord("-"), np.uint8)
    pos = 0
    for i, g in enumerate(groups):
        start = sum(groups[:i])
        out[:, pos : pos + g] = chars[:, start : start + g]
        pos += g + 1
    offsets = np.arange(n + 1, dtype=np.int64) * width
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())]
    ).cast(pa.string())


# Builds one JSON object per attempt from table ``a`` joined to the lookup tables.
LINE_SQL = r"""
'{' || concat_ws(',',
  '"request_id":"' || a.request_id || '"',
  '"timestamp":"' || strftime(epoch_ms(a.ts_ms), '%Y-%m-%dT%H:%M:%S.%g')
      || CASE WHEN a.ts_style = 1 THEN '+00:00' ELSE 'Z' END || '"',
  CASE WHEN a.has_trace THEN '"trace_id":"' || a.trace_id || '"' END,
  CASE WHEN a.has_trace THEN '"attempt":' || a.attempt END,
  '"provider":' || to_json(a.provider),
  '"model":' || to_json(a.model),
  CASE a.feature_mode WHEN 0 THEN '"feature":' || to_json(a.feature)
       WHEN 1 THEN '"feature":null' END,
  CASE a.segment_mode WHEN 0 THEN '"customer_segment":' || to_json(a.segment)
       WHEN 1 THEN '"customer_segment":null' END,
  CASE WHEN a.team IS NOT NULL THEN '"team":' || to_json(a.team) END,
  CASE WHEN a.customer_id IS NOT NULL THEN '"customer_id":' || to_json(a.customer_id) END,
  '"environment":' || to_json(a.environment),
  '"request_class":' || to_json(a.request_class),
  '"api_key_id":' || to_json(a.api_key_id),
  '"project_id":' || to_json(a.project_id),
  CASE WHEN a.template IS NOT NULL THEN '"prompt_template_id":' || to_json(a.template) END,
  '"prompt_prefix_hash":"' || a.prefix_hash || '"',
  '"input_tokens":' || a.input_tokens,
  '"output_tokens":' || a.output_tokens,
  CASE WHEN a.has_cache_fields THEN '"cache_read_input_tokens":' || a.cache_read END,
  CASE WHEN a.has_cache_fields THEN '"cache_write_input_tokens":' || a.cache_write END,
  CASE WHEN a.ttl <> '' THEN '"cache_write_ttl":"' || a.ttl || '"' END,
  '"reasoning_tokens":' || a.reasoning,
  '"batch":' || CASE WHEN a.batch THEN 'true' ELSE 'false' END,
  CASE WHEN a.service_tier <> '' THEN '"service_tier":"' || a.service_tier || '"' END,
  '"status":"' || a.status || '"',
  '"outcome":' || CASE WHEN a.outcome = '' THEN 'null' ELSE '"' || a.outcome || '"' END,
  CASE WHEN NOT isnan(a.quality) THEN '"quality_score":' || round(a.quality, 3) END,
  '"latency_ms":' || round(a.latency, 1),
  CASE WHEN a.has_cost THEN '"cost_usd":' || printf('%.9f', a.cost_usd) END,
  CASE WHEN a.preview_id >= 0 THEN '"prompt_preview":' || to_json(
      bp.text || coalesce(' - ' || replace(pp.text, '{v}', pv.value), '')) END,
  CASE WHEN a.has_meta THEN '"metadata":{' || concat_ws(',',
      '"session_id":"sess_' || a.session_id || '"',
      '"app":' || to_json(a.app),
      CASE WHEN mv.kind = 'email' THEN '"user":{"email":' || to_json(mv.value) || ',"plan":'
           || to_json(a.segment_label) || '}' END,
      CASE WHEN mv.kind IS NOT NULL AND mv.kind <> 'email'
           THEN '"notes":' || to_json(replace(mp.text, '{v}', mv.value)) END,
      '"tags":["' || a.app || '","' || a.environment || '"]') || '}' END,
  '"gateway_version":"' || a.gateway_version || '"',
  CASE WHEN a.region IS NOT NULL THEN '"region":"' || a.region || '"' END,
  CASE WHEN a.client_ip_id >= 0 THEN '"client":{"sdk":' || to_json(a.sdk)
       || ',"ip":"' || cv.value || '"}' END,
  CASE WHEN dv.value IS NOT NULL
       THEN '"debug_context":' || to_json(replace(dp.text, '{v}', dv.value)) END
) || '}'
"""

FROM_SQL = """
from attempts a
left join benign bp on bp.id = a.preview_id
left join phrases pp on pp.id = a.preview_phrase
left join pii pv on pv.id = a.preview_pii
left join phrases mp on mp.id = a.meta_phrase
left join pii mv on mv.id = a.meta_pii
left join pii cv on cv.id = a.client_ip_id
left join phrases dp on dp.id = a.debug_phrase
left join pii dv on dv.id = a.debug_pii
"""


def render_files(
    attempts: pa.Table,
    entries: pa.Table,
    bad: pa.Table,
    lookups: dict[str, pa.Table],
    start: date,
    days: int,
    out_dir: Path,
    chunk_days: int = 12,
) -> list[dict]:
    """Write gateway-YYYY-MM-DD.jsonl.gz for each file day; returns per-file line counts.

    ``entries`` lists every line of every file: (file_day, sort_ms, seq, gid) where gid is the
    attempt written (a duplicate is a second entry of the same gid); ``bad`` holds malformed
    lines (file_day, sort_ms, seq, line).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.register("attempts_arrow", attempts)
    con.execute("create table attempts as select * from attempts_arrow")
    con.register("entries", entries)
    con.register("bad", bad)
    for name, table in lookups.items():
        con.register(name, table)
    files = []
    for lo in range(0, days, chunk_days):
        hi = min(days, lo + chunk_days) - 1
        rows = con.execute(
            f"""
            with rendered as (
              select a.gid, {LINE_SQL} as line
              {FROM_SQL}
              where a.gid in (select gid from entries where file_day between {lo} and {hi})
            ),
            lines as (
              select e.file_day, e.sort_ms, e.seq, r.line
              from entries e join rendered r using (gid)
              where e.file_day between {lo} and {hi}
              union all
              select file_day, sort_ms, seq, line from bad where file_day between {lo} and {hi}
            )
            select file_day, string_agg(line, chr(10) order by sort_ms, seq) || chr(10), count(*)
            from lines group by file_day order by file_day
            """
        ).fetchall()
        for file_day, text, n_lines in rows:
            day = start + timedelta(days=int(file_day))
            name = f"gateway-{day.isoformat()}.jsonl.gz"
            data = gzip.compress(text.encode("utf-8"), compresslevel=3, mtime=0)
            (out_dir / name).write_bytes(data)
            files.append({"path": f"gateway/{name}", "date": day.isoformat(), "lines": int(n_lines),
                          "bytes": len(data)})
    con.close()
    return files
