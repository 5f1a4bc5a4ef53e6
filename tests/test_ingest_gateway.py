"""Gateway-log ingestion on a real DuckDB warehouse: golden native files, the window, duplicates,
idempotence, atomic partition overwrite (injected failure and SIGKILL), errors naming files and
columns, audit arithmetic, and no PII in any table. The data-quality suites that run after a
load (`tokenbook check`) are covered in test_quality_suites.py; the BigQuery test here runs
them on both warehouses."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion.gateway.pipeline import (
    FREE_TEXT_FIELDS,
    IngestError,
    ingest_gateway,
)
from ingestion.gateway.readers import ReaderError, detect_format, expand_paths
from ingestion.raw.redact import unparsed_line_text
from ingestion.raw.sinks import duckdb as duckdb_sink

FIX = Path(__file__).resolve().parent / "fixtures" / "gateway"
REPO = Path(__file__).resolve().parent.parent
LOAD = date(2026, 11, 2)
DATA_TABLES = ("gateway_calls", "quarantine", "pii_redactions")

# calls.jsonl, by line number (line 4 is blank and is not a record)
JSONL_LOADED = {"r1", "r2", "r3", "r11", "r13"}
JSONL_QUARANTINE = [
    (5, "not JSON"),
    (6, "not a JSON object"),
    (7, "missing required field: model"),
    (8, "wrong type: input_tokens"),
    (9, "negative tokens: output_tokens"),
    (10, "cache tokens above input tokens"),
    (11, "unparseable timestamp"),
    (12, "out of window"),
    (15, "wrong type: input_tokens"),
]
# calls.parquet, by record number
PARQUET_QUARANTINE = [
    (4, "missing required field: model"),
    (5, "negative tokens: output_tokens"),
    (6, "cache tokens above input tokens"),
    (7, "unparseable timestamp"),
    (8, "out of window"),
]


def _settings(tmp_path: Path, **kw):
    return load_settings(
        warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="test-pii-key", **kw
    )


def _ingest(paths, settings, **kw):
    return ingest_gateway([str(p) for p in paths], settings, **kw)


def _query(settings, sql, params=None):
    con = duckdb.connect(settings.warehouse.removeprefix("duckdb:///"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _data_hash(settings) -> str:
    h = hashlib.sha256()
    for t in DATA_TABLES:
        for row in _query(settings, f"select * from raw.{t} order by all"):
            h.update(repr(row).encode())
    return h.hexdigest()


@pytest.mark.parametrize(
    "name, quarantine, read",
    [
        ("calls.jsonl", JSONL_QUARANTINE, 15),
        ("calls.jsonl.gz", JSONL_QUARANTINE, 15),
        ("calls.parquet", PARQUET_QUARANTINE, 11),
    ],
)
def test_golden_native_files(tmp_path, name, quarantine, read):
    s = _settings(tmp_path)
    report = _ingest([FIX / name], s, date=LOAD)
    (f,) = report.files
    assert (f.load_date, f.source_format) == (LOAD, "native")
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) == (
        read, 5, len(quarantine), 1)

    calls = {r[0]: r for r in _query(
        s, "select request_id, load_date, call_ts, provider, model, input_tokens, customer_id, "
           "extra, metadata, batch, cache_write_ttl, source_format, source_line "
           "from raw.gateway_calls")}
    assert set(calls) == JSONL_LOADED
    r1 = calls["r1"]
    assert r1[5] == 1200  # the first r1 is kept, the later one is the duplicate
    assert r1[6].startswith("cust_") and r1[6] != "cust_42"  # pseudonymised
    assert json.loads(r1[7]) == {"gateway_region": "eu-west-1"}  # unknown field kept
    assert json.loads(r1[8]) == {"ticket": "T-1", "channel": "chat"}
    assert calls["r3"][3:5] == ("zephyr_llm", "zephyr-1-preview")  # unknown provider loads
    assert str(calls["r11"][2]) == "2026-10-28 23:59:59"  # late record, this load
    assert calls["r11"][1] == LOAD
    assert calls["r13"][9] is True
    assert calls["r13"][10] == ("1h" if "jsonl" in name else None)
    assert str(calls["r2"][2]) == "2026-11-01 10:00:00.250000"

    q = _query(s, "select line_number, reason, source_file, raw_line from raw.quarantine "
                  "order by line_number")
    assert [(ln, reason) for ln, reason, _, _ in q] == quarantine
    assert all(src == str(FIX / name) and raw for _, _, src, raw in q)

    (audit,) = _query(s, "select source_file, load_date, rows_read, rows_loaded, "
                         "rows_quarantined, rows_duplicate, status from raw.load_audit")
    assert audit == (str(FIX / name), LOAD, read, 5, len(quarantine), 1, "loaded")


def test_quarantined_raw_line_is_the_record(tmp_path):
    """A rejected record that parsed is kept as a record (after the field rules); a line that
    did not parse keeps only its length, hash and shape, enough to find it in the file."""
    s = _settings(tmp_path)
    _ingest([FIX / "calls.jsonl"], s, date=LOAD)
    raw = dict(_query(s, "select line_number, raw_line from raw.quarantine"))
    digest = hashlib.sha256(b"this is not json").hexdigest()
    assert raw[5] == f"[unparsed: 16 bytes, sha256 {digest}] [TEXT] [TEXT] [TEXT] [TEXT]"
    assert raw[6].endswith("] [1, 2]")
    assert json.loads(raw[8])["input_tokens"] == "many"
    assert json.loads(raw[12])["request_id"] == "r10"


def test_window_days_widens_the_back_window(tmp_path):
    s = _settings(tmp_path)
    report = _ingest([FIX / "calls.jsonl"], s, date=LOAD, window_days=40)
    assert report.rows_loaded == 6
    assert ("r10",) in _query(s, "select request_id from raw.gateway_calls")
    # and a record after load date + 1 day is out of window
    report = _ingest([FIX / "calls.jsonl"], s, date=date(2026, 10, 30))
    reasons = dict(_query(s, "select line_number, reason from raw.quarantine "
                             "where load_date = '2026-10-30'"))
    assert reasons[1] == "out of window"  # 2026-11-01 >= 2026-10-31
    assert report.files[0].rows_loaded == 1  # only r11 (2026-10-28) is in [10-23, 10-31)


def _day_file(folder: Path, day: str, ids: list[str], extra_line: str | None = None) -> Path:
    lines = [
        json.dumps({"request_id": i, "timestamp": f"{day}T0{n}:00:00Z", "provider": "openai",
                    "model": "gpt-4o", "input_tokens": 10 + n, "output_tokens": 1})
        for n, i in enumerate(ids)
    ]
    if extra_line:
        lines.append(extra_line)
    path = folder / f"gateway-{day}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def test_without_date_each_file_is_dated_by_its_latest_record_and_a_folder_backfills(tmp_path):
    s = _settings(tmp_path)
    logs = tmp_path / "logs"
    _day_file(logs / "a", "2026-11-01", ["a1", "a2"])
    # a late record from 10-31 inside the 11-02 file lands with the 11-02 load
    late = json.dumps({"request_id": "late", "timestamp": "2026-10-31T22:00:00Z",
                       "provider": "openai", "model": "gpt-4o", "input_tokens": 1,
                       "output_tokens": 1})
    _day_file(logs / "b", "2026-11-02", ["b1", "a1"], extra_line=late)
    report = _ingest([logs], s)
    assert [(Path(f.source_file).name, f.load_date) for f in report.files] == [
        ("gateway-2026-11-01.jsonl.gz", date(2026, 11, 1)),
        ("gateway-2026-11-02.jsonl.gz", date(2026, 11, 2)),
    ]
    rows = _query(s, "select load_date, request_id from raw.gateway_calls order by all")
    assert rows == [
        (date(2026, 11, 1), "a1"), (date(2026, 11, 1), "a2"),
        (date(2026, 11, 2), "a1"), (date(2026, 11, 2), "b1"), (date(2026, 11, 2), "late"),
    ]  # a1 again in another load is not a duplicate here: staging dedupes across loads
    assert report.rows_duplicate == 0

    # two files with the same date form one load: the partition holds both
    _day_file(logs / "c", "2026-11-02", ["c1"])
    report = _ingest([logs / "b", logs / "c"], s)
    assert report.load_dates == [date(2026, 11, 2)]
    assert [r[0] for r in _query(s, "select request_id from raw.gateway_calls "
                                    "where load_date = '2026-11-02' order by 1")] == [
        "a1", "b1", "c1", "late"]


def test_duplicates_within_a_load_keep_the_first_by_file_order_then_line(tmp_path):
    s = _settings(tmp_path)
    first = _day_file(tmp_path / "x", "2026-11-01", ["d1", "d2", "d1"])
    second = _day_file(tmp_path / "y", "2026-11-01", ["d2", "d3"])
    report = _ingest([second, first], s, date=date(2026, 11, 1))
    assert [(f.rows_loaded, f.rows_duplicate) for f in report.files] == [(2, 0), (1, 2)]
    kept = _query(s, "select request_id, source_file, source_line from raw.gateway_calls "
                     "order by 1")
    assert kept == [("d1", str(first), 1), ("d2", str(second), 1), ("d3", str(second), 2)]


def test_rerun_gives_identical_data_tables_and_audit_grows(tmp_path):
    s = _settings(tmp_path)
    paths = [FIX / "calls.jsonl", FIX / "calls.parquet"]
    _ingest(paths, s, date=LOAD)
    first = _data_hash(s)
    _ingest(paths, s, date=LOAD)
    assert _data_hash(s) == first
    audit = _query(s, "select load_id, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
                      "from raw.load_audit")
    assert len(audit) == 4 and len({a[0] for a in audit}) == 2
    assert all(read == loaded + q + dup for _, read, loaded, q, dup in audit)
    # a different date's partition is untouched by a rerun of this one
    _ingest([FIX / "calls.jsonl"], s, date=date(2026, 11, 1))
    assert _data_hash(s) != first
    assert _query(s, "select load_date, count(*) from raw.gateway_calls group by 1 order by 1") == [
        (date(2026, 11, 1), 5), (LOAD, 5)]  # the parquet records were duplicates of the jsonl


def test_failure_between_delete_and_insert_keeps_the_previous_partition(tmp_path, monkeypatch):
    s = _settings(tmp_path)
    _ingest([FIX / "calls.jsonl"], s, date=LOAD)
    before = _data_hash(s)

    def boom(load_date):
        raise RuntimeError("injected failure after delete")

    monkeypatch.setattr(duckdb_sink, "_after_delete", boom)
    with pytest.raises(RuntimeError, match="injected"):
        _ingest([FIX / "calls.parquet"], s, date=LOAD)
    assert _data_hash(s) == before
    statuses = _query(s, "select status, count(*) from raw.load_audit group by 1 order by 1")
    assert statuses == [("failed", 1), ("loaded", 1)]


_KILL_SCRIPT = """
import sys, time
from datetime import date, timedelta
from pathlib import Path
from ingestion.raw.sinks import duckdb as duckdb_sink
from ingestion.gateway.pipeline import ingest_gateway
from core.settings import load_settings

