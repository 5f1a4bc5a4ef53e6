"""A gateway log with a few lines that are not UTF-8 (one Latin-1 byte in a feature name or a
metadata value: a real exporter bug) loads its good lines; each bad line is quarantined with
its line number and what is wrong, stored as its shape only, and counted; a file mostly in
another encoding is still refused whole with the iconv to run."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from ingestion.gateway import native
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.gateway.readers import ReaderError
from tokenbook import exitcodes
from tokenbook.cli import app

DAY = date(2026, 10, 14)
BAD_LINE = 12  # 1-based
EMAIL = "dana.okafor@example.org"


def _record(i: int) -> dict:
    return {
        "request_id": f"inv-{i:04d}", "timestamp": f"{DAY.isoformat()}T{i % 24:02d}:07:00Z",
        "provider": "anthropic", "model": "claude-sonnet-4", "input_tokens": 300 + i,
        "output_tokens": 40, "feature": ("invoice_triage", "kb_lookup")[i % 2],
        "customer_segment": "midmarket", "metadata": {"desk": "north"},
    }


def _lines(n: int = 40) -> list[bytes]:
    """``n`` JSON lines; line BAD_LINE holds a Latin-1 é in its feature and an e-mail address
    in its metadata (otherwise a valid record), line 30 misses its model."""
    out = [json.dumps(_record(i)).encode() for i in range(n)]
    bad = _record(BAD_LINE - 1)
    bad["metadata"] = {"desk": "north", "owner": EMAIL}
    out[BAD_LINE - 1] = json.dumps(bad).replace("kb_lookup", "kb_lookup_r\u00e9sum\u00e9").encode(
        "latin-1")
    broken = _record(29)
    del broken["model"]
    out[29] = json.dumps(broken).encode()
    return out


def _write(path: Path, lines: list[bytes], end: bytes = b"\n") -> Path:
    data = end.join(lines) + end
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _settings(tmp_path: Path):
    return load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}", pii_key="test-pii-key")


def _query(settings, sql: str) -> list[tuple]:
    con = duckdb.connect(settings.warehouse.removeprefix("duckdb:///"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _column(line: bytes, byte: int = 0xE9) -> int:
    """1-based character column of the first ``byte`` in ``line``."""
    return len(line[: line.index(bytes([byte]))].decode("utf-8")) + 1


@pytest.fixture(params=["plain", "gzip", "two-pass"])
def variant(request, monkeypatch):
    """The same file plain, gzipped, and read by the native reader's two-pass path (the path
    of files over 32 MB: a line pass then DuckDB's JSON reader)."""
    if request.param == "two-pass":
        monkeypatch.setattr(native, "FAST_MIN_BYTES", 0)
    return request.param


def test_one_line_not_utf8_is_quarantined_and_the_others_load(tmp_path, variant):
    lines = _lines()
    name = "calls.jsonl.gz" if variant == "gzip" else "calls.jsonl"
    path = _write(tmp_path / name, lines)
    settings = _settings(tmp_path)
    report = ingest_gateway([str(path)], settings, date=DAY)

    (f,) = report.files
    assert (f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) == (
        str(path), 40, 38, 2, 0)
    quarantine = _query(settings, "select source_file, line_number, reason, raw_line "
                                  "from raw.quarantine order by line_number")
    assert [(q[0], q[1], q[2]) for q in quarantine] == [
        (str(path), BAD_LINE, f"not UTF-8 text: byte 0xe9 at column {_column(lines[11])}"),
        (str(path), 30, "missing required field: model"),  # line numbers after it hold
    ]
    stored = quarantine[0][3]
    # the line would parse once repaired, yet it keeps only its shape, as any unparsed line
    assert stored.startswith("[unparsed: ") and '"feature": "[TEXT]"' in stored, stored
    assert EMAIL not in stored and "kb_lookup" not in stored
    assert _query(settings, "select field, kind, redactions from raw.pii_redactions") == [
        ("raw_line", "email", 1)]
    loaded = _query(settings, "select source_line, request_id from raw.gateway_calls "
                              "order by source_line")
    assert [n for n, _ in loaded] == [n for n in range(1, 41) if n not in (BAD_LINE, 30)]
    assert all(rid == f"inv-{n - 1:04d}" for n, rid in loaded)
    assert _query(settings, "select source_file, rows_read, rows_loaded, rows_quarantined, "
                            "rows_duplicate, status from raw.load_audit") == [
        (str(path), 40, 38, 2, 0, "loaded")]
    (note,) = [n for n in report.notes if "not UTF-8" in n]
    assert f"line {BAD_LINE}" in note and "0xe9" in note and "raw.quarantine" in note, note


