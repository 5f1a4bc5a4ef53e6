"""dbt on a real (temporary) DuckDB warehouse: seeds, models, unit tests and data tests green;
model-name resolution of real ids; price versions; incremental late data; the unpriced mart.

Two dbt invocations for the module: a full build, then an incremental build after a new day.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from core.settings import load_settings
from core.warehouse import parse_warehouse
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
from tokenbook.dbt import build
from tokenbook.pricing.default import SNAPSHOT_PATH
from tokenbook.pricing.versions import load_prices

# This models; the marts engineer's marts are built and tested by their own suite.
MY_NODES = [
    "path:models/staging/gateway",
    "path:models/staging/pricing",
    "+fct_llm_calls",
    "int_gateway_duplicates",
    "mart_unpriced_calls",
    "path:seeds/price_book_default.csv",
    "path:seeds/provider_aliases.csv",
    "path:seeds/model_aliases_public.csv",
]
CAUTIOUS = ["--indirect-selection", "cautious"]

# Real ids as gateways, SDKs and bills write them -> (canonical provider, catalogue model).
RESOLUTION_CASES: list[tuple[str, str, str, str | None]] = [
    ("openai", "gpt-4o", "openai", "gpt-4o"),
    ("openai", "gpt-4o-2024-08-06", "openai", "gpt-4o-2024-08-06"),
    ("openai", "openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("litellm", "openai/gpt-4.1", "openai", "gpt-4.1"),
    ("openai", "o4-mini-2025-04-16", "openai", "o4-mini-2025-04-16"),
    ("OpenAI", "GPT-5-mini", "openai", "gpt-5-mini"),
    ("openai", "chatgpt-4o-latest", "openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5-20251001", "anthropic", "claude-haiku-4-5-20251001"),
    ("anthropic", "anthropic/claude-opus-4-5-20251101", "anthropic", "claude-opus-4-5-20251101"),
    ("anthropic", "claude-opus-4-6-20260205", "anthropic", "claude-opus-4-6-20260205"),
    (
        "bedrock",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "bedrock",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    (
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    (
        "aws_bedrock",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "bedrock",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    (
        "bedrock",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
        "bedrock",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    ("bedrock", "bedrock/converse/us.amazon.nova-pro-v1:0", "bedrock", "us.amazon.nova-pro-v1:0"),
    ("bedrock", "amazon.nova-lite-v1:0", "bedrock", "amazon.nova-lite-v1:0"),
    ("bedrock", "meta.llama3-1-70b-instruct-v1:0", "bedrock", "meta.llama3-1-70b-instruct-v1:0"),
    (
        "bedrock",
        "apac.anthropic.claude-sonnet-4-20250514-v1:0",
        "bedrock",
        "apac.anthropic.claude-sonnet-4-20250514-v1:0",
    ),
    (
        "bedrock_converse",
        "mistral.mistral-large-2407-v1:0",
        "bedrock",
        "mistral.mistral-large-2407-v1:0",
    ),
    (
        "bedrock",
        "ca.anthropic.claude-haiku-4-5-20251001-v1:0",
        "bedrock",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    ("google", "gemini-2.5-pro", "vertex_ai", "gemini-2.5-pro"),
    ("vertex_ai", "gemini-2.5-flash", "vertex_ai", "gemini-2.5-flash"),
    # Google AI Studio is its own provider (billing account), never priced as Vertex AI
    ("gemini", "gemini-2.5-flash-lite", "gemini", "gemini-2.5-flash-lite"),
    ("vertex_ai", "publishers/google/models/gemini-2.5-pro", "vertex_ai", "gemini-2.5-pro"),
    (
        "vertex_ai",
        "projects/orbit-prod/locations/us-central1/publishers/google/models/gemini-2.5-flash",
        "vertex_ai",
        "gemini-2.5-flash",
    ),
    ("vertex_ai", "gemini-2.5-pro-preview-05-06", "vertex_ai", "gemini-2.5-pro"),
    ("vertex_ai", "claude-sonnet-4-5@20250929", "vertex_ai", "claude-sonnet-4-5@20250929"),
    ("google", "vertex_ai/gemini-2.5-pro", "vertex_ai", "gemini-2.5-pro"),
    ("vertex_ai", "gemini-2.0-flash-001", "vertex_ai", "gemini-2.0-flash"),
    ("azure", "gpt-4o", "azure_openai", "gpt-4o"),
    ("azure_openai", "gpt-4o-2024-08-06", "azure_openai", "gpt-4o-2024-08-06"),
    ("azure", "ledger-gpt4o", "azure_openai", "gpt-4o"),
    ("azure", "gpt-35-turbo-0125", "azure_openai", "gpt-35-turbo"),
    ("azure", "azure/gpt-4.1-mini", "azure_openai", "gpt-4.1-mini"),
    # never priced with another vendor's price, never guessed
    ("bedrock", "claude-sonnet-4-5", "bedrock", None),
    ("zephyr_ai", "mystery-model-9000", "zephyr_ai", None),
]


# An organisation's configuration folder with invented names (not the demo company's).
OUTCOME = "a logical request whose final attempt has outcome success"
ORG_CONFIG = {
    "teams.csv": (
        "team,cost_centre,cost_centre_name,business_unit\n"
        "ops-west,FIN-21,Western Operations,Operations\n"
        "data-platform,FIN-23,Data Platform,Engineering\n"
    ),
    "features.csv": (
        "feature,unit_of_work,outcome_rule,owner_team,budget_per_outcome_usd,quality_bar,"
        "value_per_outcome_usd,launched_on\n"
        f"invoice_triage,invoice,{OUTCOME},ops-west,0.0300,0.80,4.50,2025-01-15\n"
        f"lead_scoring,lead,{OUTCOME},data-platform,0.0700,0.85,6.00,2025-02-10\n"
    ),
    "model_aliases.csv": (
        "provider,raw_model,match_type,catalog_provider,catalog_model,note\n"
        "azure_openai,ledger-gpt4o,exact,azure_openai,gpt-4o,the organisation's Azure deployment\n"
    ),
    "negotiated_prices.csv": (
        "provider,model,valid_from,valid_to,discount_pct,input_per_mtok,cache_read_per_mtok,"
        "cache_write_per_mtok,output_per_mtok,note\n"
        "azure_openai,*,2025-01-01,,15,,,,,an Azure commitment at 15% off list\n"
    ),
}


def _insert_calls(con, rows: list[dict]) -> None:
    cols = [c for c, _, _ in GATEWAY_CALLS_COLUMNS]
    con.executemany(
        f"insert into raw.gateway_calls ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
        [[r.get(c) for c in cols] for r in rows],
    )


def _call(request_id: str, load_date: str, ts: str, provider: str, model: str, **kw) -> dict:
    row = {
        "load_date": load_date,
        "request_id": request_id,
        "call_ts": ts,
        "provider": provider,
        "model": model,
        "input_tokens": 1000,
        "output_tokens": 100,
        "source_format": "native",
        "source_file": f"gateway-{load_date}.jsonl",
        "source_line": 1,
    }
    row.update(kw)
    return row


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dbt_build")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    # the organisation's own configuration: invented features, teams and an Azure deployment
    config = base / "config"
    config.mkdir()
    for name, text in ORG_CONFIG.items():
        (config / name).write_text(text, encoding="utf-8")
    settings = load_settings(warehouse=url, config_dir=str(config))
    wh = parse_warehouse(url)
    from tokenbook.dbt import ensure_raw_tables

    ensure_raw_tables(settings)
    con = duckdb.connect(str(wh.path))
    rows = [
        _call(f"res-{i:02d}", "2026-02-02", "2026-02-02 12:00:00", p, m, source_line=i)
        for i, (p, m, _, _) in enumerate(RESOLUTION_CASES)
    ]
    rows += [
        # priced before and after the gpt-4o price change loaded below (valid from 2026-03-01)
        _call(
            "old-price",
            "2026-02-28",
            "2026-02-28 23:00:00",
            "openai",
            "gpt-4o",
            input_tokens=1_000_000,
            output_tokens=0,
            feature="invoice_triage",
            customer_segment="smb",
        ),
        _call(
            "new-price",
            "2026-03-01",
            "2026-03-01 01:00:00",
            "openai",
            "gpt-4o",
            input_tokens=1_000_000,
            output_tokens=0,
            feature="invoice_triage",
        ),
        # re-sent in a later load with corrected tokens: the later load wins
        _call(
            "resent",
            "2026-03-01",
            "2026-03-01 02:00:00",
            "openai",
            "gpt-4o",
            input_tokens=10,
            output_tokens=0,
        ),
        _call(
            "resent",
            "2026-03-02",
            "2026-03-01 02:00:00",
            "openai",
            "gpt-4o",
            input_tokens=1_000_000,
            output_tokens=0,
            source_line=7,
        ),
    ]
    _insert_calls(con, rows)
    con.close()

    # a newer price map: gpt-4o input drops from $2.50 to $2.00 per 1M, one new model
    with gzip.open(SNAPSHOT_PATH, "rt", encoding="utf-8") as fh:
        snapshot = json.load(fh, parse_float=Decimal)
    snapshot["gpt-4o"]["input_cost_per_token"] = Decimal("2E-6")
    snapshot["gpt-test-new"] = {**snapshot["gpt-4o-mini"]}
    newer = base / "model_prices_and_context_window.json"
    newer.write_text(json.dumps(snapshot, default=float), encoding="utf-8")
    loaded = load_prices(newer, wh, date(2026, 3, 1))
    reloaded = load_prices(newer, wh, date(2026, 3, 5))

    target = base / "dbt"
    first = build(settings, select=MY_NODES, target_path=target, extra_args=CAUTIOUS)

    # the next day arrives, with a late record for 02-28 and a re-send of an old call
    con = duckdb.connect(str(wh.path))
    _insert_calls(
        con,
        [
            _call(
                "day2-a",
                "2026-03-03",
                "2026-03-03 09:00:00",
                "anthropic",
                "claude-sonnet-4-5",
                feature="lead_scoring",
                customer_segment="enterprise",
                team="data-platform",
            ),
            _call("late", "2026-03-03", "2026-02-28 22:00:00", "openai", "gpt-4o"),
            _call(
                "res-00",
                "2026-03-03",
                "2026-02-02 12:00:00",
                "openai",
                "gpt-4o",
                input_tokens=2000,
                source_line=3,
            ),
        ],
    )
    con.close()
    second = build(
        settings,
        select=["fct_llm_calls", "mart_unpriced_calls"],
        target_path=target,
        extra_args=CAUTIOUS,
    )
    con = duckdb.connect(str(wh.path))
    yield {
        "con": con,
        "loaded": loaded,
        "reloaded": reloaded,
        "first": first,
        "second": second,
        "target": target,
    }
    con.close()


def _fact(con, call_id: str) -> dict:
    cur = con.execute("select * from marts.fct_llm_calls where call_id = ?", [call_id])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, f"{call_id}: {len(rows)} rows"
    return dict(zip(names, rows[0], strict=True))


def test_build_is_green_with_unit_tests(warehouse):
    run_results = json.loads((warehouse["target"] / "target" / "run_results.json").read_text())
    # the second (incremental) run overwrote run_results; the first summary is kept
    assert "error" not in warehouse["first"] and "fail" not in warehouse["first"]
    assert "success" in warehouse["first"] or "pass" in warehouse["first"]
    assert all(r["status"] in {"success", "pass"} for r in run_results["results"])


def test_every_real_id_resolves(warehouse):
    con = warehouse["con"]
    got = {
        (p, m): (prov, cat)
        for p, m, prov, cat in con.execute(
            "select provider_raw, model_raw, provider, catalog_model "
            "from staging.int_model_resolution"
        ).fetchall()
    }
    wrong = {
        (p, m): (got.get((p, m)), (prov, cat))
        for p, m, prov, cat in RESOLUTION_CASES
        if got.get((p, m)) != (prov, cat)
    }
    assert len(RESOLUTION_CASES) >= 30
    assert not wrong, f"resolved (got, expected): {wrong}"


def test_unknown_model_is_never_priced_as_zero(warehouse):
    con = warehouse["con"]
    row = _fact(con, "res-37")
    assert row["model"] == "mystery-model-9000"
    assert row["is_priced"] is False
    assert row["list_cost_usd"] is None and row["effective_cost_usd"] is None
    unpriced = con.execute(
        "select provider, model, call_date, calls, input_tokens, reason "
        "from marts.mart_unpriced_calls order by model"
    ).fetchall()
    assert (
        "zephyr_ai",
        "mystery-model-9000",
        date(2026, 2, 2),
        1,
        1000,
        "model not in price book",
    ) in unpriced
    assert (
        "bedrock",
        "claude-sonnet-4-5",
        date(2026, 2, 2),
        1,
        1000,
        "model not in price book",
    ) in unpriced
    assert len(unpriced) == 2


def test_price_versions_price_each_call_at_its_date(warehouse):
    loaded, reloaded = warehouse["loaded"], warehouse["reloaded"]
    assert (loaded.changed_models, loaded.new_models) == (1, 1)
    assert reloaded.appended == 0  # same map again: nothing new, history untouched
    con = warehouse["con"]
    old, new = _fact(con, "old-price"), _fact(con, "new-price")
    # 1,000,000 input tokens of gpt-4o: $2.50 before 2026-03-01, $2.00 from it
    assert old["list_cost_usd"] == Decimal("2.500000000")
    assert old["price_id"] == "openai/gpt-4o@2000-01-01"
    assert new["list_cost_usd"] == Decimal("2.000000000")
    assert new["price_id"] == "openai/gpt-4o@2026-03-01"
    history = con.execute(
        "select valid_from, valid_to, input_per_mtok from staging.int_price_book "
        "where provider = 'openai' and model = 'gpt-4o' order by valid_from"
    ).fetchall()
    assert history == [
        (date(2000, 1, 1), date(2026, 3, 1), Decimal("2.5")),
        (date(2026, 3, 1), None, Decimal("2")),
    ]


def test_latest_load_wins_and_incremental_picks_up_late_data(warehouse):
    con = warehouse["con"]
    resent = _fact(con, "resent")
    assert resent["load_date"] == date(2026, 3, 2)
    assert resent["list_cost_usd"] == Decimal("2.000000000")
    # added after the first build: the incremental run brought them in
    assert _fact(con, "day2-a")["team"] == "data-platform"
    late = _fact(con, "late")
    assert late["call_date"] == date(2026, 2, 28) and late["is_priced"] is True
    # an old call re-sent in the new load replaced its row (2,000 tokens now)
    assert _fact(con, "res-00")["input_tokens"] == 2000
    n, distinct = con.execute(
        "select count(*), count(distinct call_id) from marts.fct_llm_calls"
    ).fetchone()
    assert n == distinct == len(RESOLUTION_CASES) + 5
    # the incremental run rebuilt exactly the call dates the new load 2026-03-03 touched: its
    # own day, the late record's day and the re-sent old call's day
    run_sql = (
        warehouse["target"]
        / "target"
        / "compiled"
        / "tokenbook"
        / "models"
        / "marts"
        / "fct_llm_calls.sql"
    ).read_text()
    assert (
        "where call_date in (cast('2026-02-02' as date), cast('2026-02-28' as date), "
        "cast('2026-03-03' as date))"
    ) in run_sql
    dups = con.execute(
        "select sum(rows_superseded) from staging.int_gateway_duplicates"
    ).fetchone()[0]
    assert dups == 2


def test_attribution_falls_back_to_unattributed(warehouse):
    row = _fact(warehouse["con"], "new-price")
    assert (row["feature"], row["customer_segment"]) == ("invoice_triage", "(unattributed)")
    assert (row["team"], row["cost_centre"]) == ("ops-west", "FIN-21")
    assert row["currency"] == "USD"


def test_every_raw_source_the_loads_write_exists_before_the_first_load(tmp_path):
    """dbt's sources on the raw tables that Python loads write (gateway, billing, evals) are
    all created, empty, by ensure_raw_tables: a first `dbt build` never meets a missing one."""
    import yaml

    from tokenbook.dbt import DBT_PROJECT_DIR, ensure_raw_tables

    declared = set()
    for path in (DBT_PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml"):
        for src in yaml.safe_load(path.read_text())["sources"]:
            if src["name"] in {"gateway", "billing", "evals"}:
                declared |= {t["name"] for t in src["tables"]}
    assert {"gateway_calls", "validation_results", "billing_lines", "evals"} <= declared
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    ensure_raw_tables(settings)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        have = {t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()}
    finally:
        con.close()
    assert declared - have == set()


def test_every_raw_source_is_in_the_one_list_of_raw_tables():
    """Each table a dbt source reads from the raw layer (all but the organisation's config_*
    tables, which tokenbook/orgconfig writes before every dbt command) is created by
    ensure_raw_tables: a new source left out of raw_tables() would break a fresh warehouse."""
    import yaml

    from tokenbook.dbt import DBT_PROJECT_DIR, raw_tables

    declared = set()
    for path in (DBT_PROJECT_DIR / "models").glob("*/*/_*__sources.yml"):
        for src in yaml.safe_load(path.read_text())["sources"]:
            if "_raw" in src["schema"] and src["name"] != "config":
                declared |= {t["name"] for t in src["tables"]}
    assert {"gateway_calls", "pii_redactions", "billing_lines", "evals", "fx_rates",
            "price_book_versions"} <= declared
    assert declared - set(raw_tables()) == set()


def test_bigquery_raw_tables_are_created_as_their_loaders_create_them():
    """On BigQuery the raw dataset (in the configured location) and every raw table are
    created by one script before dbt, each table partitioned and clustered exactly as its
    loader's own DDL creates it, so the first load appends to it instead of failing."""
    import sqlglot

    from ingestion.billing.bigquery import publish_script
    from ingestion.raw.sinks.bigquery import shared_publish_script
    from tokenbook.dbt import ensure_raw_tables

    class Client:
        def __init__(self):
            self.scripts = []

        def query(self, sql, location=None):
            self.scripts.append((sql, location))
            return self

        def result(self):
            return []

    client = Client()
    settings = load_settings(warehouse="bigquery://orbit-ledger/books", bq_location="EU")
    ensure_raw_tables(settings, client=client)
    [(script, location)] = client.scripts
    assert location == "EU"
    statements = [s.strip() for s in script.split(";\n") if s.strip()]
    for sql in statements:
        sqlglot.parse_one(sql.rstrip(";"), read="bigquery")
    assert statements[0] == ("CREATE SCHEMA IF NOT EXISTS `orbit-ledger`.`books_raw` "
                             "OPTIONS (location = 'EU')")
    ddl = {s.split("`")[1].rsplit(".", 1)[1]: s.rstrip(";") for s in statements[1:]}
    assert ddl["gateway_calls"].endswith("PARTITION BY _PARTITIONDATE CLUSTER BY feature")
    # the loaders' own DDL, word for word
    billing = publish_script("orbit-ledger.books_raw", {"billing_lines": "s1", "quarantine": "s2",
                                                       "pii_redactions": "s3", "load_audit": "s4"})
    for table in ("billing_lines", "quarantine", "pii_redactions", "load_audit"):
        assert ddl[table] + ";" in billing, table
    gateway = shared_publish_script("orbit-ledger.books_raw", {"quarantine": "q", "pii_redactions": "p"})
    assert ddl["pii_redactions"] + ";" in gateway
    assert not ddl["evals"].count("PARTITION")
