"""A real organisation, not the demo (issue 15).

A test organisation written here (not the demo generator, no demo name): its gateway logs go
through the README's path (ingest -> transform -> forecast). With no configuration, no mart or
forecast row carries a demo value, effective cost equals list cost and every budget is "not
configured"; with a small configuration (one negotiated price, two budgets, a deployment alias)
exactly those appear. `tokenbook config check` names file, line, column and the fix of each
kind of error, and transform / run / the DAG step refuse an invalid folder with exit 4. Calls of
each newly priced provider are costed against the LiteLLM map's numbers, worked by hand below.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from tokenbook.cli import app
from tokenbook.exitcodes import CONFIG_INVALID
from tokenbook.orgconfig import ConfigInvalid, read_config

START, END = date(2026, 9, 20), date(2026, 11, 20)
PROBE_DAY = date(2026, 11, 18)
FEATURES = ("case_assist", "pr_reviewer", "ledger_digest")
TEAMS = {"case_assist": "claims-eng", "pr_reviewer": "platform-core", "ledger_digest": "finance-ops"}
SEGMENTS = ("retail", "wholesale")
# (provider as logged, model as logged, USD per input token, USD per output token)
DAILY_MODELS = (
    ("openai", "gpt-4o", Decimal("2.5e-6"), Decimal("1e-5")),
    ("openai", "gpt-4o-mini", Decimal("1.5e-7"), Decimal("6e-7")),
    ("anthropic", "claude-haiku-4-5", Decimal("1e-6"), Decimal("5e-6")),
    ("google", "gemini-2.5-flash", Decimal("3e-7"), Decimal("2.5e-6")),
    ("azure_openai", "claims-gpt4o-eu", None, None),  # an Azure deployment name: unpriced
)

# One call (2,000 input tokens, 500 output) per newly priced provider. Per-token prices are
# the LiteLLM map's (litellm 1.110.2, tokenbook/pricing/data/); cost = 2000 x in + 500 x out.
# (provider as logged, model as logged, canonical provider, catalogue model, list cost USD)
PROBES = (
    # mistral/mistral-large-latest: 5e-07 / 1.5e-06 -> 0.001 + 0.00075
    ("mistral", "mistral/mistral-large-latest", "mistral", "mistral-large-latest", "0.00175"),
    # command-a-03-2025 (cohere_chat): 2.5e-06 / 1e-05 -> 0.005 + 0.005
    ("cohere", "command-a-03-2025", "cohere", "command-a-03-2025", "0.01"),
    # deepseek-chat: 2.8e-07 / 4.2e-07 -> 0.00056 + 0.00021
    ("deepseek", "deepseek-chat", "deepseek", "deepseek-chat", "0.00077"),
    # xai/grok-4.20: 1.25e-06 / 2.5e-06 -> 0.0025 + 0.00125
    ("xai", "grok-4.20", "xai", "grok-4.20", "0.00375"),
    # groq/openai/gpt-oss-120b: 1.5e-07 / 6e-07 -> 0.0003 + 0.0003 (a model id with a slash)
    ("groq", "openai/gpt-oss-120b", "groq", "openai/gpt-oss-120b", "0.0006"),
    # the same through a LiteLLM route: groq/openai/gpt-oss-20b: 7.5e-08 / 3e-07
    ("litellm", "groq/openai/gpt-oss-20b", "groq", "openai/gpt-oss-20b", "0.0003"),
    # together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo: 1.04e-06 both -> 2500 x 1.04e-06
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together_ai",
     "meta-llama/llama-3.3-70b-instruct-turbo", "0.0026"),
    # fireworks_ai/accounts/fireworks/models/llama-v3p1-8b-instruct: 1e-07 both -> 2500 x 1e-07
    ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks_ai",
     "accounts/fireworks/models/llama-v3p1-8b-instruct", "0.00025"),
    # perplexity/sonar: 1e-06 both -> 2500 x 1e-06 (per-request search fees are not per token)
    ("perplexity", "sonar", "perplexity", "sonar", "0.0025"),
    # OpenRouter (the provider that bills) resells at the vendor's list price:
    # anthropic claude-haiku-4-5 1e-06 / 5e-06 -> 0.002 + 0.0025
    ("openrouter", "anthropic/claude-haiku-4.5", "openrouter", "claude-haiku-4-5", "0.0045"),
    # Google AI Studio (gemini/gemini-2.5-flash): 3e-07 / 2.5e-06 -> 0.0006 + 0.00125
    ("gemini", "gemini-2.5-flash", "gemini", "gemini-2.5-flash", "0.00185"),
    # azure_ai/Llama-3.3-70B-Instruct: 7.1e-07 both -> 2500 x 7.1e-07
    ("azure_ai", "Llama-3.3-70B-Instruct", "azure_ai", "llama-3.3-70b-instruct", "0.001775"),
    # Bedrock inference-profile ARN -> us.anthropic.claude-sonnet-4-5-20250929-v1:0:
    # 3.3e-06 / 1.65e-05 -> 0.0066 + 0.00825
    ("bedrock", "arn:aws:bedrock:us-east-1:111122223333:inference-profile/"
     "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock",
     "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "0.01485"),
    # Vertex route prefix and dated id: vertex_ai/claude-haiku-4-5@20251001: 1e-06 / 5e-06
    ("vertex_ai", "vertex_ai/claude-haiku-4-5@20251001", "vertex_ai", "claude-haiku-4-5@20251001",
     "0.0045"),
)
# Embeddings and audio billed per token: (provider, model, input tokens, output, catalogue, cost)
PER_TOKEN_OTHER_MODES = (
    # text-embedding-3-small: 2e-08 per input token -> 2000 x 2e-08
    ("openai", "text-embedding-3-small", 2000, 0, "text-embedding-3-small", "0.00004"),
    # cohere/embed-v4.0: 1.2e-07 per input token -> 2000 x 1.2e-07
    ("cohere", "embed-v4.0", 2000, 0, "embed-v4.0", "0.00024"),
    # gpt-4o-mini-transcribe: 1.25e-06 / 5e-06 -> 0.0025 + 0.0025
    ("openai", "gpt-4o-mini-transcribe", 2000, 500, "gpt-4o-mini-transcribe", "0.005"),
)


# ------------------------------------------------------------------------- the test organisation


def write_gateway_logs(folder: Path) -> int:
    """Daily native gateway logs of the test organisation; returns the number of calls."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    day = START
    while day <= END:
        lines = []
        for i in range(24):
            feature = FEATURES[i % 3]
            provider, model, _, _ = DAILY_MODELS[(i + day.toordinal()) % len(DAILY_MODELS)]
            n += 1
            lines.append({
                "request_id": f"{day:%Y%m%d}-{i:03d}",
                "trace_id": f"{day:%Y%m%d}-t{i:03d}",
                "attempt": 1,
                "timestamp": f"{day}T{8 + i % 10:02d}:{i:02d}:00Z",
                "provider": provider,
                "model": model,
                "input_tokens": 900 + 40 * (i % 7) + (day.toordinal() % 5) * 10,
                "output_tokens": 150 + 10 * (i % 5),
                "feature": feature if i % 12 else None,  # one in twelve untagged
                "customer_segment": SEGMENTS[i % 2],
                "team": TEAMS[feature] if i % 12 else None,
                "status": "ok",
                "outcome": "success" if i % 4 else "failure",
            })
        if day == PROBE_DAY:
            probes = [(p, m, 2000, 500) for p, m, *_ in PROBES] + [
                (p, m, i, o) for p, m, i, o, *_ in PER_TOKEN_OTHER_MODES]
            for k, (provider, model, inp, out) in enumerate(probes):
                n += 1
                lines.append({
                    "request_id": f"probe-{k:02d}", "trace_id": f"probe-{k:02d}", "attempt": 1,
                    "timestamp": f"{day}T20:{k:02d}:00Z", "provider": provider, "model": model,
                    "input_tokens": inp, "output_tokens": out, "feature": "ledger_digest",
                    "customer_segment": "retail", "status": "ok", "outcome": "success",
                })
        with gzip.open(folder / f"gateway-{day}.jsonl.gz", "wt") as fh:
            fh.write("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                             for r in lines))
        day += timedelta(days=1)
    return n


def demo_strings() -> tuple[set[str], set[str]]:
    """(values, identifiers) the demo organisation's configuration holds and this organisation
    never wrote: every text cell except providers, models and enumerations. Identifiers (with a
    digit, '_' or '-', and 'acme') are also looked for inside longer text (JSON tags, notes)."""
    from tokenbook.demo.orgconfig import FILES
    from tokenbook.orgconfig.spec import BY_NAME

    skip_columns = {"provider", "model", "catalog_provider", "catalog_model", "ft_provider",
                    "allowed_provider", "fallback_provider", "fallback_model", "match_type",
                    "scope_type", "kind", "allowed_region"}
    ours = set(FEATURES) | set(TEAMS.values()) | set(SEGMENTS) | {m for _, m, *_ in DAILY_MODELS}
    values: set[str] = set()
    for name, text in FILES.items():
        spec = BY_NAME[name]
        for row in csv.DictReader(line for line in text.splitlines() if not line.startswith("#")):
            for col, value in row.items():
                column = spec.column(col)
                if column is None or column.type != "text" or col in skip_columns or column.allowed:
                    continue
                if value and len(value) >= 4 and value not in ours and value != "*":
                    values.add(value)
    values |= {"acme"}
    identifiers = {v for v in values if re.search(r"[0-9_-]", v) or v == "acme"}
    return values, identifiers


def scan_for_demo_strings(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every `table.column: value` of the marts schema (marts and forecast tables) that holds
    a demo string."""
    values, identifiers = demo_strings()
    found = []
    columns = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' and data_type in ('VARCHAR', 'JSON') "
        "order by table_name, column_name").fetchall()
    for table, column in columns:
        cells = {r[0] for r in con.execute(
            f'select distinct cast("{column}" as varchar) from marts."{table}" '
            f'where "{column}" is not null').fetchall()}
        for cell in cells:
            hits = {v for v in identifiers if v.lower() in cell.lower()} | (
                {cell} if cell in values else set())
            if hits:
                found.append(f"{table}.{column}: {cell!r} ({', '.join(sorted(hits))})")
    return found


CONFIG = {
    "teams.csv": "# our teams\nteam,cost_centre,cost_centre_name\n"
                 "claims-eng,CC-7100,Claims\nplatform-core,CC-7200,Platform\n",
    "features.csv": "feature,unit_of_work,owner_team,budget_per_outcome_usd\n"
                    "case_assist,case,claims-eng,\npr_reviewer,review,platform-core,\n",
    "budgets.csv": "feature,monthly_budget_usd\ncase_assist,1500.00\npr_reviewer,400\n",
    "negotiated_prices.csv": "provider,model,valid_from,valid_to,discount_pct,note\n"
                             "openai,gpt-4o,2026-10-15,,20,enterprise agreement 2026\n",
    "model_aliases.csv": "provider,raw_model,match_type,catalog_provider,catalog_model\n"
                         "azure_openai,claims-gpt4o-eu,exact,azure_openai,gpt-4o\n",
}


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    """The test organisation through the README's path, with no configuration at all."""
    from core.warehouse import parse_warehouse
    from tokenbook.runner import RunPlan, run_plan

    base = tmp_path_factory.mktemp("org")
    calls = write_gateway_logs(base / "logs" / "gateway")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    # no --config-dir, no TOKENBOOK_CONFIG_DIR, and no ./config where it runs
    mp = pytest.MonkeyPatch()
    mp.chdir(base)
    try:
        settings = load_settings(warehouse=url, dbt_target_path=str(base / "dbt"))
        assert settings.resolved_config_dir is None
        run_plan(RunPlan(data_dir=base / "logs", report_path=base / "report.html"), settings,
                 parse_warehouse(url))
    finally:
        mp.undo()
    return {"base": base, "url": url, "calls": calls, "path": Path(url.removeprefix("duckdb:///"))}


def _connect(org):
    # same configuration as dbt-duckdb's connection, which stays open in this process
    from core.warehouse import connect_duckdb, parse_warehouse

    return connect_duckdb(parse_warehouse(org["url"]))


def _query(org, sql: str) -> list[tuple]:
    con = _connect(org)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_without_configuration_no_demo_value_reaches_a_mart_or_forecast(org):
    con = _connect(org)
    try:
        found = scan_for_demo_strings(con)
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()}
    finally:
        con.close()
    assert {"forecast_daily", "forecast_monthly", "mart_budget_vs_actual",
            "mart_commit_readiness", "mart_chargeback"} <= tables
    assert found == []


def test_without_configuration_effective_cost_is_list_cost_and_nothing_is_budgeted(org):
    (calls, priced, differ, list_total, centres) = _query(org, """
        select count(*), count(*) filter (where is_priced),
               count(*) filter (where effective_cost_usd is distinct from list_cost_usd),
               sum(list_cost_usd), list(distinct cost_centre)
        from marts.fct_llm_calls""")[0]
    assert calls == org["calls"] and priced < calls and differ == 0 and list_total > 0
    assert centres == ["(unattributed)"]
    assert _query(org, "select distinct budget_status from marts.mart_budget_vs_actual") == [
        ("not configured",)]
    assert _query(org, "select distinct budget_status from marts.mart_cost_per_outcome") == [
        ("not configured",)]
    # no Fermi forecast (no estimates configured) and no feature this organisation never had
    methods = {r[0] for r in _query(org, "select distinct method from marts.forecast_daily")}
    assert "fermi" not in methods and methods
    features = {r[0] for r in _query(
        org, "select distinct feature from marts.forecast_monthly where feature is not null")}
    assert features <= set(FEATURES) | {"(unattributed)"}
    for table in ("mart_policy_violations", "mart_finetune_breakeven"):
        assert _query(org, f"select count(*) from marts.{table}") == [(0,)]


def test_an_unknown_deployment_is_listed_unpriced_as_logged(org):
    rows = _query(org, """
        select provider, model, reason, sum(calls) from marts.mart_unpriced_calls
        group by all order by 1, 2""")
    assert [r[:3] for r in rows] == [("azure_openai", "claims-gpt4o-eu", "model not in price book")]
    assert rows[0][3] > 0


def test_each_newly_covered_provider_is_priced_at_the_map_price(org):
    got = {r[0]: r[1:] for r in _query(org, """
        select model, provider, catalog_model, resolution_rule, list_cost_usd, is_priced
        from marts.fct_llm_calls where call_id in (
            select call_id from marts.fct_llm_calls where trace_id like 'probe-%')""")}
    for _, model, provider, catalogue, cost in PROBES:
        assert got[model][0] == provider, model
        assert got[model][1] == catalogue, model
        assert got[model][4] is True and got[model][3] == Decimal(cost), model
    for provider, model, _, _, catalogue, cost in PER_TOKEN_OTHER_MODES:
        assert got[model][:2] == (provider, catalogue), model
        assert got[model][4] is True and got[model][3] == Decimal(cost), model
    # Google AI Studio and Vertex AI stay two providers (two billing accounts)
    assert got["gemini-2.5-flash"][0] == "gemini"
    vertex = _query(org, "select distinct provider from marts.fct_llm_calls "
                         "where provider_raw = 'google'")
    assert vertex == [("vertex_ai",)]


def test_a_small_configuration_gives_exactly_its_facts(org, tmp_path):
    from tokenbook.dbt import build

    folder = tmp_path / "config"
    folder.mkdir()
    for name, text in CONFIG.items():
        (folder / name).write_text(text)
    settings = load_settings(warehouse=org["url"], config_dir=str(folder),
                             dbt_target_path=str(org["base"] / "dbt"))
    # fct_llm_calls is incremental: a changed agreement reprices history with --full-refresh
    # (README "Your organisation"; issue 16 makes history changes reach it on ordinary runs)
    build(settings, full_refresh=True, extra_args=["--exclude", "tag:after_forecast"])

    # the negotiated price: 20% off gpt-4o from 2026-10-15, nothing else discounted
    rows = _query(org, """
        select provider, model, call_date >= date '2026-10-15' as after,
               count(*), count(*) filter (where effective_cost_usd = list_cost_usd * 0.8),
               count(*) filter (where effective_cost_usd = list_cost_usd)
        from marts.fct_llm_calls where is_priced and list_cost_usd > 0
        group by all""")
    for provider, model, after, n, discounted, same in rows:
        if (provider, model, after) == ("openai", "gpt-4o", True):
            assert discounted == n, (provider, model)
        else:
            assert same == n, (provider, model, after)
    # the deployment alias: priced as Azure gpt-4o (2.5e-06 / 1e-05 per token), no longer unpriced
    (n, rule, catalogue, ok) = _query(org, """
        select count(*), min(resolution_rule), min(catalog_model),
               bool_and(list_cost_usd = input_tokens * 0.0000025 + output_tokens * 0.00001)
        from marts.fct_llm_calls where model = 'claims-gpt4o-eu'""")[0]
    assert n > 0 and (rule, catalogue, ok) == ("alias", "gpt-4o", True)
    assert _query(org, "select count(*) from marts.mart_unpriced_calls") == [(0,)]
    # the two budgets, and nothing else budgeted
    budgets = _query(org, """
        select distinct feature, cost_centre, monthly_budget_usd from marts.mart_budget_vs_actual
        where budget_level = 'feature' and monthly_budget_usd is not null order by 1""")
    assert budgets == [("case_assist", "CC-7100", Decimal("1500")),
                       ("pr_reviewer", "CC-7200", Decimal("400"))]
    others = _query(org, """
        select distinct budget_status from marts.mart_budget_vs_actual
        where budget_level = 'feature' and monthly_budget_usd is null""")
    assert others == [("no budget",)]
    centres = {r[0] for r in _query(org, "select distinct cost_centre from marts.fct_llm_calls")}
    assert centres == {"CC-7100", "CC-7200", "(unattributed)"}
    con = _connect(org)
    try:
        assert scan_for_demo_strings(con) == []
    finally:
        con.close()


# ------------------------------------------------------------------------------ config check

BAD = {
    # unknown column (region) and a duplicate key (claims-eng twice)
    "teams.csv": "# teams\nteam,cost_centre,region\nclaims-eng,CC-7100,eu\nclaims-eng,CC-7200,eu\n",
    # unknown team, a bad number and a bad date
    "features.csv": "feature,owner_team,budget_per_outcome_usd,launched_on\n"
                    "case_assist,claims-eng,0.05,2026-03-01\n"
                    "pr_reviewer,billing-ops,$0.04,2026-13-01\n",
    # a negative budget
    "budgets.csv": "feature,monthly_budget_usd\ncase_assist,-100\n",
    # overlapping effective periods of one negotiated price
    "negotiated_prices.csv": "provider,model,valid_from,valid_to,discount_pct\n"
                             "openai,gpt-4o,2026-01-01,2026-07-01,10\n"
                             "openai,gpt-4o,2026-06-01,,12\n",
    # a missing required column
    "retry_caps.csv": "feature,owner_note\ncase_assist,gateway policy\n",
}
EXPECTED = (
    "teams.csv:2: column region: unknown column; remove it; the columns are team, cost_centre, "
    "cost_centre_name, business_unit",
    "teams.csv:4: column team: duplicate key claims-eng (also on line 3); keep one row per key",
    "features.csv:3: column budget_per_outcome_usd: '$0.04' is not an amount; write a plain number "
    "with a dot for decimals, e.g. 1250.50 (no currency sign, no thousands separator)",
    "features.csv:3: column launched_on: '2026-13-01' is not a date; write a date as YYYY-MM-DD",
    "features.csv:3: column owner_team: unknown team 'billing-ops'; add a row for it to teams.csv",
    "budgets.csv:2: column monthly_budget_usd: -100 is below 0; a monthly_budget_usd cannot be "
    "negative",
    "negotiated_prices.csv:3: column valid_from: period 2026-06-01..open of openai/gpt-4o overlaps "
    "line 2 (2026-01-01..2026-07-01); end the earlier agreement with valid_to = 2026-06-01",
    "retry_caps.csv:1: column retry_cap: missing column; add the column retry_cap",
)


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, text in BAD.items():
        (folder / name).write_text(text)
    return folder


def test_config_check_names_file_line_column_and_fix_of_each_error(bad_folder):
    with pytest.raises(ConfigInvalid) as err:
        read_config(bad_folder)
    lines = [str(i) for i in err.value.issues]
    for expected in EXPECTED:
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert len(lines) == len(EXPECTED)
    result = CliRunner().invoke(app, ["config", "check", "--config-dir", str(bad_folder)])
    assert result.exit_code == CONFIG_INVALID
    for expected in EXPECTED:
        assert expected.split(";")[0] in " ".join(result.output.split())


def test_transform_run_and_the_dag_step_refuse_an_invalid_configuration(bad_folder, tmp_path):
    from tokenbook import orchestration as orch

    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    first = EXPECTED[0].split(";")[0]
    for args in (["transform"], ["run", "--data-dir", str(tmp_path)]):
        result = CliRunner().invoke(app, [*args, "--config-dir", str(bad_folder), "--warehouse", wh])
        assert result.exit_code == CONFIG_INVALID, result.output
        assert first in " ".join(result.output.split())
    with pytest.raises(ConfigInvalid, match=re.escape(first)):
        orch.load_org_config(date(2026, 11, 20), load_settings(warehouse=wh,
                                                              config_dir=str(bad_folder)))
    # nothing of the folder reached the warehouse
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    try:
        assert not con.execute("select * from information_schema.tables "
                               "where table_name like 'config_%'").fetchall()
    finally:
        con.close()


def test_init_writes_every_file_documented_and_its_examples_are_valid(tmp_path):
    from tokenbook.orgconfig.spec import FILES

    folder = tmp_path / "config"
    result = CliRunner().invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.filename for f in FILES)
    cfg = read_config(folder)  # headers only: valid, nothing configured
    assert all(not f.rows for f in cfg.files.values())
    _, demo_identifiers = demo_strings()
    for spec in FILES:
        text = (folder / spec.filename).read_text()
        for column in spec.columns:
            assert f"#   {column.name} (" in text  # every column documented in the header
        assert not {v for v in demo_identifiers if v in text}, spec.filename
        # the commented example (the lines after the column line), uncommented, is a valid row
        lines = text.splitlines()
        header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        example = "\n".join(lines[: header + 1] + [line.removeprefix("# ")
                                                     for line in lines[header + 1:]])
        (folder / spec.filename).write_text(example + "\n")
    cfg = read_config(folder)
    assert all(len(f.rows) == 1 for f in cfg.files.values()), cfg.status()
    again = CliRunner().invoke(app, ["init", str(folder)])
    assert again.exit_code == 1 and "--force" in again.output