def test_bad_lines_at_the_edges_with_windows_line_ends(tmp_path):
    """The first line, and the last line without a line break, are not UTF-8; CRLF line ends;
    a blank line between records; a byte that starts a sequence it does not finish."""
    lines = [json.dumps(_record(i)).encode() for i in range(8)]
    lines[0] = lines[0].replace(b"north", b"n\xf6rth")
    lines[4] = b""
    lines[7] = lines[7].replace(b"north", b"nor\xe2\x82th")
    path = tmp_path / "edges.jsonl"
    path.write_bytes(b"\r\n".join(lines))
    settings = _settings(tmp_path)
    (f,) = ingest_gateway([str(path)], settings, date=DAY).files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (7, 5, 2)
    assert _query(settings, "select line_number, reason from raw.quarantine order by 1") == [
        (1, f"not UTF-8 text: byte 0xf6 at column {_column(lines[0], 0xF6)}"),
        (8, f"not UTF-8 text: byte 0xe2 at column {_column(lines[7], 0xE2)}"),
    ]
    assert [n for (n,) in _query(settings, "select source_line from raw.gateway_calls "
                                           "order by 1")] == [2, 3, 4, 6, 7]


def test_files_read_together_read_the_good_one_whole(tmp_path):
    """Small files are read by one scan together; one bad line in one of them sends them
    one by one, and the other file loads all its lines."""
    good = _write(tmp_path / "a.jsonl", [json.dumps(_record(i + 100)).encode()
                                         for i in range(20)])
    bad = _write(tmp_path / "b.jsonl.gz", _lines())
    settings = _settings(tmp_path)
    report = ingest_gateway([str(good), str(bad)], settings, date=DAY)
    assert [(f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined)
            for f in report.files] == [(str(good), 20, 20, 0), (str(bad), 40, 38, 2)]
    assert _query(settings, "select source_file, line_number from raw.quarantine "
                            "where reason like 'not UTF-8%'") == [(str(bad), BAD_LINE)]


def test_a_rerun_gives_the_same_tables(tmp_path):
    path = _write(tmp_path / "calls.jsonl", _lines())
    settings = _settings(tmp_path)
    sql = {
        "calls": "select * from raw.gateway_calls order by source_line",
        "quarantine": "select * from raw.quarantine order by line_number",
        "pii": "select * from raw.pii_redactions order by all",
    }
    ingest_gateway([str(path)], settings, date=DAY)
    first = {k: _query(settings, s) for k, s in sql.items()}
    ingest_gateway([str(path)], settings, date=DAY)
    assert {k: _query(settings, s) for k, s in sql.items()} == first
    assert len(first["quarantine"]) == 2
    assert _query(settings, "select count(*), count(distinct load_id) from raw.load_audit") == [
        (2, 2)]


def test_a_litellm_spend_log_with_a_line_not_utf8(tmp_path):
    rows = []
    for i in range(15):
        rows.append(json.dumps({
            "request_id": f"llm-{i}", "startTime": f"{DAY.isoformat()}T08:{i:02d}:00Z",
            "endTime": f"{DAY.isoformat()}T08:{i:02d}:02Z", "model": "gpt-4.1-mini",
            "custom_llm_provider": "openai", "prompt_tokens": 120, "completion_tokens": 15,
            "spend": 0.0004, "request_tags": ["feature:kb_lookup", "segment:midmarket"],
            "metadata": {"user_api_key_team_alias": "ledger-ops"},
        }).encode())
    rows[6] = rows[6].replace(b"ledger-ops", b"ledger-op\xe9s")
    path = _write(tmp_path / "spend.jsonl", rows)
    settings = _settings(tmp_path)
    report = ingest_gateway([str(path)], settings, date=DAY)
    (f,) = report.files
    assert (f.source_format, f.rows_read, f.rows_loaded, f.rows_quarantined) == (
        "litellm", 15, 14, 1)
    assert _query(settings, "select line_number, reason from raw.quarantine") == [
        (7, f"not UTF-8 text: byte 0xe9 at column {_column(rows[6])}")]
    assert _query(settings, "select count(*) from raw.gateway_calls where request_id = 'llm-7'"
                  ) == [(1,)]


def _otel_line(i: int) -> bytes:
    start = int(datetime(DAY.year, DAY.month, DAY.day, 9, i, tzinfo=UTC).timestamp()) * 10**9
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4.1",
             "gen_ai.response.id": f"resp-{i}", "gen_ai.usage.input_tokens": 90,
             "gen_ai.usage.output_tokens": 12, "app.feature": "invoice_triage"}
    span = {
        "traceId": f"{i:032x}", "spanId": f"{i + 1:016x}", "name": "chat", "kind": 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 800_000_000),
        "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int)
                        else {"stringValue": v}} for k, v in attrs.items()],
        "status": {},
    }
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "t"},
                                                              "spans": [span]}]}]}
    return json.dumps(doc).encode()


