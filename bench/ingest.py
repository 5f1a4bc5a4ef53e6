"""Benchmark: the default gateway ingestion against DuckDB's bare ``read_json`` of the same file.

    .venv/bin/python bench/ingest.py --rows 1000000
    .venv/bin/python bench/ingest.py --rows 5000000 --memory
    .venv/bin/python bench/ingest.py --rows 1000000 --gzip   # gateway-D.jsonl.gz, as shipped

Generates a realistic native JSONL file (vectorised in DuckDB: a few bad lines, duplicates and
PII in the free-text fields), then times three child processes, each measured from outside
(wall seconds from start to exit, start-up and imports included; CPU seconds and peak RSS of
exactly that child from ``wait4``):

- ``bare``: ``python -c``: ``create table t as select * from read_json(file)`` into a DuckDB file;
- ``ingest``: the real command, ``tokenbook ingest gateway FILE --date D --warehouse duckdb:///...``
  (parse, validate, dedupe, redact, pseudonymise, publish into a DuckDB file), with
  ``--report-json`` for its stage timings. The data-quality suites are a separate step
  (``tokenbook check``): ingest no longer imports Great Expectations;
- ``floor``: the bare read plus only the work no implementation on DuckDB's readers alone can
  skip: tokenbook's line pass (``native.line_pass``: every line's key list, for the unknown
  fields the format keeps and DuckDB's ``read_json`` cannot return). Nothing is validated,
  deduplicated or redacted there. The one-pass reader (``ingestion/gateway/_jsonl.c``, each
  line parsed once) is not bound by it;
- ``DuckDB alone`` (when the one-pass reader is built): the same command with
  ``TOKENBOOK_ONE_PASS=0``, the line pass and ``read_json``, each line parsed twice.

Prints them all and the ratios (target <= 2.0x): the ratio of the medians, and the median of
each round's own ratio. ``--memory`` also reports each child's peak RSS (target < 3 GB at 5M
rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD_DATE = date(2026, 11, 1)

# One row per record, built by DuckDB from range(); ~1 row in 40k gets PII somewhere.
_GENERATE_SQL = """
copy (
  with base as (
    select
      i,
      cast(hash(i, {seed}) % 1000000007 as bigint) as h,
      cast(hash(i, {seed} + 1) % 1000000009 as bigint) as h2
    from range({rows}) t(i)
  ),
  rec as (
    select
      i,
      to_json({{
        request_id: 'req_' || lpad(cast(i as varchar), 10, '0'),
        timestamp: strftime(
          timestamp '{day}' + to_microseconds((h % 86400) * 1000000 + h2 % 1000000),
          '%Y-%m-%dT%H:%M:%S.%fZ'),
        provider: ['openai', 'anthropic', 'vertex_ai', 'bedrock', 'azure_openai'][1 + h % 5],
        model: ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-pro',
                'anthropic.claude-haiku-4-5', 'o3', 'gpt-4.1', 'gemini-2.5-flash'][1 + h % 8],
        input_tokens: 200 + h2 % 6000,
        output_tokens: 20 + h % 900,
        trace_id: 'tr_' || lpad(cast(i // 2 as varchar), 10, '0'),
        attempt: 1 + (i % 2),
        latency_ms: round(150 + (h2 % 90000) / 10.0, 1),
        feature: ['invoice_triage', 'policy_qa', 'lead_scoring', 'kb_lookup',
                  'outreach_writer', 'lease_parser', 'call_recap'][1 + h2 % 7],
        customer_segment: ['enterprise', 'mid_market', 'smb', 'free_tier'][1 + h % 4],
        team: ['ops-west', 'content', 'platform', 'kb-team'][1 + h2 % 4],
        customer_id: case when h % 40000 = 7 then 'jane.doe@example.com'
                          else 'cust_' || cast(h % 5000 as varchar) end,
        environment: 'prod',
        request_class: case when h % 10 = 0 then 'escalate' else 'standard' end,
        api_key_id: 'key_' || cast(h2 % 50 as varchar),
        project_id: 'proj_' || cast(h2 % 12 as varchar),
        cache_read_input_tokens: (h2 % 6000) // 2,
        cache_write_input_tokens: (h2 % 6000) // 10,
        cache_write_ttl: '5m',
        reasoning_tokens: case when h % 8 = 5 then (20 + h % 900) // 2 else 0 end,
        batch: h % 20 = 0,
        service_tier: ['default', 'priority', 'flex', 'batch'][1 + h2 % 4],
        status: case when h % 50 = 0 then 'error' else 'ok' end,
        outcome: case when h % 3 = 0 then 'success' else null end,
        quality_score: round((h % 1000) / 1000.0, 3),
        prompt_template_id: 'tpl_' || cast(h % 300 as varchar),
        prompt_prefix_hash: md5(cast(h % 300 as varchar)),
        prompt_preview: case when h % 40000 = 11
            then 'Call me at +1 415 555 0132 or card 4111 1111 1111 1111'
            else 'Summarise the following support ticket for the agent' end,
        metadata: {{
          ticket: 'T-' || cast(h2 % 99999 as varchar),
          note: case when h2 % 40000 = 3 then 'user ip 203.0.113.9 ssn 123-45-6789'
                     else 'routine' end
        }},
        cost_usd: round((h2 % 100000) / 1e6, 6)
      }})::varchar as line
    from base
  ),
  bad as (
    select * from (values
      (-1, 'this is not json'),
      (-2, '[1, 2, 3]'),
      (-3, '{{"request_id": "bad_1", "timestamp": "2026-11-01T10:00:00Z", "provider": "openai"}}'),
      (-4, '{{"request_id": "bad_2", "timestamp": "yesterday", "provider": "openai",
           "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}}'),
      (-5, '{{"request_id": "bad_3", "timestamp": "2026-11-01T10:00:00Z", "provider": "openai",
           "model": "gpt-4o", "input_tokens": -10, "output_tokens": 5,
           "customer_id": "bob@example.org"}}'),
      (-6, '{{"request_id": "req_0000000001", "timestamp": "2026-11-01T10:00:00Z",
           "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}}')
    ) v(i, line)
  )
  select replace(line, chr(10), ' ') as line from (
    select cast(i as double) as i, line from rec
    union all select (-i) * ({rows} // 7) + 0.5, line from bad
  ) order by i
) to '{path}' (format csv, header false, quote '', escape '', delimiter '\\x1f')
"""


def generate(path: Path, rows: int, seed: int = 7, day: date = LOAD_DATE) -> Path:
    """Write ``rows`` realistic native records (+6 bad or duplicate lines) to ``path``."""
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(_GENERATE_SQL.format(rows=rows, seed=seed, day=day.isoformat(), path=path))
    con.close()
    return path


_BARE = """
import sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("create table t as select * from read_json(?, ignore_errors=true)", [sys.argv[1]])
print(con.execute("select count(*) from t").fetchone()[0])
con.close()
"""

# The floor: only the part the format makes every implementation pay, nothing else (no typing,
# rules, dedupe, redaction, staging): the same bare read, plus tokenbook's line pass (every
# line's key list, which read_json cannot give, for the unknown fields the format keeps).
_FLOOR = """
import sys, duckdb
from pathlib import Path
from ingestion.gateway import native
con = duckdb.connect(sys.argv[2])
source = native._lines_source(Path(sys.argv[1]))
native.line_pass(con, source, native._good_key_hashes(con, source), "lines")
con.execute("create table t as select * from read_json(?, ignore_errors=true)", [sys.argv[1]])
print(con.execute("select count(*) from t").fetchone()[0])
con.close()
"""

# The ingest child: the installed command's app (same code as the `tokenbook` script),
# then a check that Great Expectations was never imported on the ingest path.
_INGEST = """
import sys
from tokenbook.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("great_expectations imported:", "great_expectations" in sys.modules)
"""


def _warm(path: Path, chunk: int = 1 << 24) -> None:
    """Read ``path`` through once (it then sits in the OS page cache, as for every child)."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(chunk):
            pass


def _child(argv: list[str], env: dict | None = None) -> dict:
    """Run ``argv`` as a child process; its wall seconds (as the parent sees them, start-up
    included), CPU seconds (user + sys, all its threads) and peak RSS (MB), from wait4 on
    exactly that child, and its stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({' '.join(argv[:4])} ...):\n{stderr[-4000:]}")
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--memory", action="store_true", help="report peak RSS of each run")
    ap.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    ap.add_argument("--file", type=Path, help="use this native JSONL file instead of generating")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of (bare, ingest); medians are reported (default 3)")
    ap.add_argument("--gzip", action="store_true",
                    help="time the file gzipped (level 1, as log shippers write it): the "
                         "nightly's usual gateway-D.jsonl.gz")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        generate(args.keep, args.rows)
        return

    with tempfile.TemporaryDirectory(prefix="tokenbook-bench-") as tmp:
        tmpdir = Path(tmp)
        if args.file:
            path = args.file
            print(f"using {path} ({path.stat().st_size / 1e6:,.0f} MB)")
        else:
            path = args.keep or tmpdir / "gateway.jsonl"
            t0 = time.perf_counter()
            # in a child: this process stays small, so a child's peak RSS (which starts from
            # its parent's at fork) is its own
            subprocess.run([sys.executable, __file__, "--generate-only", "--rows", str(args.rows),
                            "--keep", str(path)], check=True)
            gen_s = time.perf_counter() - t0
            size_mb = path.stat().st_size / 1e6
            print(f"generated {args.rows:,} records (+6 bad/duplicate lines), {size_mb:,.0f} MB "
                  f"in {gen_s:.1f} s: {path}")

        if args.gzip and not path.name.endswith(".gz"):
            import gzip
            import shutil

            t0 = time.perf_counter()
            gz = tmpdir / (path.name + ".gz")
            with open(path, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 16 << 20)
            path = gz
            print(f"gzipped (level 1): {path.stat().st_size / 1e6:,.0f} MB in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)

        # Read the file once untimed: otherwise the first child of round 1 (the bare read)
        # alone reads it from disk while the others find it in the page cache (a 5M-row file
        # was 4 GB: that skewed one-round ratios by seconds).
        t0 = time.perf_counter()
        _warm(path)
        file_size = path.stat().st_size
        print(f"read once into the page cache (untimed): {time.perf_counter() - t0:.1f} s",
              flush=True)
        env = dict(os.environ, TOKENBOOK_PII_KEY="bench-key", COLUMNS="120")
        from ingestion.gateway import jsonl_scan

        one_pass = jsonl_scan.available() and env.get("TOKENBOOK_ONE_PASS", "1").strip() != "0"
        bares, ingests, floors, reports, alones = [], [], [], [], []
        for k in range(args.repeat):
            # alternate the two, each on a fresh warehouse file, so drift hits both alike
            bare = _child([sys.executable, "-c", _BARE, str(path), str(tmpdir / f"bare{k}.duckdb")])
            bare["rows"] = int(bare["stdout"].strip().splitlines()[-1])
            report_path = tmpdir / f"report{k}.json"
            ingest = _child(
                [sys.executable, "-c", _INGEST, "ingest", "gateway", str(path),
                 "--date", LOAD_DATE.isoformat(),
                 "--warehouse", f"duckdb:///{tmpdir / f'wh{k}.duckdb'}",
                 "--report-json", str(report_path)],
                env=env,
            )
            floor = _child([sys.executable, "-c", _FLOOR, str(path),
                            str(tmpdir / f"floor{k}.duckdb")])
            if one_pass:
                # the same command with the one-pass reader switched off: DuckDB's readers alone
                alones.append(_child(
                    [sys.executable, "-c", _INGEST, "ingest", "gateway", str(path),
                     "--date", LOAD_DATE.isoformat(),
                     "--warehouse", f"duckdb:///{tmpdir / f'alone{k}.duckdb'}"],
                    env=dict(env, TOKENBOOK_ONE_PASS="0"),
                ))
            floors.append(floor)
            reports.append(json.loads(report_path.read_text()))
            bares.append(bare)
            ingests.append(ingest)
            alone = (f", DuckDB alone {alones[-1]['seconds']:.2f} s "
                     f"({alones[-1]['seconds'] / bare['seconds']:.2f}x)" if one_pass else "")
            print(f"round {k + 1}/{args.repeat}: bare {bare['seconds']:.2f} s, "
                  f"ingest {ingest['seconds']:.2f} s ({ingest['seconds'] / bare['seconds']:.2f}x), "
                  f"floor {floor['seconds']:.2f} s ({floor['seconds'] / bare['seconds']:.2f}x)"
                  + alone, flush=True)
            for f in tmpdir.glob(f"*{k}.duckdb*"):
                f.unlink()

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    bare_s, bare_cpu = med(bares, "seconds"), med(bares, "cpu_seconds")
    ing_s, ing_cpu = med(ingests, "seconds"), med(ingests, "cpu_seconds")
    report = reports[[r["seconds"] for r in ingests].index(
        sorted(r["seconds"] for r in ingests)[len(ingests) // 2])]
    stages = report["timings"]
    n = f"median of {args.repeat}" if args.repeat > 1 else "one run"
    print(f"bare read_json into a table : {bare_s:6.2f} s wall, {bare_cpu:6.2f} s CPU  "
          f"({bares[0]['rows']:,} rows, ignore_errors=true: the strict default fails on this "
          f"file's bad lines; {n})")
    print(f"tokenbook ingest gateway    : {ing_s:6.2f} s wall, {ing_cpu:6.2f} s CPU  "
          f"({report['rows_loaded']:,} loaded, {report['rows_quarantined']} quarantined, "
          f"{report['rows_duplicate']} duplicates; the CLI command, start-up included; {n})")
    rounds = [i["seconds"] / b["seconds"] for i, b in zip(ingests, bares, strict=True)]
    print(f"ratio                       : {ing_s / bare_s:6.2f}x wall, "
          f"{ing_cpu / bare_cpu:.2f}x CPU  (target <= 2.0x); median of the rounds' own "
          f"ratios {statistics.median(rounds):.2f}x ({', '.join(f'{r:.2f}' for r in rounds)})")
    from ingestion.gateway import native

    gzipped = path.name.endswith(".gz")
    least = native.ONE_PASS_MIN_GZIP_BYTES if gzipped else native.FAST_MIN_BYTES
    if file_size < least:
        reader = (f"DuckDB's exact single pass (a {'gzip ' if gzipped else ''}file under "
                  f"{least >> 20} MB: read with the day's other small files, together)")
    elif one_pass:
        reader = "the one-pass reader (ingestion/gateway/_jsonl.c, each line parsed once)"
    else:
        reader = ("DuckDB's readers alone (the one-pass reader is not built, was built from "
                  "another version of its source, or TOKENBOOK_ONE_PASS=0: `make install` "
                  "builds it)")
    print(f"reader                      : {reader}")
    if alones:
        al_s, al_cpu = med(alones, "seconds"), med(alones, "cpu_seconds")
        print(f"same ingest, DuckDB alone   : {al_s:6.2f} s wall, {al_cpu:6.2f} s CPU = "
              f"{al_s / bare_s:.2f}x wall, {al_cpu / bare_cpu:.2f}x CPU (TOKENBOOK_ONE_PASS=0: "
              + ("DuckDB's exact single pass, its JSON functions on every line)" if gzipped
                 else "the line pass and read_json, each line parsed twice)"))
    fl_s, fl_cpu = med(floors, "seconds"), med(floors, "cpu_seconds")
    print(f"floor                       : {fl_s:6.2f} s wall, {fl_cpu:6.2f} s CPU = "
          f"{fl_s / bare_s:.2f}x wall, {fl_cpu / bare_cpu:.2f}x CPU: the bare read plus only "
          "what no implementation on DuckDB's readers alone can skip (the line pass for "
          "unknown fields); the one-pass reader parses each line once and can go under it")
    imported = {r["stdout"].strip().splitlines()[-1] for r in ingests}
    print(f"GX on the ingest path       : {', '.join(sorted(imported))} "
          "(the suites run in their own step, `tokenbook check`)")
    print("ingest stages (s)           : " + json.dumps(
        {k: round(v, 2) for k, v in stages.items()}))
    if args.memory:
        print(f"peak RSS bare read_json     : {max(r['rss_mb'] for r in bares):,.0f} MB "
              "(DuckDB's default limit)")
        print(f"peak RSS tokenbook ingest   : {max(r['rss_mb'] for r in ingests):,.0f} MB  "
              "(target < 3000 MB)")


if __name__ == "__main__":
    main()