def pause(load_date):
    Path(sys.argv[3]).write_text("deleted")
    time.sleep(120)

duckdb_sink._after_delete = pause
settings = load_settings(warehouse=sys.argv[1], pii_key="test-pii-key")
ingest_gateway([sys.argv[2]], settings, date=date(2026, 11, 2))
"""


def test_sigkill_during_publish_keeps_the_previous_partition(tmp_path):
    s = _settings(tmp_path)
    _ingest([FIX / "calls.jsonl"], s, date=LOAD)
    before = _data_hash(s)
    marker = tmp_path / "deleted"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, s.warehouse, str(FIX / "calls.parquet"), str(marker)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached the publish step"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-transaction: deletes done, inserts not
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _data_hash(s) == before
    assert _query(s, "select count(*) from raw.gateway_calls") == [(5,)]


def test_errors_name_the_file_and_the_column(tmp_path):
    s = _settings(tmp_path)
    with pytest.raises(ReaderError, match="file not found: .*nope.jsonl"):
        _ingest([tmp_path / "nope.jsonl"], s, date=LOAD)
    with pytest.raises(ReaderError, match=r"missing_model.parquet has no column 'model'"):
        _ingest([FIX / "missing_model.parquet"], s, date=LOAD)
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ReaderError, match="corrupt.jsonl.gz"):
        _ingest([corrupt], s, date=LOAD)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReaderError, match="holds no gateway-log files"):
        _ingest([tmp_path / "empty"], s, date=LOAD)
    with pytest.raises(ReaderError, match="no file matches"):
        _ingest([str(tmp_path / "*.parquet")], s, date=LOAD)
    # a file that is not JSON is named as such (issue 21: it used to get "pass --date", which
    # led to an empty load); a JSON-lines file with no valid record says so, without --date
    undatable = tmp_path / "undatable.jsonl"
    undatable.write_text("not json\n")
    with pytest.raises(ReaderError, match="undatable.jsonl is a text file .*JSON lines") as e:
        _ingest([undatable], s)
    assert "--date" not in str(e.value)
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text('{"request_id": "x"}\n{"request_id": "y", "timestamp": "soon"}\n')
    with pytest.raises(IngestError, match="invalid.jsonl has no valid record .2 records") as e:
        _ingest([invalid], s)
    assert "--date" not in str(e.value)
    # nothing was published by any of these
    assert _query(s, "select count(*) from raw.load_audit") == [(0,)]


def test_paths_globs_and_detection(tmp_path):
    shutil.copy(FIX / "calls.jsonl", tmp_path / "a.jsonl")
    shutil.copy(FIX / "calls.parquet", tmp_path / "b.parquet")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.jsonl", "b.parquet"]
    assert [p.name for p in expand_paths([str(tmp_path / "*.jsonl")])] == ["a.jsonl"]
    assert detect_format(tmp_path / "a.jsonl") == "native"
    otel = tmp_path / "spans.json"
    otel.write_text('{"resourceSpans": []}')
    assert detect_format(otel) == "otel"
    litellm = tmp_path / "spend.jsonl"
    litellm.write_text('{"request_id": "x", "startTime": "2026-11-01", "spend": 0.1}\n')
    assert detect_format(litellm) == "litellm"


# Every PII kind, valid (Luhn card, mod-97 IBAN), planted in every free-text field.
PII = {
    "email": "jane.doe@example.com",
    "phone": "+1 415 555 0132",
    "card": "4111 1111 1111 1111",
    "iban": "DE89370400440532013000",
    "ssn": "123-45-6789",
    "ip": "203.0.113.9",
    "secret": "sk-proj-Zx9Kq2Lm4Np6Rt8Vw0Yb3Cd5",
}
PII_TEXT = ", ".join(f"{k} {v}" for k, v in PII.items())


def _pii_records() -> list[str]:
    base = {"request_id": "p0", "timestamp": "2026-11-01T10:00:00Z", "provider": "openai",
            "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1}
    out = []
    fields = [*FREE_TEXT_FIELDS, "customer_id", "prompt_preview"]
    for n, f in enumerate(fields):
        rec = dict(base, request_id=f"p{n}")
        rec[f] = f"{rec.get(f, '')} {PII_TEXT}".strip() if f != "request_id" else f"p{n} {PII_TEXT}"
        out.append(json.dumps(rec))
    out.append(json.dumps(dict(base, request_id="pm", metadata={"note": PII_TEXT,
                                                                "nested": {"deep": [PII_TEXT]}})))
    out.append(json.dumps(dict(base, request_id="px", unknown_field=PII_TEXT)))
    out.append(json.dumps(dict(base, request_id="pq", input_tokens=-1, feature=PII_TEXT)))
    out.append(f"not json at all {PII_TEXT}")
    return out


def test_no_pii_lands_in_any_table(tmp_path):
    s = _settings(tmp_path)
    path = tmp_path / "pii.jsonl"
    path.write_text("\n".join(_pii_records()) + "\n")
    report = _ingest([path], s, date=LOAD)
    assert report.rows_quarantined == 2 and report.rows_duplicate == 0

    tables = [t for (t,) in _query(s, "select table_name from information_schema.tables "
                                      "where table_schema = 'raw'")]
    assert {"gateway_calls", "quarantine", "pii_redactions", "load_audit"} <= set(tables)
    for t in tables:
        text = "\n".join(map(repr, _query(s, f"select * from raw.{t}")))
        for kind, value in PII.items():
            assert value not in text, f"{kind} leaked into raw.{t}"
    counts = {(f, k): n for f, k, n in _query(
        s, "select field, kind, sum(redactions) from raw.pii_redactions group by all")}
    for f in [*FREE_TEXT_FIELDS, "prompt_preview", "metadata", "extra", "raw_line"]:
        for kind in PII:
            assert counts.get((f, kind), 0) >= 1, f"{kind} in {f} not counted"
    assert counts[("metadata", "email")] == 2  # note + nested.deep
    # ordinary ids survive redaction untouched
    assert ("p0",) not in _query(s, "select request_id from raw.gateway_calls")  # p0 held PII
    assert ("pm",) in _query(s, "select request_id from raw.gateway_calls")
    assert all(c.startswith("cust_") for (c,) in _query(
        s, "select customer_id from raw.gateway_calls where customer_id is not null"))
    assert "prompt_preview" not in {
        c for (c,) in _query(s, "select column_name from information_schema.columns "
                                "where table_schema = 'raw'")}


def test_cli_loads_and_reports_errors(tmp_path):
    from tokenbook.cli import app

    runner = CliRunner()
    wh = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    good = _day_file(tmp_path / "logs", "2026-11-01", ["c1", "c2"])
    result = runner.invoke(app, ["ingest", "gateway", str(good), "--warehouse", wh,
                                 "--date", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert "native" in result.output and "2026-11-01" in result.output
    assert "tokenbook check --date 2026-11-01" in result.output  # the next step, named
    assert _query(load_settings(warehouse=wh), "select count(*) from raw.gateway_calls") == [(2,)]
    result = runner.invoke(app, ["ingest", "gateway", str(tmp_path / "missing.jsonl"),
                                 "--warehouse", wh])
    assert result.exit_code == 1
    assert "file not found" in result.output and "missing.jsonl" in result.output
    result = runner.invoke(app, ["ingest", "gateway", str(good), "--warehouse", wh,
                                 "--format", "xml"])
    assert result.exit_code != 0


def test_bigquery_warehouse_loads_what_the_duckdb_warehouse_loads(tmp_path, monkeypatch):
    """The same backfill (three files, two load dates, bad lines, a duplicate, PII), then the
    data-quality check of both dates, into a DuckDB warehouse and into BigQuery through a
    patched client: every load job's Parquet rows equal the DuckDB warehouse's rows of that
    table and date. The check's BigQuery profile queries parse as BigQuery SQL, and are
    answered with what the same profile gives on the DuckDB warehouse."""
    import pyarrow as pa
    import sqlglot
    from google.cloud import bigquery

    from tests.bigquery_fakes import FakeClient

    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(FIX / "calls.jsonl", logs / "calls.jsonl")  # dated 2026-11-01
    (logs / "pii.jsonl").write_text("\n".join(_pii_records()) + "\n")  # 2026-11-01
    _day_file(logs, "2026-11-02", ["b1", "b2", "b1"])  # one duplicate
    paths = sorted(logs.iterdir())

    from google.api_core.exceptions import NotFound

    from ingestion import quality

    days = [date(2026, 11, 1), date(2026, 11, 2)]
    s_duck = _settings(tmp_path)
    duck = _ingest(paths, s_duck)
    thresholds = quality.load_thresholds(folder=tmp_path / "no-config")
    duck_check = quality.check_dates(s_duck, days, thresholds)
    wh_path = s_duck.warehouse.removeprefix("duckdb:///")

    class ProfileClient(FakeClient):
        """Answers the check's BigQuery profile queries with the DuckDB warehouse's profile;
        the price book is not there (as on DuckDB, where dbt has not run)."""

        def query(self, sql, job_config=None, location=None, **kw):
            lo = days[0] - timedelta(days=int(thresholds["history_days"]))
            bq_sql = quality.profile_queries(
                {n: f"`orbit-finops.tb_raw.{n}`" for n in ("gateway_calls", "load_audit",
                                                         "billing_lines")}, lo, days[-1],
                bigquery=True, checked_from=days[0])
            names = {v: k for k, v in bq_sql.items()}
            if sql in names:
                sqlglot.parse_one(sql, read="bigquery")
                duck_sql = quality.profile_queries(
                    {n: f"raw.{n}" for n in ("gateway_calls", "load_audit", "billing_lines")},
                    lo, days[-1], checked_from=days[0])[names[sql]]
                c = duckdb.connect(wh_path, read_only=True)
                try:
                    arrow = c.sql(duck_sql).to_arrow_table()
                finally:
                    c.close()
                self.queries.append({"sql": sql, "config": job_config, "location": location})
                return type("Job", (), {"result": lambda _s: type(
                    "Rows", (), {"to_arrow": lambda _r: arrow})()})()
            if "int_price_book" in sql or "_aliases" in sql:
                raise NotFound(f"Not found: {sql.split('from ')[-1]}")
            return super().query(sql, job_config, location, **kw)

    client = ProfileClient()
    monkeypatch.setattr(bigquery, "Client", lambda **_: client)
    s_bq = load_settings(warehouse="bigquery://orbit-finops/tb", pii_key="test-pii-key")
    big = _ingest(paths, s_bq)
    big_check = quality.check_dates(s_bq, days, thresholds, client=client)
    assert big_check.failure_lines() == duck_check.failure_lines()
    assert len(big_check.outcomes) == len(duck_check.outcomes) > 0

    assert big.load_dates == duck.load_dates == days
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
            for f in big.files] == [
        (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) for f in duck.files]
    dups = {Path(f.source_file).name: f.rows_duplicate for f in big.files}
    assert dups["gateway-2026-11-02.jsonl.gz"] == 1 and big.rows_quarantined > 0

    raw = "orbit-finops.tb_raw"
    stage = re.compile(rf"{re.escape(raw)}\._tb_stage_(quarantine|pii_redactions)_\d{{8}}_\w+$")
    jobs = []
    for ld in client.loads:
        m = stage.match(ld["destination"])
        jobs.append(f"stage:{m[1]}" if m else ld["destination"].removeprefix(raw + "."))
    per_day = ["stage:quarantine", "stage:pii_redactions", "gateway_calls$"]
    assert jobs == [
        *(j + "20261101" if j.endswith("$") else j for j in per_day),
        *(j + "20261102" if j.endswith("$") else j for j in per_day),
        "load_audit",
        "validation_results$20261101", "validation_results$20261102",  # tokenbook check
    ]
    assert [ld["config"].write_disposition for ld in client.loads] == [
        *["WRITE_TRUNCATE"] * 6, "WRITE_APPEND", "WRITE_TRUNCATE", "WRITE_TRUNCATE"]

    # every table BigQuery was sent, row for row, against the DuckDB warehouse
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"attach '{s_duck.warehouse.removeprefix('duckdb:///')}' as wh (read_only)")
    table_of = {"stage:quarantine": "quarantine", "stage:pii_redactions": "pii_redactions"}
    checked = set()
    for k, (job, ld) in enumerate(zip(jobs, client.loads, strict=True)):
        if job == "load_audit":
            continue
        table, _, day = job.partition("$")
        table = table_of.get(table, table)
        if not day:  # a shared table's staging load: the date of the partition load after it
            day = next(j for j in jobs[k:] if "$" in j).split("$")[1]
        d = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        sent = ld["table"]
        # Parquet carries UTC instants; the warehouse columns are UTC TIMESTAMPs
        cols = ", ".join(f"{f.name}::TIMESTAMP as {f.name}" if pa.types.is_timestamp(f.type)
                         else f.name for f in sent.schema)
        con.register("sent", sent)
        mine = (f"select {', '.join(sent.column_names)} from wh.raw.{table} "
                f"where load_date = DATE '{d.isoformat()}'"
                + (" and source = 'gateway'" if table in table_of.values() else ""))
        theirs = f"select {cols} from sent"
        for a, b in ((mine, theirs), (theirs, mine)):
            diff = con.execute(f"select count(*) from ({a} except all {b})").fetchall()[0][0]
            assert diff == 0, f"{job}: {diff} row(s) differ from raw.{table} of {d}"
        assert con.execute(f"select count(*) from ({mine})").fetchall() == [
            (sent.num_rows,)], job
        checked.add(table)
        con.unregister("sent")
    assert checked == {"gateway_calls", "quarantine", "pii_redactions", "validation_results"}
    published = " ".join(q["sql"] for q in client.queries)
    assert "source = @source" in published and "BEGIN TRANSACTION" in published


def test_other_formats_run_through_the_same_pipeline(tmp_path):
    s = _settings(tmp_path)
    fixtures = FIX.parent
    report = _ingest([fixtures / "litellm" / "spend_logs.jsonl",
                      fixtures / "otel" / "genai_spans.jsonl", FIX / "calls.jsonl"], s, date=LOAD)
    assert [f.source_format for f in report.files] == ["litellm", "otel", "native"]
    for f in report.files:
        assert f.rows_loaded > 0
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
    assert _query(s, "select source_format, count(*) from raw.gateway_calls group by 1 "
                     "order by 1")[1] == ("native", 5)


def test_gs_uris_are_fetched_and_recorded_by_uri(tmp_path, monkeypatch):
    from ingestion.raw import fetch

    class Blob:
        def __init__(self, name):
            self.name = name

        def download_to_filename(self, dest):
            shutil.copy(FIX / "calls.jsonl.gz", dest)

    class Client:
        def list_blobs(self, bucket, prefix):
            assert (bucket, prefix) == ("orbit-logs", "gateway/")
            return [Blob("gateway/gateway-2026-11-01.jsonl.gz")]

    monkeypatch.setattr(fetch, "_storage", lambda: type("storage", (), {"Client": Client}))
    s = _settings(tmp_path)
    report = _ingest(["gs://orbit-logs/gateway/"], s, date=LOAD)
    assert [f.source_file for f in report.files] == [
        "gs://orbit-logs/gateway/gateway-2026-11-01.jsonl.gz"]
    assert report.rows_loaded == 5
    assert _query(s, "select distinct source_file from raw.quarantine") == [
        ("gs://orbit-logs/gateway/gateway-2026-11-01.jsonl.gz",)]


def test_rerun_keeps_other_sources_rows_of_the_shared_tables(tmp_path):
    # billing and evals loads write their own `source` into raw.quarantine and
    # raw.pii_redactions for the same load dates: a gateway rerun replaces only its own rows.
    s = _settings(tmp_path)
    _ingest([FIX / "calls.jsonl"], s, date=LOAD)
    con = duckdb.connect(s.warehouse.removeprefix("duckdb:///"))
    try:
        con.execute("insert into raw.quarantine (load_date, source, source_file, line_number, "
                    "reason, raw_line) values (?, 'billing_openai', 'b.csv', 3, 'x', '{}')", [LOAD])
        con.execute("insert into raw.pii_redactions (load_date, source, source_file, field, "
                    "kind, redactions) values (?, 'evals', 'e.jsonl', 'note', 'email', 2)", [LOAD])
    finally:
        con.close()
    _ingest([FIX / "calls.jsonl"], s, date=LOAD)
    assert _query(s, "select source, count(*) from raw.quarantine where source <> 'gateway' "
                     "group by 1") == [("billing_openai", 1)]
    assert _query(s, "select source, redactions from raw.pii_redactions "
                     "where source <> 'gateway'") == [("evals", 2)]
    assert _query(s, "select count(*) from raw.quarantine where source = 'gateway'") == [
        (len(JSONL_QUARANTINE),)]


def test_a_first_line_that_is_a_json_array_does_not_make_the_file_an_array(tmp_path):
    rec = {"timestamp": "2026-11-01T10:00:00Z", "provider": "openai", "model": "gpt-4o",
           "input_tokens": 10, "output_tokens": 5}
    lines = ["[1, 2]", json.dumps({"request_id": "a1", **rec}), json.dumps({"request_id": "a2", **rec})]
    f = tmp_path / "day.jsonl"
    f.write_text("\n".join(lines) + "\n")
    s = _settings(tmp_path)
    (r,) = _ingest([f], s, date=LOAD).files
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (3, 2, 1)
    assert _query(s, "select line_number, reason, raw_line from raw.quarantine") == [
        (1, "not a JSON object", unparsed_line_text("[1, 2]"))]
    # a file that is one JSON array is still read element by element
    arr = tmp_path / "arr.json"
    arr.write_text("[\n" + ",\n".join(lines[1:]) + "\n]\n")
    (r,) = _ingest([arr], _settings(tmp_path / "b"), date=LOAD).files
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (2, 2, 0)


def test_rows_the_gate_flags_but_the_redactor_leaves_alone_land_unchanged(tmp_path):
    # the PII pre-scan is a cheap superset (this md5 and this text trip it); only the values
    # the real redactor changes are replaced and counted, field by field
    rec = {"timestamp": "2026-11-01T10:00:00Z", "provider": "openai", "model": "gpt-4o",
           "input_tokens": 10, "output_tokens": 5}
    lines = [
        {"request_id": "g1", **rec, "prompt_prefix_hash": "f899139df5e1059396431415e770c6dd",
         "feature": "tpl 555-123-4567x"},
        {"request_id": "g2", **rec, "feature": "build 1.2.3.4 ok", "team": "t",
         "prompt_prefix_hash": "f899139df5e1059396431415e770c6dd"},
        {"request_id": "g3", **rec, "feature": "plain"},
    ]
    f = tmp_path / "day.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = _settings(tmp_path)
    _ingest([f], s, date=LOAD)
    got = _query(s, "select request_id, feature, team, prompt_prefix_hash from raw.gateway_calls "
                    "order by request_id")
    assert got == [
        ("g1", "tpl 555-123-4567x", None, "f899139df5e1059396431415e770c6dd"),
        ("g2", "build [REDACTED:ip] ok", "t", "f899139df5e1059396431415e770c6dd"),
        ("g3", "plain", None, None),
    ]
    assert _query(s, "select field, kind, redactions from raw.pii_redactions") == [
        ("feature", "ip", 1)]


def test_a_card_number_is_redacted_whatever_field_precedes_it(tmp_path):
    # The gate used to run once over a row's fields joined by newlines: a field holding only a
    # card number, after a field ending in a digit, did not trip it and was loaded as logged.
    card = "4111111111111111"
    rec = {"timestamp": "2026-11-01T10:00:00Z", "provider": "openai", "model": "gpt-4o",
           "input_tokens": 10, "output_tokens": 5}
    lines = [
        {"request_id": "c0001", **rec, "trace_id": card},
        {"request_id": "c0002", **rec, "trace_id": "t9", "feature": card},
        {"request_id": "c0003", **rec, "prompt_prefix_hash": "h1", "metadata": {"n": card}},
    ]
    f = tmp_path / "day.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = _settings(tmp_path)
    _ingest([f], s, date=LOAD)
    for t in DATA_TABLES:
        assert card not in "\n".join(map(repr, _query(s, f"select * from raw.{t}"))), t
    assert _query(s, "select field, kind, redactions from raw.pii_redactions order by field") == [
        ("feature", "card", 1), ("metadata", "card", 1), ("trace_id", "card", 1)]


@pytest.mark.parametrize("fast", [True, False])
def test_blank_required_values_are_missing_whatever_their_spaces(tmp_path, monkeypatch, fast):
    """A required field holding only spaces DuckDB's trim strips (ASCII space, no-break and
    ideographic spaces) is missing; one starting with any other character (a tab, '~', a
    non-ASCII letter, a space before text) is a value. Both readers (the two-pass read of a
    large file and the exact pass) agree; the rule skips trim for values that start with a
    printable ASCII character, which must not change a single verdict."""
    from ingestion.gateway import native

    monkeypatch.setattr(native, "FAST_MIN_BYTES", 0 if fast else 1 << 40)
    models = {
        "q1": " ", "q2": "   ", "q3": "\u00a0", "q4": "\u3000 \u00a0", "q5": "",
        "k1": "\t", "k2": "~", "k3": "é-model", "k4": " lease-model", "k5": "\u00a0x",
        "k6": "!", "k7": "\x7f",
    }
    lines = [
        json.dumps({"request_id": rid, "timestamp": "2026-11-02T08:00:00Z",
                    "provider": "acme_ai", "model": m, "input_tokens": 10, "output_tokens": 2,
                    "feature": "lease_parser"})
        for rid, m in models.items()
    ]
    path = tmp_path / "blank.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    s = _settings(tmp_path)
    _ingest([path], s, date=LOAD)
    quarantined = {
        json.loads(raw)["request_id"]: reason
        for raw, reason in _query(s, "select raw_line, reason from raw.quarantine")
    }
    assert quarantined == {rid: "missing required field: model"
                           for rid in models if rid.startswith("q")}
    loaded = dict(_query(s, "select request_id, model from raw.gateway_calls"))
    assert loaded == {rid: m for rid, m in models.items() if rid.startswith("k")}