def test_an_otel_export_with_a_line_not_utf8(tmp_path):
    """The collector's file exporter (one export per line, here one span each): the bad
    line is one unreadable document, quarantined with the reason."""
    lines = [_otel_line(i) for i in range(10)]
    lines[3] = lines[3].replace(b"invoice_triage", b"invoice_triage_\xe0")
    path = _write(tmp_path / "spans.jsonl", lines)
    settings = _settings(tmp_path)
    report = ingest_gateway([str(path)], settings, date=DAY)
    (f,) = report.files
    assert (f.source_format, f.rows_read, f.rows_loaded, f.rows_quarantined) == (
        "otel", 10, 9, 1)
    assert _query(settings, "select line_number, reason from raw.quarantine") == [
        (4, f"not UTF-8 text: byte 0xe0 at column {_column(lines[3], 0xE0)}")]
    assert any("not UTF-8" in n and "line 4" in n for n in report.notes), report.notes


def test_a_file_mostly_in_latin1_is_refused_with_the_iconv_advice(tmp_path):
    """1,500 lines with a Latin-1 byte out of 2,000: another encoding, not bad rows."""
    lines = [json.dumps(_record(i)).encode() for i in range(2000)]
    for i in range(500, 2000):
        lines[i] = lines[i].replace(b"north", b"d\xe9partement")
    path = _write(tmp_path / "latin1.jsonl", lines)
    res = CliRunner().invoke(app, ["ingest", "gateway", str(path), "--date", DAY.isoformat(),
                                   "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}"])
    assert res.exit_code == exitcodes.INPUT_REFUSED, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "not UTF-8" in errors[0] and "line 501" in errors[0] and "iconv" in errors[0]
    assert "1,500 of its 2,000 lines" in errors[0] and "nothing was loaded" in errors[0]
    assert "Traceback" not in res.output


def test_the_threshold_needs_both_the_share_and_the_count(tmp_path, monkeypatch):
    """Refused only when over 1% of the lines AND over MAX_BAD_LINES are not UTF-8: 3 bad
    lines of 1,000 load when the count bound is 2; 3 of 100 are refused."""
    from ingestion.raw import non_utf8

    monkeypatch.setattr(non_utf8, "MAX_BAD_LINES", 2)
    settings = _settings(tmp_path)
    for n, refused in ((1000, False), (100, True)):
        lines = [json.dumps(_record(i)).encode() for i in range(n)]
        for i in (5, 50, 90):
            lines[i] = lines[i].replace(b"north", b"n\xf8rth")
        path = _write(tmp_path / f"t{n}.jsonl", lines)
        if refused:
            with pytest.raises(ReaderError, match="3 of its 100 lines"):
                ingest_gateway([str(path)], settings, date=DAY)
        else:
            (f,) = ingest_gateway([str(path)], settings, date=DAY).files
            assert (f.rows_loaded, f.rows_quarantined) == (997, 3)


def test_a_file_in_another_encoding_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    """Once the bad lines are over both bounds of the whole file's line count, the repair
    stops: a huge Latin-1 file is refused in seconds, its count a lower bound."""
    from ingestion.raw import non_utf8

    monkeypatch.setattr(non_utf8, "MAX_BAD_LINES", 2)
    monkeypatch.setattr(non_utf8, "CHUNK_BYTES", 64)
    lines = [b'{"desk": "d\xe9partement %d"}' % i for i in range(100)]
    path = _write(tmp_path / "latin1.jsonl.gz", lines)
    with pytest.raises(non_utf8.WrongEncoding, match=r"at least [3-9] of its 100 lines") as caught:
        non_utf8.repair(path, tmp_path)
    assert "line 1," in str(caught.value) and "iconv" in str(caught.value)
    assert list(tmp_path.glob("not-utf8-repaired-*")) == []  # the copy is gone


def test_repair_streams_in_chunks_and_keeps_every_line_number(tmp_path, monkeypatch):
    """The repaired copy against a line-by-line reference, with chunks far smaller than the
    lines (so lines and multi-byte characters cross chunk boundaries)."""
    from ingestion.raw import non_utf8

    monkeypatch.setattr(non_utf8, "CHUNK_BYTES", 7)
    lines = [f'{{"k": "ok \u00e9 \u20ac {i}"}}'.encode() for i in range(60)]
    for i in (0, 13, 14, 41, 59):
        lines[i] = lines[i][:5] + b"\xff\xfe" + lines[i][5:]
    src = _write(tmp_path / "mixed.jsonl.gz", lines)
    repaired = non_utf8.repair(src, tmp_path)
    numbers, reasons = repaired.reasons()
    assert (repaired.lines, numbers) == (60, [1, 14, 15, 42, 60])
    assert reasons[0] == "not UTF-8 text: byte 0xff at column 6"
    out = repaired.path.read_bytes().decode("utf-8").split("\n")
    assert len(out) == 61 and out[-1] == ""
    for i, line in enumerate(out[:-1]):
        if i + 1 in numbers:
            mark = non_utf8.MARK
            assert line == f"{mark}{i + 1}{mark}" + lines[i].decode("utf-8", "replace")
        else:
            assert line.encode() == lines[i]
