"""Benchmark: full dbt build of the calls fact on N calls, then an incremental run after one
more day arrives, then one after a day five weeks back is restated.

    .venv/bin/python bench/transform.py --calls 10000000 [--days 90] [--keep DIR]

Raw rows are generated directly in DuckDB with SQL (range() + hashes): a realistic spread over
the providers and model ids gateways log (aliases, prefixes, Bedrock regional ids), invented
features and segments (~2% untagged), prompt caching, batch and priority calls, a few unknown models, and a
day-shaped load schedule. Then:

1. `dbt seed` (not timed) and `dbt run --select +fct_llm_calls mart_unpriced_calls` on all days;
2. one more day of calls (N / days) lands, plus late records for the previous days and a few
   re-sent request ids; `dbt run` of the same selection (incremental: the new partition);
3. the load date five weeks before the last is restated as `tokenbook ingest gateway --date D`
   would: 40% of its records gone, a tenth of the rest with other token counts, a new
   raw.load_audit row; `dbt run` again (incremental: exactly the call dates that load touches).

Prints, for each run, the models' execution time summed from target/run_results.json and the
wall time of the dbt invocation, and the ratios incremental / full (target <= 0.10).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from core.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SELECT = ["+fct_llm_calls", "mart_unpriced_calls"]

# (provider as logged, model as logged, weight in %): the demo's mix, as gateways write it.
MODELS: list[tuple[str, str, int]] = [
    ("openai", "gpt-4o-mini", 18),
    ("openai", "gpt-4.1", 8),
    ("openai", "openai/gpt-4.1-nano", 6),
    ("openai", "o4-mini", 5),
    ("openai", "gpt-5-mini", 5),
    ("anthropic", "claude-sonnet-4-5-20250929", 10),
    ("anthropic", "claude-haiku-4-5", 8),
    ("vertex_ai", "gemini-2.5-flash", 9),
    ("google", "gemini-2.5-flash-lite", 5),
    ("google", "vertex_ai/gemini-2.5-pro", 5),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 6),
    ("aws_bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", 4),
    ("azure", "gpt-4.1-mini", 5),
    ("azure_openai", "gpt-4o", 5),
    ("self_hosted", "llama-ft-support-v3", 1),
]
# invented feature names, not the demo company's
FEATURES = [
    "invoice_triage",
    "policy_qa",
    "lead_scoring",
    "kb_lookup",
    "outreach_writer",
    "lease_parser",
    "call_recap",
]
SEGMENTS = ["enterprise", "mid_market", "smb", "free_tier"]
# feature -> owning team (and the team's cost centre): one team per feature, two share a centre
OWNERS = {
    "invoice_triage": ("ops-west", "FIN-10"),
    "policy_qa": ("content", "FIN-20"),
    "lead_scoring": ("platform", "FIN-30"),
    "kb_lookup": ("kb-team", "FIN-20"),
    "outreach_writer": ("revenue", "FIN-40"),
    "lease_parser": ("real-estate", "FIN-50"),
    "call_recap": ("workplace", "FIN-20"),
}


def write_bench_config(folder: Path) -> Path:
    """The bench organisation's configuration: teams, features and a 15% Azure discount."""
    folder.mkdir(parents=True, exist_ok=True)
    outcome = "a logical request whose final attempt has outcome success"
    teams = sorted({team_cc for team_cc in OWNERS.values()})
    (folder / "teams.csv").write_text(
        "team,cost_centre,cost_centre_name,business_unit\n"
        + "".join(f"{t},{cc},{cc},bench\n" for t, cc in teams), encoding="utf-8")
    (folder / "features.csv").write_text(
        "feature,unit_of_work,outcome_rule,owner_team,budget_per_outcome_usd,quality_bar,"
        "value_per_outcome_usd,launched_on\n"
        + "".join(f"{f},request,{outcome},{t},0.05,0.80,1.00,2025-01-01\n"
                  for f, (t, _) in OWNERS.items()), encoding="utf-8")
    (folder / "negotiated_prices.csv").write_text(
        "provider,model,valid_from,valid_to,discount_pct,input_per_mtok,cache_read_per_mtok,"
        "cache_write_per_mtok,output_per_mtok,note\n"
        "azure_openai,*,2025-01-01,,15,,,,,an Azure commitment at 15% off list\n",
        encoding="utf-8")
    return folder


def _case_by_weight(hash_expr: str, column: int) -> str:
    parts, low = [], 0
    for item in MODELS:
        high = low + item[2]
        parts.append(f"when {hash_expr} < {high} then '{item[column]}'")
        low = high
    assert low == 100, low
    return "case " + " ".join(parts) + " end"