def test_bigquery_config_load_sends_typed_tables(tmp_path):
    """Offline: the BigQuery path's table ids, DDL of empty (not configured) tables and rows."""
    from core.warehouse import parse_warehouse
    from tokenbook.orgconfig.load import BIGQUERY_TYPES, bigquery_jobs

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "budgets.csv").write_text(CONFIG["budgets.csv"])
    (folder / "features.csv").write_text(CONFIG["features.csv"])
    (folder / "teams.csv").write_text(CONFIG["teams.csv"])
    jobs = {t: (ddl, rows) for t, ddl, rows in bigquery_jobs(
        read_config(folder), parse_warehouse("bigquery://our-proj/tb"))}
    ddl, rows = jobs["our-proj.tb_raw.config_budgets"]
    assert rows == [{"feature": "case_assist", "monthly_budget_usd": "1500.00"},
                    {"feature": "pr_reviewer", "monthly_budget_usd": "400"}]
    ddl, rows = jobs["our-proj.tb_raw.config_negotiated_prices"]
    assert rows == [] and ddl.startswith(
        "create or replace table `our-proj.tb_raw.config_negotiated_prices` (provider STRING")
    assert "valid_from DATE" in ddl and "discount_pct NUMERIC" in ddl
    assert set(BIGQUERY_TYPES.values()) <= {"STRING", "DATE", "NUMERIC", "FLOAT64", "INT64", "BOOL"}
    import sqlglot

    for ddl, _ in jobs.values():
        sqlglot.parse_one(ddl, read="bigquery")


