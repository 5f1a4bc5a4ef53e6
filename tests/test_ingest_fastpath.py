"""The two-pass read of native JSON lines (native._read_json_lines) against the exact single
pass: same rows, same line numbers, same quarantine reasons, same unknown fields and PII
counts; line numbers by row position on a file big enough to be scanned by several threads;
and the fall-back to the exact pass when the two scans do not line up."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.settings import load_settings
from ingestion.gateway import native
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.gateway.readers import PositionalRead

FIX = Path(__file__).resolve().parent / "fixtures" / "gateway"
LOAD = date(2026, 11, 2)

# Lines beyond the fixture's: an unknown field holding PII, another key order, an empty
# object, numbers written in other forms, a duplicate, a JSON null line.
EXTRA_LINES = [
    {"request_id": "r20", "timestamp": "2026-11-01T15:00:00Z", "provider": "openai",
     "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2,
     "debug_context": {"user": "jane.doe@example.com", "ip": "203.0.113.9"}},
    {"model": "gpt-4o", "provider": "openai", "request_id": "r21",
     "timestamp": "2026-11-01T15:01:00Z", "output_tokens": 2, "input_tokens": 10},
    {},
    {"request_id": "r22", "timestamp": "2026-11-01T15:02:00Z", "provider": "openai",
     "model": "gpt-4o", "input_tokens": 1e3, "output_tokens": 2, "cost_usd": 1.50,
     "latency_ms": 1e-3, "quality_score": 0.25},
    {"request_id": "r21", "timestamp": "2026-11-01T15:03:00Z", "provider": "openai",
     "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2},
    None,
]


def _file(tmp_path: Path) -> Path:
    lines = [ln for ln in (FIX / "calls.jsonl").read_text().splitlines() if ln.strip()]
    lines += [json.dumps(r) for r in EXTRA_LINES]
    path = tmp_path / "calls_no_blank.jsonl"
    path.write_text("\n".join(lines) + "\n\n")  # blank lines after the last record are fine
    return path


def _tables(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "calls": con.execute(
                "select * exclude (source_file) from raw.gateway_calls order by source_line"
            ).fetchall(),
            "quarantine": con.execute(
                "select line_number, reason from raw.quarantine order by line_number"
            ).fetchall(),
            "raw_lines": con.execute(
                "select line_number, raw_line from raw.quarantine order by line_number"
            ).fetchall(),
            "pii": con.execute(
                "select field, kind, redactions from raw.pii_redactions order by all"
            ).fetchall(),
        }
    finally:
        con.close()


def _ingest(path: Path, db: Path, **kw):
    settings = load_settings(warehouse=f"duckdb:///{db}", pii_key="test-pii-key")
    return ingest_gateway([str(path)], settings, date=LOAD, **kw)


@pytest.fixture
def spy(monkeypatch):
    """Records what the two-pass reader returned for each file (small files included); the
    one-pass reader (tests/test_ingest_onepass.py) is switched off here."""
    monkeypatch.setattr(native, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(native, "ONE_PASS", False)
    seen: list = []
    real = native._read_json_lines

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(native, "_read_json_lines", wrapped)
    return seen


def test_two_pass_read_matches_the_exact_pass(tmp_path, monkeypatch, spy):
    path = _file(tmp_path)
    fast = _ingest(path, tmp_path / "fast.duckdb")
    assert len(spy) == 1 and isinstance(spy[0], PositionalRead)
    assert spy[0].fix_table  # the odd lines went through the exact reading
    monkeypatch.setattr(native, "FAST_JSON_LINES", False)
    exact = _ingest(path, tmp_path / "exact.duckdb")
    assert len(spy) == 1  # the exact run did not take the two-pass read

    a, b = _tables(tmp_path / "fast.duckdb"), _tables(tmp_path / "exact.duckdb")
    assert a["calls"] == b["calls"]
    assert a["quarantine"] == b["quarantine"]
    assert a["pii"] == b["pii"]
    assert (fast.rows_read, fast.rows_loaded, fast.rows_quarantined, fast.rows_duplicate) == (
        exact.rows_read, exact.rows_loaded, exact.rows_quarantined, exact.rows_duplicate)
    # a record read by DuckDB's JSON reader and rejected by a rule keeps its fields (rebuilt
    # from them); odd lines keep their own text
    raw_a, raw_b = dict(a["raw_lines"]), dict(b["raw_lines"])
    assert raw_a.keys() == raw_b.keys()
    for n, text in raw_b.items():
        if text.lstrip().startswith("{"):
            assert json.loads(raw_a[n]).get("request_id") == json.loads(text).get("request_id")
        else:
            assert raw_a[n] == text

    reasons = dict(a["quarantine"])
    first = len([ln for ln in (FIX / "calls.jsonl").read_text().splitlines() if ln.strip()])
    assert reasons[first + 3].startswith("missing required field")  # {}
    assert reasons[first + 6] == "not a JSON object"  # null
    calls = {r[0]: r for r in duckdb.connect(str(tmp_path / "fast.duckdb"), read_only=True)
             .execute("select request_id, extra, input_tokens, gateway_cost_usd, source_line "
                      "from raw.gateway_calls").fetchall()}
    extra = json.loads(calls["r20"][1])
    assert extra == {"debug_context": {"user": "[REDACTED:email]", "ip": "[REDACTED:ip]"}}
    assert calls["r22"][2] == 1000 and float(calls["r22"][3]) == 1.5
    assert calls["r21"][4] == first + 2  # the first r21 kept, the later one a duplicate


def test_line_numbers_by_position_on_a_file_read_by_several_threads(tmp_path, spy):
    """~70 MB: DuckDB scans it in several buffers in parallel; every record's line number
    must still be its own (the request id carries it)."""
    path = tmp_path / "big.jsonl"
    n = 240_000
    con = duckdb.connect()
    con.execute(
        f"""
        copy (
          select case
            when i = 123457 then 'this is not json'
            when i = 200001 then to_json({{request_id: 'req_' || i,
                 timestamp: '2026-11-01T10:00:00Z', provider: 'openai', model: 'gpt-4o',
                 input_tokens: 10, output_tokens: 2, gateway_region: 'eu-west-1'}})::VARCHAR
            when i = 239999 then to_json({{request_id: 'req_' || i,
                 timestamp: '2026-11-01T10:00:00Z', provider: 'openai', model: 'gpt-4o',
                 input_tokens: 10, output_tokens: -2}})::VARCHAR
            else to_json({{request_id: 'req_' || i, timestamp: '2026-11-01T10:00:00Z',
                 provider: 'openai', model: 'gpt-4o', input_tokens: 10 + i % 7,
                 output_tokens: 2, feature: 'lead_scoring', customer_segment: 'smb',
                 prompt_template_id: 'tpl_' || (i % 50), metadata: {{pad: repeat('x', 150)}}
                 }})::VARCHAR end
          from range(1, {n + 1}) t(i)
        ) to '{path}' (format csv, header false, quote '', escape '', delimiter '\\x1f')
        """
    )
    con.close()
    assert path.stat().st_size > 60e6
    report = _ingest(path, tmp_path / "wh.duckdb")
    assert isinstance(spy[0], PositionalRead) and spy[0].fix_table
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (n, n - 2, 2)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        wrong = con.execute(
            "select count(*) from raw.gateway_calls "
            "where request_id <> 'req_' || source_line::VARCHAR"
        ).fetchone()[0]
        assert wrong == 0
        assert con.execute(
            "select line_number, reason from raw.quarantine order by 1").fetchall() == [
            (123457, "not JSON"), (239999, "negative tokens: output_tokens")]
        assert con.execute(
            "select extra from raw.gateway_calls where source_line = 200001"
        ).fetchone()[0] == '{"gateway_region":"eu-west-1"}'
    finally:
        con.close()


def test_scans_that_do_not_line_up_fall_back_to_the_exact_pass(tmp_path, monkeypatch, spy):
    """A bare carriage return between two members is JSON whitespace to DuckDB's JSON reader
    (one record) but a line break to the line scanner (two lines): the counts differ, so
    the file is read the exact way, line by line."""
    good = json.dumps({"request_id": "a1", "timestamp": "2026-11-01T10:00:00Z",
                       "provider": "openai", "model": "gpt-4o", "input_tokens": 3,
                       "output_tokens": 1})
    split = good.replace(', "provider"', ',\r"provider"').replace("a1", "a2")
    path = tmp_path / "cr.jsonl"
    path.write_bytes((good + "\n" + split + "\n" + good.replace("a1", "a3") + "\n").encode())
    calls = []
    real_exact = native._from_json_text

    def counting(*args, **kwargs):
        if kwargs.get("kind") == "view":
            calls.append(args[1])
        return real_exact(*args, **kwargs)

    monkeypatch.setattr(native, "_from_json_text", counting)
    fast = _ingest(path, tmp_path / "fast.duckdb")
    assert isinstance(spy[0], PositionalRead) and calls  # tried, then fell back
    monkeypatch.setattr(native, "FAST_JSON_LINES", False)
    exact = _ingest(path, tmp_path / "exact.duckdb")
    a, b = _tables(tmp_path / "fast.duckdb"), _tables(tmp_path / "exact.duckdb")
    assert a == b
    assert fast.rows_loaded == exact.rows_loaded == 2


def test_windows_line_endings_keep_line_numbers(tmp_path, spy):
    """CRLF files: one line per CRLF (the carriage return is not a line of its own)."""
    lf = _file(tmp_path)
    crlf = tmp_path / "calls_crlf.jsonl"
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    _ingest(lf, tmp_path / "lf.duckdb")
    _ingest(crlf, tmp_path / "crlf.duckdb")
    assert all(isinstance(r, PositionalRead) for r in spy)
    a, b = _tables(tmp_path / "lf.duckdb"), _tables(tmp_path / "crlf.duckdb")
    assert a["calls"] == b["calls"] and a["quarantine"] == b["quarantine"]


def test_small_files_read_together_match_files_read_one_by_one(tmp_path, monkeypatch):
    """Several small or gzip files go through one parallel scan; line numbers, reasons,
    duplicates across files and counts must be what reading them one by one gives."""
    import shutil

    from ingestion.gateway import read

    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl",
             tmp_path / "empty.jsonl"]
    shutil.copy(FIX / "calls.jsonl", files[0])  # a blank line at line 4
    shutil.copy(FIX / "calls.jsonl.gz", files[1])
    files[2].write_text("\n".join(json.dumps(r) for r in EXTRA_LINES) + "\n")
    files[3].write_text("")

    def run(db: Path):
        settings = load_settings(warehouse=f"duckdb:///{db}", pii_key="test-pii-key")
        report = ingest_gateway([str(f) for f in files], settings, date=LOAD)
        con = duckdb.connect(str(db), read_only=True)
        try:
            tables = {t: con.execute(f"select * from raw.{t} order by all").fetchall()
                      for t in ("gateway_calls", "quarantine", "pii_redactions")}
        finally:
            con.close()
        return report, tables

    seen = []
    real = read._read_batch
    monkeypatch.setattr(read, "_read_batch", lambda *a, **k: seen.append(a[3]) or real(*a, **k))
    together, a = run(tmp_path / "together.duckdb")
    assert seen == [[0, 1, 2, 3]]
    # a cap on the text of one batch (a gzip file counts 8 times its size): two batches
    monkeypatch.setattr(read, "BATCH_MAX_TOTAL_BYTES",
                        files[0].stat().st_size + 8 * files[1].stat().st_size)
    _, c = run(tmp_path / "two_batches.duckdb")
    assert seen[1:] == [[0, 1], [2, 3]]
    monkeypatch.setattr(read, "native_batchable", lambda path: False)
    alone, b = run(tmp_path / "alone.duckdb")
    assert len(seen) == 3
    assert a == b == c
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
            for f in together.files] == [
        (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) for f in alone.files]
    assert together.files[3].rows_read == 0


def test_rows_not_matched_to_their_file_fall_back_to_one_by_one(tmp_path, monkeypatch):
    """If DuckDB ever reported a file name otherwise than given, rows could not be matched
    to their file: nothing may be lost, the files are then read one by one."""
    import shutil

    from ingestion.gateway import read

    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"]
    shutil.copy(FIX / "calls.jsonl", files[0])
    shutil.copy(FIX / "calls.jsonl.gz", files[1])
    real = native.read_many

    def renamed(con, paths, into):
        real(con, paths, into + "_orig")
        con.execute(f"create or replace temp view {into} as "
                    f"select * replace ('./' || filename as filename) from {into}_orig")

    monkeypatch.setattr(native, "read_many", renamed)
    returned = []
    real_batch = read._read_batch
    monkeypatch.setattr(read, "_read_batch",
                        lambda *a, **k: returned.append(real_batch(*a, **k)) or returned[-1])
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="k")
    report = ingest_gateway([str(f) for f in files], settings, date=LOAD)
    assert returned == [None]
    assert [(f.rows_read, f.rows_loaded) for f in report.files] == [(15, 5), (15, 0)]
    # the second file repeats the first: its 6 accepted records are duplicates, plus r1 twice
    assert [f.rows_duplicate for f in report.files] == [1, 6] and report.balanced


def test_progress_reports_files_and_the_running_statement(tmp_path, monkeypatch):
    """The callback hears each stage start and finish, read before publish."""
    monkeypatch.setattr(native, "FAST_MIN_BYTES", 0)
    seen: list[tuple] = []
    _ingest(_file(tmp_path), tmp_path / "wh.duckdb", progress=lambda *a: seen.append(a))
    stages = [(s, d, t) for s, d, t, _ in seen]
    assert stages[0] == ("read", 0, 1) and ("read", 1, 1) in stages
    assert stages[-1] == ("publish", 1, 1)
    assert stages.index(("read", 1, 1)) < stages.index(("publish", 1, 1))


def test_watch_reports_duckdbs_progress_on_the_running_statement():
    """While a statement runs, Watch polls DuckDB's query_progress() from a thread and puts
    the percentage in the label; nothing is reported once the statement is over."""
    from ingestion.gateway import session

    con = duckdb.connect()
    session.setup(con)  # progress tracked, never printed
    seen: list[tuple] = []
    watch = session.Watch(con, lambda *a: seen.append(a), "read", 0, 1, "big.jsonl")
    watch.every = 0.02
    with watch:
        # a statement that runs long enough to be polled several times (~0.5-1 s here)
        con.execute("create temp table x as select hash(range) as h from range(120000000)")
    n = len(seen)
    time.sleep(0.1)
    assert len(seen) == n  # the poller stopped with the statement
    pcts = [int(label.removeprefix("big.jsonl ").removesuffix("%")) for *_, label in seen]
    assert pcts and all(0 <= p <= 100 for p in pcts)
    assert all(a[:3] == ("read", 0, 1) for a in seen)
    con.close()


def test_line_pass_keeps_only_odd_lines_text(tmp_path: Path) -> None:
    """native.line_pass (pass 1; bench/ingest.py's floor times it alone): one row per line in
    file order; a record whose key list is a known-good one keeps no text, a blank line is
    marked, anything else (not JSON, not an object, an unknown field, a key list not in the
    sample) keeps its text for the exact read."""
    good = {"request_id": "r1", "timestamp": "2026-11-01T10:00:00Z", "provider": "openai",
            "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}
    lines = [
        json.dumps(good),
        "",
        "not json",
        "[1, 2]",
        json.dumps({**good, "debug": "x"}),  # unknown field
        json.dumps(dict(reversed(list(good.items())))),  # known keys, unsampled order
        json.dumps({**good, "request_id": "r2"}),
    ]
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n")
    con = duckdb.connect()
    source = native._lines_source(path)
    key_hashes = con.execute(
        f"select distinct hash(json_keys(line)) from ({source}) where line = ?", [lines[0]]
    ).fetchall()
    native.line_pass(con, source, [h for (h,) in key_hashes], "lp")
    assert con.execute("select kind, line from lp order by rowid").fetchall() == [
        (0, None), (1, None), (2, lines[2]), (2, lines[3]), (2, lines[4]), (2, lines[5]),
        (0, None),
    ]
