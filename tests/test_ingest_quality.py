"""The Great Expectations checkpoint on a loaded gateway partition: results stored and
overwritten per load date, a violating partition raises ValidationFailed after the data and
the results are stored, and the results hold no PII."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.gateway.pipeline import ValidationFailed, ingest_gateway
from tokenbook.settings import load_settings

FIX = Path(__file__).resolve().parent / "fixtures" / "gateway"
DAY = date(2026, 11, 1)


def _settings(tmp_path: Path):
    return load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="k")


def _query(settings, sql):
    con = duckdb.connect(settings.warehouse.removeprefix("duckdb:///"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def _record(i: int, **kw) -> dict:
    rec = {"request_id": f"q{i}", "timestamp": f"2026-11-01T10:{i % 60:02d}:00Z",
           "provider": "openai", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 5,
           "cache_read_input_tokens": 50, "service_tier": "default", "quality_score": 0.5}
    rec.update(kw)
    return rec


def test_passing_checkpoint_is_stored_and_overwritten_on_rerun(tmp_path):
    s = _settings(tmp_path)
    path = _write(tmp_path / "ok.jsonl", [_record(i) for i in range(40)])
    report = ingest_gateway([str(path)], s, date=DAY)
    assert report.checkpoint.success and report.success
    n = len(report.checkpoint.outcomes)
    assert n >= 15
    rows = _query(s, "select load_date, checkpoint, expectation, column_name, success, "
                     "element_count from raw.validation_results")
    assert len(rows) == n and all(r[0] == DAY and r[4] for r in rows)
    assert ("gateway_calls_checkpoint", "expect_compound_columns_to_be_unique",
            "load_date,request_id_hash", True, 40) in [r[1:] for r in rows]
    ingest_gateway([str(path)], s, date=DAY)
    assert _query(s, "select count(*) from raw.validation_results") == [(n,)]
    assert _query(s, "select count(*) from raw.load_audit") == [(2,)]


def test_violating_partition_raises_after_storing_data_and_results(tmp_path):
    s = _settings(tmp_path)
    records = [_record(i) for i in range(30)]
    records[3]["service_tier"] = "turbo"  # loads (not a quarantine rule) but violates the set
    records[4]["quality_score"] = 1.7
    path = _write(tmp_path / "bad.jsonl", records)
    with pytest.raises(ValidationFailed) as info:
        ingest_gateway([str(path)], s, date=DAY)
    message = str(info.value)
    assert "service_tier" in message and "quality_score" in message
    assert "raw.validation_results" in message
    assert not info.value.report.success
    assert _query(s, "select count(*) from raw.gateway_calls") == [(30,)]
    failed = _query(s, "select column_name, unexpected_count from raw.validation_results "
                       "where not success order by 1")
    assert failed == [("quality_score", 1), ("service_tier", 1)]
    assert _query(s, "select status from raw.load_audit") == [("loaded",)]


def test_quarantine_share_above_threshold_fails_the_checkpoint(tmp_path):
    s = _settings(tmp_path)
    with pytest.raises(ValidationFailed, match="quarantine_share"):
        ingest_gateway([str(FIX / "calls.jsonl")], s, date=date(2026, 11, 2))
    (row,) = _query(s, "select success, element_count, unexpected_count from "
                       "raw.validation_results where column_name = 'quarantine_share'")
    assert row == (False, 1, 1)
    # and the same file passes with a threshold that tolerates it
    report = ingest_gateway([str(FIX / "calls.jsonl")], s, date=date(2026, 11, 2),
                            max_quarantine_share=0.7)
    assert report.success


def test_validation_results_hold_no_pii(tmp_path):
    s = _settings(tmp_path)
    secret = "jane.doe@example.com"
    records = [_record(i, request_id=f"dup {secret}") for i in range(3)]  # duplicates
    records += [_record(10, service_tier=f"tier {secret}")]  # violates the set, with PII
    path = _write(tmp_path / "pii.jsonl", records)
    with pytest.raises(ValidationFailed):
        ingest_gateway([str(path)], s, date=DAY)
    text = repr(_query(s, "select * from raw.validation_results"))
    assert secret not in text and "example.com" not in text


def test_one_run_over_many_load_dates_splits_results_by_date(tmp_path):
    s = _settings(tmp_path)
    day1 = [_record(i) for i in range(10)]
    day2 = [_record(i, timestamp=f"2026-11-02T10:{i:02d}:00Z") for i in range(12)]
    day2[5]["service_tier"] = "turbo"  # only the second date violates
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(logs / "a.jsonl", day1)
    _write(logs / "b.jsonl", day2)  # same request ids as day 1: another load, not a duplicate
    with pytest.raises(ValidationFailed, match="2026-11-02: gateway_calls .*service_tier"):
        ingest_gateway([str(logs)], s)
    rows = _query(s, "select load_date, column_name, success, element_count, unexpected_count "
                     "from raw.validation_results where expectation like '%in_set' "
                     "and column_name = 'service_tier' order by 1")
    assert rows == [(DAY, "service_tier", True, 10, 0),
                    (date(2026, 11, 2), "service_tier", False, 12, 1)]
    per_date = _query(s, "select load_date, count(*), count(*) filter (where not success) "
                         "from raw.validation_results group by 1 order by 1")
    assert per_date[0][1] == per_date[1][1] and [p[2] for p in per_date] == [0, 1]