def test_bigquery_config_load_sends_one_job_per_file(tmp_path, monkeypatch):
    """Offline, through a recording client: the raw dataset, a load job (explicit schema,
    WRITE_TRUNCATE) per configured file and an empty typed table per absent one."""
    from google.cloud import bigquery

    import core.warehouse as core_warehouse
    from tokenbook.orgconfig.load import load_config
    from tokenbook.orgconfig.spec import FILES

    class Recorder:
        def __init__(self):
            self.datasets, self.loads, self.queries = [], [], []

        def create_dataset(self, ds, exists_ok=False):
            self.datasets.append((f"{ds.project}.{ds.dataset_id}", ds.location, exists_ok))

        def load_table_from_json(self, rows, table_id, job_config=None):
            self.loads.append((table_id, rows, job_config))
            return self

        def query(self, sql, location=None):
            self.queries.append(sql)
            return self

        def result(self):
            return self

    client = Recorder()
    monkeypatch.setattr(core_warehouse, "make_bigquery_client", lambda *a, **k: client)
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "negotiated_prices.csv").write_text(CONFIG["negotiated_prices.csv"])
    load_config(load_settings(warehouse="bigquery://our-proj/tb", bq_location="EU",
                              config_dir=str(folder)))
    assert client.datasets == [("our-proj.tb_raw", "EU", True)]
    ((table_id, rows, job),) = client.loads
    assert table_id == "our-proj.tb_raw.config_negotiated_prices"
    assert rows == [{"provider": "openai", "model": "gpt-4o", "valid_from": "2026-10-15",
                     "valid_to": None, "discount_pct": "20", "input_per_mtok": None,
                     "cache_read_per_mtok": None, "cache_write_per_mtok": None,
                     "output_per_mtok": None, "note": "enterprise agreement 2026"}]
    assert job.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert [(f.name, f.field_type, f.mode) for f in job.schema][:3] == [
        ("provider", "STRING", "REQUIRED"), ("model", "STRING", "REQUIRED"),
        ("valid_from", "DATE", "REQUIRED")]
    assert len(client.queries) == len(FILES) - 1  # every absent file: an empty typed table
    assert all(q.startswith("create or replace table `our-proj.tb_raw.config_") for q in client.queries)


def test_settings_expose_the_resolved_config_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings().resolved_config_dir is None
    (tmp_path / "config").mkdir()
    assert load_settings().resolved_config_dir == tmp_path / "config"
    monkeypatch.setenv("TOKENBOOK_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().resolved_config_dir == tmp_path / "elsewhere"
