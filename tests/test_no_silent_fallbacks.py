"""Failures that used to turn quietly into a default or a missing line now raise or report:
the forecast calibration factor, the failure-record redactor, the run summary's queries."""

from __future__ import annotations

import builtins
from datetime import date

import duckdb
import pytest

from core.warehouse import parse_warehouse
from forecasting.job import _last_anomaly_factor

WH = parse_warehouse("duckdb:///unused.duckdb")


def test_calibration_factor_is_one_only_when_no_refit_has_run():
    con = duckdb.connect()
    con.execute("create schema marts")
    assert _last_anomaly_factor(con, WH, date(2026, 11, 2)) == (1.0, {})
    con.execute("create table marts.forecast_backtest (as_of DATE, unique_id VARCHAR, "
                "spec VARCHAR, phase VARCHAR, anomaly_calibration_factor DOUBLE)")
    con.execute("insert into marts.forecast_backtest values "
                "('2026-11-02', '__pooled__|prophet', 'base', 'holdout', 1.7)")
    assert _last_anomaly_factor(con, WH, date(2026, 11, 3))[0] == 1.7


def test_an_unreadable_calibration_factor_raises_instead_of_defaulting():
    con = duckdb.connect()
    con.execute("create schema marts")
    # a table from another version: the factor's column is missing
    con.execute("create table marts.forecast_backtest (as_of DATE, unique_id VARCHAR, "
                "spec VARCHAR, phase VARCHAR)")
    with pytest.raises(duckdb.BinderException, match="anomaly_calibration_factor"):
        _last_anomaly_factor(con, WH, date(2026, 11, 3))


def test_a_broken_redactor_import_raises_instead_of_withholding(monkeypatch):
    from tokenbook import orchestration as orch

    assert orch.redact_text("mail ops.lead@example.org") == "mail [REDACTED:email]"
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "ingestion.raw.redact":
            raise ImportError("redact.py failed to import")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(ImportError, match="redact.py failed"):
        orch.redact_text("mail ops.lead@example.org")


def test_a_failing_summary_query_is_reported(capsys):
    from tokenbook.runner import summary

    con = duckdb.connect()
    con.execute("create table t (a INTEGER)")
    assert summary._rows(con, "select a from t") == []
    assert summary._rows(con, "select no_such_column from t") == []
    out = capsys.readouterr().out
    assert "summary query failed" in out and "no_such_column" in out


def test_secret_rules_without_a_section_raise_instead_of_redacting_nothing(tmp_path):
    from ingestion.raw import redact

    token, context = redact._load_rules()
    assert len(token) > 10 and context
    renamed = tmp_path / "secret_rules.toml"
    renamed.write_text(redact._RULES_FILE.read_text().replace("[[token]]", "[[tokens]]"))
    with pytest.raises(RuntimeError, match=r"no \[\[token\]\] rules"):
        redact._load_rules(renamed)


def test_a_failing_airflow_connection_lookup_is_reported_not_taken_for_no_key(monkeypatch):
    from airflow.sdk import BaseHook

    from ingestion.billing.errors import BillingError
    from ingestion.billing.http import resolve_key

    monkeypatch.delenv("TB_TEST_BILLING_KEY", raising=False)

    def unreachable(conn_id):
        raise ConnectionError("secrets backend vault.internal timed out")

    monkeypatch.setattr(BaseHook, "get_connection", unreachable)
    with pytest.raises(BillingError, match="vault.internal timed out"):
        resolve_key("TB_TEST_BILLING_KEY", "tb_billing_api")
