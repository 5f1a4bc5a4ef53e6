"""The Great Expectations checkpoint on a loaded gateway partition: results stored and
overwritten per load date, a violating partition raises ValidationFailed after the data and
the results are stored, and the results hold no PII."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
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


# --- the checkpoint on staged tables directly: exact counts per load date -----------------

DAY2 = date(2026, 11, 2)
_TIERS = ("default", "priority", "flex", "batch")
_CALLS_DDL = """create temp table _tb_calls (
    load_date DATE, request_id VARCHAR, call_ts TIMESTAMP, provider VARCHAR, model VARCHAR,
    input_tokens BIGINT, output_tokens BIGINT, cache_read_input_tokens BIGINT,
    cache_write_input_tokens BIGINT, cache_write_ttl VARCHAR, reasoning_tokens BIGINT,
    service_tier VARCHAR, quality_score DOUBLE)"""


def _call_row(day: date, i: int, **kw) -> dict:
    """A valid call; NULLs in every nullable column on some rows (GX ignores them, they must
    not count as unexpected)."""
    row = {
        "load_date": day, "request_id": f"r{i}",
        "call_ts": datetime(2026, 11, 1, 10) + timedelta(seconds=i),
        "provider": ("openai", "anthropic", "vertex_ai")[i % 3],
        "model": ("gpt-4o", "claude-sonnet-4-5")[i % 2],
        "input_tokens": 1000 + i, "output_tokens": 10 + i,
        "cache_read_input_tokens": None if i % 4 == 0 else 100,
        "cache_write_input_tokens": None if i % 3 == 0 else 50,
        "cache_write_ttl": None if i % 3 == 0 else "5m",
        "reasoning_tokens": None if i % 6 == 0 else 0,
        "service_tier": None if i % 7 == 0 else _TIERS[i % 4],
        "quality_score": None if i % 5 == 0 else (i % 10) / 10,
    }
    row.update(kw)
    return row


# planted violations: (row index, overrides) per load date
_PLANTED = {
    DAY: {
        1: {"provider": None}, 2: {"provider": None},
        4: {"service_tier": "turbo"},
        6: {"input_tokens": -5},  # also below its cache tokens (100)
        9: {"request_id": "r8"},  # r8 twice
        10: {"cache_read_input_tokens": 5000},  # cache read + write > input
        11: {"quality_score": 1.5}, 13: {"quality_score": -0.1},
        14: {"call_ts": None},
        15: {"request_id": None},
    },
    DAY2: {  # same request ids as DAY: another load, not duplicates
        3: {"cache_write_ttl": "2h"},
        5: {"output_tokens": -1}, 7: {"output_tokens": -1},
        8: {"reasoning_tokens": -3},
        12: {"cache_write_input_tokens": -1},
        21: {"request_id": "r20"}, 22: {"request_id": "r20"},  # r20 three times
        25: {"model": None},
    },
}
_ROWS = {DAY: 40, DAY2: 30}
# (expectation, column) -> unexpected count per load date; every other expectation: 0
_EXPECTED = {
    ("expect_column_values_to_not_be_null", "provider"): {DAY: 2},
    ("expect_column_values_to_not_be_null", "call_ts"): {DAY: 1},
    ("expect_column_values_to_not_be_null", "request_id_hash"): {DAY: 1},
    ("expect_column_values_to_not_be_null", "model"): {DAY2: 1},
    ("expect_column_values_to_be_in_set", "service_tier"): {DAY: 1},
    ("expect_column_values_to_be_in_set", "cache_write_ttl"): {DAY2: 1},
    ("expect_column_values_to_be_between", "input_tokens"): {DAY: 1},
    ("expect_column_values_to_be_between", "output_tokens"): {DAY2: 2},
    ("expect_column_values_to_be_between", "reasoning_tokens"): {DAY2: 1},
    ("expect_column_values_to_be_between", "cache_write_input_tokens"): {DAY2: 1},
    ("expect_column_values_to_be_between", "quality_score"): {DAY: 2},
    ("expect_column_pair_values_a_to_be_greater_than_b",
     "input_tokens,cache_input_tokens"): {DAY: 2},
    ("expect_compound_columns_to_be_unique", "load_date,request_id_hash"): {DAY: 2, DAY2: 3},
}
_CALL_CHECKS = {  # every expectation of the calls suite
    *_EXPECTED,
    ("expect_column_values_to_be_between", "cache_read_input_tokens"),
    ("expect_column_values_to_not_be_null", "input_tokens"),
    ("expect_column_values_to_not_be_null", "output_tokens"),
}
# files: DAY's file quarantines 3 of 45 rows (> 5%); DAY2's first file misses a row
_FILES = [(DAY, 0, 45, 40, 3, 2), (DAY2, 1, 31, 30, 0, 0), (DAY2, 2, 10, 10, 0, 0)]
_EXPECTED_FILES = {
    ("expect_column_values_to_be_between", "rows_unaccounted"): {DAY: 0, DAY2: 1},
    ("expect_column_values_to_be_between", "quarantine_share"): {DAY: 1, DAY2: 0},
}


@pytest.fixture
def staged():
    from ingestion import quality

    con = duckdb.connect()
    con.execute(_CALLS_DDL)
    rows = [_call_row(d, i, **_PLANTED[d].get(i, {})) for d, n in _ROWS.items()
            for i in range(n)]
    cols = list(rows[0])
    con.executemany(f"insert into _tb_calls ({', '.join(cols)}) values "
                    f"({', '.join('?' * len(cols))})", [tuple(r[c] for c in cols) for r in rows])
    con.execute("create temp table _tb_files (load_date DATE, file_idx INT, rows_read BIGINT, "
                "rows_loaded BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT)")
    con.executemany("insert into _tb_files values (?, ?, ?, ?, ?, ?)", _FILES)
    yield con, quality
    con.close()


def _by_key(outcomes):
    return {(o.data_asset, o.load_date, o.expectation, o.column_name): o for o in outcomes}


def _assert_exact(outcomes, days):
    got = _by_key(outcomes)
    assert len(outcomes) == len(got) == len(days) * (len(_CALL_CHECKS) + len(_EXPECTED_FILES))
    for d in days:
        for key in _CALL_CHECKS:
            o = got[("gateway_calls", d) + key]
            want = _EXPECTED.get(key, {}).get(d, 0)
            assert (o.unexpected_count, o.success, o.element_count) == (
                want, want == 0, _ROWS[d]), (d, key)
            assert o.checkpoint == "gateway_calls_checkpoint"
        for key, per_day in _EXPECTED_FILES.items():
            o = got[("gateway_files", d) + key]
            files = sum(f[0] == d for f in _FILES)
            assert (o.unexpected_count, o.success, o.element_count) == (
                per_day[d], per_day[d] == 0, files), (d, key)


def test_one_load_date_counts_every_planted_violation_exactly(staged):
    con, quality = staged
    calls, files = quality.fetch_frames(con, [DAY])
    _assert_exact(quality.check_frames(calls, files).outcomes, [DAY])
    calls, files = quality.fetch_frames(con, [DAY2])
    _assert_exact(quality.check_frames(calls, files).outcomes, [DAY2])


def test_two_load_dates_split_every_count_exactly_by_date(staged):
    con, quality = staged
    calls, files = quality.fetch_frames(con, [DAY2, DAY])
    result = quality.check_frames(calls, files)
    _assert_exact(result.outcomes, [DAY, DAY2])
    assert not result.success
    # the same outcomes as one run per date
    single = [o for d in (DAY, DAY2)
              for o in quality.check_frames(*quality.fetch_frames(con, [d])).outcomes]
    assert _by_key(result.outcomes) == _by_key(single)


def test_plain_pandas_dtypes_give_the_same_outcomes(staged):
    """check_frames does not depend on fetch_frames' Categoricals or index: plain dtypes
    (strings, datetime load_date) and a filtered frame give the same exact counts."""
    import pandas as pd

    con, quality = staged
    calls, files = quality.fetch_frames(con, [DAY, DAY2])
    assert calls["provider"].dtype == "category"  # dictionary-encoded by fetch_frames

    def plain(df):
        df = df.astype({c: df[c].cat.categories.dtype for c in df.columns
                        if df[c].dtype == "category"})
        assert "category" not in set(map(str, df.dtypes))
        return df

    calls, files = plain(calls), plain(files)
    _assert_exact(quality.check_frames(calls, files).outcomes, [DAY, DAY2])
    day2 = pd.Timestamp(DAY2)
    outcomes = quality.check_frames(  # not a 0..n-1 index: rows of DAY2 only
        calls[calls.load_date == day2], files[files.load_date == day2]).outcomes
    _assert_exact(outcomes, [DAY2])


def test_run_gateway_checkpoint_stores_the_exact_counts(staged):
    con, quality = staged
    result = quality.run_gateway_checkpoint(con, [DAY, DAY2])
    rows = con.execute(
        "select load_date, data_asset, expectation, column_name, success, element_count, "
        f"unexpected_count, parameters, observed_value from {result.table}").fetchall()
    assert sorted(rows) == sorted(
        (o.load_date, o.data_asset, o.expectation, o.column_name, o.success, o.element_count,
         o.unexpected_count, o.parameters, o.observed_value) for o in result.outcomes)
    _assert_exact(result.outcomes, [DAY, DAY2])
    params = {r[3]: json.loads(r[7]) for r in rows if r[1] == "gateway_calls"}
    assert params["service_tier"] == {"column": "service_tier", "value_set": list(_TIERS)}
    assert params["quality_score"] == {"column": "quality_score", "max_value": 1.0,
                                       "min_value": 0.0}
    assert {r[8] for r in rows} == {None}
    # no unexpected value reaches the results (the planted 'turbo', 'r8', '2h')
    text = repr(rows)
    assert "turbo" not in text and "'r8'" not in text and "2h" not in text