def generate_sql(first_id: int, n: int, start_day: str, days: int, late_share: float) -> str:
    """INSERT of n calls with request ids first_id.., load dates start_day + (0..days-1)."""
    features = ", ".join(f"'{f}'" for f in FEATURES)
    segments = ", ".join(f"'{s}'" for s in SEGMENTS)
    late_per_mille = int(late_share * 1000)
    return f"""
insert into raw.gateway_calls (
  load_date, request_id, trace_id, attempt, call_ts, provider, model, input_tokens,
  output_tokens, cache_read_input_tokens, cache_write_input_tokens, cache_write_ttl,
  reasoning_tokens, batch, service_tier, status, outcome, quality_score, latency_ms, feature,
  customer_segment, team, customer_id, environment, gateway_cost_usd, source_format,
  source_file, source_line
)
with base as (
  select
    i,
    hash(i, 11) as h1,
    hash(i, 23) as h2,
    hash(i, 37) as h3,
    cast(floor((i - {first_id}) * {days} / {n}) as integer) as day_index
  from range({first_id}, {first_id + n}) t(i)
),
shaped as (
  select
    *,
    date '{start_day}' + day_index as load_date,
    -- a late record was called 1-3 days before the load that brought it
    case when h3 % 1000 < {late_per_mille} then 1 + cast(h3 % 3 as integer) else 0 end
      as late_days,
    cast(h1 % 100 as integer) as model_pick,
    cast(200 + (h2 % 3000) * (1 + h1 % 4) as bigint) as prompt_tokens
  from base
)
select
  load_date,
  'req-' || i as request_id,
  'trace-' || (i // 2) as trace_id,
  cast(1 + i % 2 as integer) as attempt,
  (load_date - late_days) + to_seconds(cast(h2 % 86400 as bigint)) as call_ts,
  {_case_by_weight("model_pick", 0)} as provider,
  {_case_by_weight("model_pick", 1)} as model,
  prompt_tokens as input_tokens,
  cast(20 + h3 % 900 as bigint) as output_tokens,
  case when h2 % 3 = 0 then prompt_tokens // 2 else 0 end as cache_read_input_tokens,
  case when h2 % 17 = 0 then prompt_tokens // 4 else 0 end as cache_write_input_tokens,
  case when h2 % 17 = 0 then (case when h3 % 5 = 0 then '1h' else '5m' end) end
    as cache_write_ttl,
  cast(h3 % 200 as bigint) as reasoning_tokens,
  h1 % 20 = 0 as batch,
  case when h1 % 20 = 0 then 'batch' when h1 % 50 = 1 then 'priority' else 'default' end
    as service_tier,
  case when h2 % 100 < 2 then 'error' else 'ok' end as status,
  case when h2 % 100 < 2 then 'failure' when h3 % 10 < 7 then 'success' else null end
    as outcome,
  (h3 % 1000) / 1000.0 as quality_score,
  200.0 + (h1 % 5000) as latency_ms,
  case when h3 % 50 = 0 then null else [{features}][1 + cast(h3 % 7 as integer)] end as feature,
  case when h2 % 50 = 0 then null else [{segments}][1 + cast(h2 % 4 as integer)] end
    as customer_segment,
  null as team,
  'cust-' || (h1 % 5000) as customer_id,
  'prod' as environment,
  cast(prompt_tokens * 0.000001 as decimal(38,9)) as gateway_cost_usd,
  'native' as source_format,
  'gateway-' || load_date || '.jsonl' as source_file,
  i as source_line
from shaped
"""


