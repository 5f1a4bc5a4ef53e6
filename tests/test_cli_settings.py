from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.settings import DEFAULT_WAREHOUSE, load_settings
from core.warehouse import WarehouseError, parse_warehouse
from tokenbook.cli import app


def test_settings_precedence_flag_over_env_over_default(monkeypatch):
    assert load_settings().warehouse == DEFAULT_WAREHOUSE
    monkeypatch.setenv("TOKENBOOK_WAREHOUSE", "bigquery://orbit/tb")
    monkeypatch.setenv("TOKENBOOK_WINDOW_DAYS_BEFORE", "30")
    s = load_settings()
    assert s.warehouse == "bigquery://orbit/tb" and s.window_days_before == 30
    assert load_settings(warehouse="duckdb:///x.duckdb").warehouse == "duckdb:///x.duckdb"


def test_warehouse_urls():
    d = parse_warehouse("duckdb:///warehouse/tokenbook.duckdb")
    assert d.kind == "duckdb" and str(d.path) == "warehouse/tokenbook.duckdb"
    assert d.schema("raw") == "raw" and d.table("marts", "x") == "marts.x"
    a = parse_warehouse("duckdb:////abs/t.duckdb")
    assert str(a.path) == "/abs/t.duckdb"
    b = parse_warehouse("bigquery://orbit-finops/tokenbook")
    assert b.schema("marts") == "tokenbook_marts"
    assert b.table("raw", "gateway_calls") == "`orbit-finops.tokenbook_raw.gateway_calls`"
    for bad in ["postgres://x", "bigquery://onlyproject", "duckdb://"]:
        with pytest.raises(WarehouseError, match="duckdb:///|bigquery://"):
            parse_warehouse(bad)


def test_every_subcommand_has_help():
    runner = CliRunner()
    root = runner.invoke(app, ["--help"])
    assert root.exit_code == 0, root.output
    import typer.main

    group = typer.main.get_command(app)
    seen = 0

    def walk(cmd, path):
        nonlocal seen
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage" in res.output
        seen += 1
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(group, [])
    assert seen >= 5


def test_variance_threshold_setting_reaches_dbt_vars():
    import json

    from core.settings import Settings
    from tokenbook.dbt import _with_setting_vars

    assert _with_setting_vars(["build"], Settings()) == ["build"]  # the seed decides
    args = _with_setting_vars(["build"], Settings(variance_threshold=0.05))
    assert json.loads(args[args.index("--vars") + 1]) == {"variance_threshold": 0.05}
    merged = _with_setting_vars(
        ["build", "--vars", '{"run_date": "2026-11-27"}', "-q"], Settings(variance_threshold=0.1)
    )
    assert merged[-1] == "-q"
    assert json.loads(merged[merged.index("--vars") + 1]) == {
        "variance_threshold": 0.1,
        "run_date": "2026-11-27",
    }


def test_reporting_currency_setting_reaches_dbt_vars(monkeypatch):
    import json

    from core.settings import load_settings
    from tokenbook.dbt import _with_setting_vars

    monkeypatch.setenv("TOKENBOOK_REPORTING_CURRENCY", "eur")
    args = _with_setting_vars(["build"], load_settings())
    assert json.loads(args[args.index("--vars") + 1]) == {"reporting_currency": "EUR"}
    assert _with_setting_vars(["build"], load_settings(reporting_currency="USD")) == ["build"]