def model_seconds(target: Path) -> float:
    results = json.loads((target / "target" / "run_results.json").read_text())["results"]
    return sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keep", type=Path, default=None, help="keep the warehouse here")
    args = parser.parse_args(argv)

    import duckdb

    from tokenbook.dbt import ensure_raw_tables, run_dbt

    base = args.keep or Path(tempfile.mkdtemp(prefix="tokenbook-bench-transform-"))
    base.mkdir(parents=True, exist_ok=True)
    db = base / "bench.duckdb"
    if db.exists():
        db.unlink()
    # an organisation's configuration folder (its features' teams and cost centres, an Azure
    # discount) so the bench attributes and prices every tagged call, as a configured org does
    settings = load_settings(warehouse=f"duckdb:///{db}",
                             config_dir=str(write_bench_config(base / "config")))
    ensure_raw_tables(settings)

    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(generate_sql(0, args.calls, "2026-01-01", args.days, late_share=0.01))
    n_raw = con.execute("select count(*) from raw.gateway_calls").fetchone()[0]
    con.close()
    print(f"generated {n_raw:,} raw calls over {args.days} days in {time.perf_counter() - t0:.1f}s")

    target = base / "dbt"
    run_dbt(["seed"], settings, target_path=target)

    t0 = time.perf_counter()
    run_dbt(["run", "--select", *SELECT], settings, target_path=target)
    full_wall = time.perf_counter() - t0
    full_models = model_seconds(target)

    per_day = max(1, args.calls // args.days)
    next_day = f"2026-01-01'::date + {args.days}"
    con = duckdb.connect(str(db))
    con.execute(
        generate_sql(args.calls, per_day, "2026-01-01", 1, late_share=0.05).replace(
            "date '2026-01-01' + day_index", f"date '{next_day} + day_index"
        )
    )
    # a few request ids re-sent from earlier loads (the latest load must win)
    con.execute(
        "insert into raw.gateway_calls select * replace ("
        f"date '{next_day} as load_date, source_line + 1 as source_line) "
        "from raw.gateway_calls where request_id in ('req-1', 'req-2', 'req-3')"
    )
    con.close()

    t0 = time.perf_counter()
    run_dbt(["run", "--select", *SELECT], settings, target_path=target)
    inc_wall = time.perf_counter() - t0
    inc_models = model_seconds(target)

    # restate the load date five weeks before the last one, as a reload of that date would
    restated = f"2026-01-01'::date + {args.days - 35}"
    con = duckdb.connect(str(db))
    before_day = con.execute(
        f"select count(*) from raw.gateway_calls where load_date = date '{restated}"
    ).fetchone()[0]
    con.execute(
        f"delete from raw.gateway_calls where load_date = date '{restated} "
        "and hash(request_id, 5) % 10 < 4"
    )
    con.execute(
        "update raw.gateway_calls set input_tokens = input_tokens + 100, "
        "output_tokens = output_tokens + 10 "
        f"where load_date = date '{restated} and hash(request_id, 7) % 10 = 0"
    )
    con.execute(
        "insert into raw.load_audit (load_id, source, source_file, load_date, rows_read, "
        "rows_loaded, rows_quarantined, rows_duplicate, started_at, finished_at, status) "
        f"select 'bench-restatement', 'gateway', 'restated.jsonl', date '{restated}, "
        f"count(*), count(*), 0, 0, now(), now(), 'loaded' from raw.gateway_calls "
        f"where load_date = date '{restated}"
    )
    after_day = con.execute(
        f"select count(*) from raw.gateway_calls where load_date = date '{restated}"
    ).fetchone()[0]
    con.close()
    t0 = time.perf_counter()
    run_dbt(["run", "--select", *SELECT], settings, target_path=target)
    restate_wall = time.perf_counter() - t0
    restate_models = model_seconds(target)
    con = duckdb.connect(str(db))
    rebuilt = con.execute(
        "select count(*) from raw.incremental_partitions where invocation_id = ("
        "select invocation_id from raw.incremental_claims where load_id = 'bench-restatement' "
        "and status = 'built')"
    ).fetchone()[0]
    con.close()

    con = duckdb.connect(str(db))
    rows, priced, unpriced_cost = con.execute(
        "select count(*), count(*) filter (where is_priced), "
        "count(*) filter (where not is_priced and list_cost_usd is not null) "
        "from marts.fct_llm_calls"
    ).fetchone()
    expected = con.execute("select count(distinct request_id) from raw.gateway_calls").fetchone()[0]
    con.close()

    print(f"fct_llm_calls: {rows:,} rows ({priced:,} priced); distinct raw calls {expected:,}")
    assert rows == expected and unpriced_cost == 0
    print(f"full build        : models {full_models:8.2f}s   wall {full_wall:8.2f}s")
    print(f"incremental (+1 d): models {inc_models:8.2f}s   wall {inc_wall:8.2f}s")
    print(f"restated day      : models {restate_models:8.2f}s   wall {restate_wall:8.2f}s"
          f"   ({before_day:,} -> {after_day:,} records; {rebuilt} call date(s) rebuilt)")
    print(
        f"ratio incremental/full: models {inc_models / full_models:.3f}   "
        f"wall {inc_wall / full_wall:.3f}   (target models <= 0.10)"
    )
    print(
        f"ratio restated day/full: models {restate_models / full_models:.3f}   "
        f"wall {restate_wall / full_wall:.3f}"
    )
    print(f"warehouse: {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
