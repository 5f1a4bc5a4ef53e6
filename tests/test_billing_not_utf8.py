"""A billing export with a few lines that are not UTF-8 (one Latin-1 byte in a tag or a SKU
description: a real exporter bug) loads its good lines; each bad line is quarantined whole with
its reason and line number (no money is read from it) and counted in the audit; a file mostly in
another encoding, or one the repair cannot keep right, is refused with the line, the byte and
the iconv to run."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.billing.errors import BillingFileError
from ingestion.billing.loader import ingest_billing
from ingestion.raw import non_utf8
from tokenbook.cli import app

MONTH = date(2026, 11, 1)
AZURE_HEADER = (
    "Date,SubscriptionId,ResourceGroup,MeterCategory,MeterSubCategory,MeterId,MeterName,"
    "UnitOfMeasure,Quantity,EffectivePrice,CostInBillingCurrency,BillingCurrencyCode,"
    "BillingPeriodStartDate,Tags"
)


def _azure_row(i: int, tag: str = "ledger-sync") -> bytes:
    meter = ("gpt-4o Inp regnl Tokens", "gpt-4o Outp regnl Tokens")[i % 2]
    return (
        f"11/{1 + i % 28}/2026,sub-7781,rg-ledger,Cognitive Services,Azure OpenAI,m-{i:04d},"
        f'{meter},1K,{100 + i},0.0025,{i + 1}.25,EUR,11/1/2026,"""team"": ""{tag}"""'
    ).encode()


def _azure_file(path: Path, n: int = 6, bad: tuple[int, ...] = (3,), end: bytes = b"\n") -> Path:
    """An Azure cost CSV of ``n`` data rows; each 1-based FILE line in ``bad`` (line 1 is the
    header) holds a Latin-1 é in its tag, in the row's last field."""
    lines = [AZURE_HEADER.encode()] + [_azure_row(i) for i in range(n)]
    for line in bad:
        lines[line - 1] = lines[line - 1].replace(b"ledger-sync", b"r\xe9sum\xe9-sync")
    data = end.join(lines) + end
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _column(line: bytes) -> int:
    return len(line[: line.index(b"\xe9")].decode()) + 1


def _cli(args: list[str]):
    """``tokenbook ingest billing ARGS`` through the real CLI (its error handler included)."""
    return CliRunner().invoke(app, ["ingest", "billing", *args])


@pytest.mark.parametrize("name", ["costs.csv", "costs.csv.gz"])
def test_an_azure_export_with_one_byte_not_utf8_loads_the_rest(tmp_path, name):
    path = _azure_file(tmp_path / name)
    wh = tmp_path / "wh.duckdb"
    res = _cli(["--vendor", "azure", "--warehouse", f"duckdb:///{wh}", str(path)])
    assert res.exit_code == 0, res.output
    assert "6 lines read, 5 loaded, 1 quarantined" in res.output, res.output
    note = " ".join(res.output.split())
    assert "1 line of 7 not UTF-8 text (the first: line 3, byte 0xe9" in note, note
    assert "iconv -f CP1252" in note, note
    with duckdb.connect(str(wh), read_only=True) as con:
        bad = _azure_row(1).replace(b"ledger-sync", b"r\xe9sum\xe9-sync")
        (q,) = con.execute(
            "select source_file, line_number, reason, raw_line from raw.quarantine").fetchall()
        # the CSV numbers its data rows (the header is line 1): row 2 is line 3 of the file
        assert q[:3] == (str(path), 2,
                         f"not UTF-8 text: byte 0xe9 at column {_column(bad)} (line 3 of the file)")
        assert q[3].startswith("[unparsed: ") and "sum" not in q[3], q[3]
        loaded = con.execute("select source_line, billed_cost from raw.billing_lines "
                             "order by source_line").fetchall()
        assert [n for n, _ in loaded] == [1, 3, 4, 5, 6]
        # the rows after the bad one keep their own values: nothing moved
        assert [float(c) for _, c in loaded] == [1.25, 3.25, 4.25, 5.25, 6.25]
        assert con.execute("select rows_read, rows_loaded, rows_quarantined, rows_duplicate, "
                           "status from raw.load_audit").fetchall() == [(6, 5, 1, 0, "loaded")]


def test_bad_lines_at_the_edges_with_windows_line_ends(tmp_path):
    path = _azure_file(tmp_path / "costs.csv", n=5, bad=(2, 6), end=b"\r\n")
    con = duckdb.connect()
    (res,) = ingest_billing(con, "azure", [path], month=MONTH)
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (5, 3, 2)
    assert con.execute("select line_number, reason like '%(line ' || (line_number + 1) || "
                       "' of the file)' from raw.quarantine order by 1").fetchall() == [
        (1, True), (5, True)]
    assert con.execute("select list(source_line order by source_line) "
                       "from raw.billing_lines").fetchone()[0] == [2, 3, 4]


def test_a_rerun_gives_the_same_tables(tmp_path):
    path = _azure_file(tmp_path / "costs.csv")
    con = duckdb.connect()
    ingest_billing(con, "azure", [path])
    tables = ("raw.billing_lines", "raw.quarantine", "raw.pii_redactions")
    first = {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}
    ingest_billing(con, "azure", [path])
    assert {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables} == first
    assert con.execute("select count(*), count(distinct load_id), sum(rows_quarantined) "
                       "from raw.load_audit").fetchone() == (2, 2, 2)


def test_a_record_spanning_lines_keeps_its_place(tmp_path):
    """A quoted newline in a tag: the bad byte on the record's second line quarantines the
    whole record, and the records after it keep their values."""
    path = _azure_file(tmp_path / "costs.csv", n=4, bad=())
    data = path.read_bytes().replace(b'""ledger-sync"""\n11/2', b'""ledger\n-sync \xe9"""\n11/2', 1)
    path.write_bytes(data)
    con = duckdb.connect()
    (res,) = ingest_billing(con, "azure", [path], month=MONTH)
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (4, 3, 1)
    assert con.execute("select line_number, reason from raw.quarantine").fetchall() == [
        (1, "not UTF-8 text: byte 0xe9 at column 7 (line 3 of the file)")]
    assert [float(c) for (c,) in con.execute(
        "select billed_cost from raw.billing_lines order by source_line").fetchall()] == [
        2.25, 3.25, 4.25]


def test_two_bad_lines_in_one_record_refuse_the_file_clearly(tmp_path):
    path = _azure_file(tmp_path / "costs.csv", n=4, bad=())
    data = path.read_bytes().replace(b'""ledger-sync"""\n11/2',
                                     b'""l\xe9dger\n-sync \xe9"""\n11/2', 1)
    path.write_bytes(data)
    con = duckdb.connect()
    with pytest.raises(BillingFileError) as err:
        ingest_billing(con, "azure", [path], month=MONTH)
    msg = str(err.value)
    assert f"{path} is not UTF-8 text: line 2 holds byte 0xe9" in msg
    assert "one for one" in msg and "iconv -f CP1252" in msg and "nothing was loaded" in msg
    assert not con.execute("select count(*) from duckdb_tables() "
                           "where table_name = 'billing_lines'").fetchone()[0]


def test_a_header_not_utf8_is_refused_clearly(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_bytes(_azure_file(path, n=3, bad=()).read_bytes().replace(b"Tags", b"T\xe9gs", 1))
    with pytest.raises(BillingFileError, match=r"line 1 holds byte 0xe9.*header line.*iconv"):
        ingest_billing(duckdb.connect(), "azure", [path], month=MONTH)


def test_a_billing_file_mostly_in_latin1_is_refused_with_the_advice(tmp_path):
    n = 1_200  # over both limits: 1,000 lines and 1% of the file
    path = _azure_file(tmp_path / "costs.csv", n=n, bad=tuple(range(2, n + 2)))
    wh = tmp_path / "wh.duckdb"
    res = _cli(["--vendor", "azure", "--warehouse", f"duckdb:///{wh}", str(path)])
    assert res.exit_code == 1, res.output
    out = " ".join(res.output.split())
    # judged on the share of its lines, not refused for its first bad byte alone
    assert "is not UTF-8 text: 1,200 of its 1,201 lines are not" in out, out
    assert "line 2" in out and "0xe9" in out, out
    assert "iconv -f CP1252 -t UTF-8" in out and "nothing was loaded" in out, out


# --- GCP billing export as JSON lines --------------------------------------------------------


def _gcp_row(i: int, label: str = "ledger") -> dict:
    return {
        "billing_account_id": "0A1B2C-3D4E5F-6A7B8C",
        "service": {"id": "C7E2-9256-1C43", "description": "Vertex AI"},
        "sku": {"id": f"SKU-{i % 2}",
                "description": f"Gemini 2.5 Flash {('Input', 'Output')[i % 2]} Text Tokens"},
        "usage_start_time": f"2026-11-{1 + i:02d} 00:00:00 UTC",
        "usage_end_time": f"2026-11-{1 + i:02d} 01:00:00 UTC",
        "project": {"id": "quarry-ml"}, "labels": [{"key": "team", "value": label}],
        "location": {"region": "europe-west4"}, "cost": 1.5 + i, "currency": "USD",
        "usage": {"amount": 1000 * (i + 1), "unit": "count"}, "credits": [],
        "invoice": {"month": "202611"}, "cost_type": "regular",
    }


def _gcp_file(path: Path, n: int, bad: tuple[int, ...]) -> Path:
    lines = [json.dumps(_gcp_row(i)).encode() for i in range(n)]
    for line in bad:
        row = _gcp_row(line - 1, "caf\u00e9")
        lines[line - 1] = json.dumps(row, ensure_ascii=False).encode("latin-1")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_gcp_json_lines_export_with_one_byte_not_utf8(tmp_path):
    path = _gcp_file(tmp_path / "gcp-export.jsonl", n=5, bad=(4,))
    wh = tmp_path / "wh.duckdb"
    res = _cli(["--vendor", "gcp", "--warehouse", f"duckdb:///{wh}", str(path)])
    assert res.exit_code == 0, res.output
    assert "5 lines read, 4 loaded, 1 quarantined" in res.output, res.output
    with duckdb.connect(str(wh), read_only=True) as con:
        bad = json.dumps(_gcp_row(3, "caf\u00e9"), ensure_ascii=False).encode("latin-1")
        (q,) = con.execute("select line_number, reason, raw_line from raw.quarantine").fetchall()
        assert q[:2] == (4, f"not UTF-8 text: byte 0xe9 at column {_column(bad)}")
        assert q[2].startswith("[unparsed: "), q[2]
        assert con.execute("select list(source_line order by source_line), sum(billed_cost) "
                           "from raw.billing_lines").fetchone() == ([1, 2, 3, 5], 1.5 + 2.5 + 3.5
                                                                     + 5.5)


def test_a_gcp_json_lines_export_mostly_latin1_is_refused_with_the_advice(tmp_path):
    n = 1_100
    path = tmp_path / "gcp-export.jsonl"
    lines = [json.dumps(_gcp_row(i % 28, "caf\u00e9"), ensure_ascii=False).encode("latin-1")
             for i in range(n)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    res = _cli(["--vendor", "gcp", "--warehouse", f"duckdb:///{tmp_path / 'wh.duckdb'}",
                str(path)])
    assert res.exit_code == 1, res.output
    out = " ".join(res.output.split())
    assert "is not UTF-8 text" in out and "0xe9" in out and "iconv -f CP1252" in out, out
    assert "Malformed JSON" not in out, out


def test_an_admin_api_page_not_utf8_is_refused_with_the_sentence(tmp_path):
    """Report pages are not line records: the file is refused, with the sentence, not
    DuckDB's error."""
    page = {"data": [{"starting_at": "2026-11-02T00:00:00Z", "ending_at": "2026-11-03T00:00:00Z",
                      "results": [{"uncached_input_tokens": 10, "model": "m\u00e9"}]}],
            "has_more": False}
    path = tmp_path / "usage.json"
    path.write_bytes(json.dumps(page, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(BillingFileError) as err:
        ingest_billing(duckdb.connect(), "anthropic", [path])
    assert "is not UTF-8 text: line 1 holds byte 0xe9" in str(err.value)
    assert "iconv" in str(err.value)


def test_the_normal_path_never_repairs(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("repaired a UTF-8 file")

    monkeypatch.setattr(non_utf8, "repair", boom)
    path = _azure_file(tmp_path / "costs.csv", bad=())
    (res,) = ingest_billing(duckdb.connect(), "azure", [path], month=MONTH)
    assert res.rows_loaded == 6


def test_files_read_together_fall_back_one_by_one(tmp_path):
    """OpenAI reads its files in one scan; a CSV export not UTF-8 among them takes the slow
    path alone, the API page beside it loads whole, and the bad record is quarantined as the
    lines it would have made."""
    fixtures = Path(__file__).parent / "fixtures" / "billing"
    page = tmp_path / "page.json"
    page.write_bytes((fixtures / "openai_usage_completions_page1.json").read_bytes())
    head, row = (fixtures / "openai_dashboard_usage_shape.csv").read_bytes().splitlines(
        keepends=True)[:2]
    dash = tmp_path / "dashboard.csv"
    dash.write_bytes(head + row.replace(b"user-demo", b"user-r\xe9mi", 1)
                     + row.replace(b"proj_demo", b"proj_quay", 1))
    con = duckdb.connect()
    (res,) = ingest_billing(con, "openai", [page, dash])
    assert [(Path(f.source_file).name, f.rows_read, f.rows_loaded, f.rows_quarantined)
            for f in res.files] == [("page.json", 7, 7, 0), ("dashboard.csv", 8, 4, 4)]
    assert con.execute("select distinct line_number, reason like 'not UTF-8 text: byte 0xe9 "
                       "at column % (line 2 of the file)' from raw.quarantine").fetchall() == [
        (1, True)]
    assert con.execute("select distinct project_id from raw.billing_lines "
                       "where source_file = ?", [str(dash)]).fetchall() == [("proj_quay",)]


def _gcp_refusal(path: Path, index: int, edit) -> str:
    """Line ``index`` (0-based) of the GCP file rewritten by ``edit``; the load must refuse
    the file: returns the message."""
    lines = path.read_bytes().split(b"\n")
    lines[index] = edit(lines[index])
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(BillingFileError) as err:
        ingest_billing(duckdb.connect(), "gcp", [path])
    return str(err.value)


def test_a_gcp_file_still_broken_once_repaired_is_refused_with_the_sentence(tmp_path):
    """After the line not UTF-8, a truncated line: the repaired copy still cannot be read, the
    file is refused, and the message leads with the line, the byte and the iconv."""
    path = _gcp_file(tmp_path / "gcp-export.jsonl", n=4, bad=(2,))
    msg = _gcp_refusal(path, 2, lambda line: line[:40])
    assert msg.startswith(f"{path} is not UTF-8 text: line 2 holds byte 0xe9"), msg
    assert "iconv -f CP1252" in msg and "it still fails" in msg, msg
    assert "not-utf8-repaired" not in msg, msg


def test_a_gcp_byte_not_utf8_outside_a_string_is_refused_with_the_sentence(tmp_path):
    """DuckDB calls it malformed JSON, and the repair cannot make it JSON: the file is refused,
    the message saying which line and byte, and the iconv."""
    path = _gcp_file(tmp_path / "gcp-export.jsonl", n=3, bad=())
    msg = _gcp_refusal(path, 1, lambda line: line.replace(b'"cost": 2.5', b'"cost": 2.5\xe9'))
    assert msg.startswith(f"{path} is not UTF-8 text: line 2 holds byte 0xe9"), msg
    assert "Malformed JSON" in msg and "iconv -f CP1252" in msg, msg


def test_tokenbook_run_prints_the_not_utf8_notes_of_billing_and_evals(tmp_path):
    """`tokenbook run`'s batch steps say what `tokenbook ingest` says: which file has lines
    that are not UTF-8, the first one, and the iconv to run (the load itself goes on)."""
    from core.warehouse import parse_warehouse
    from tokenbook.runner import batch
    from tokenbook.runner.console import console
    from tokenbook.runner.plan import RunResult

    data = tmp_path / "data"
    (data / "billing" / "azure").mkdir(parents=True)
    bill = _azure_file(data / "billing" / "azure" / "costs.csv")
    (data / "evals").mkdir()
    good = json.dumps({"eval_date": "2026-11-03", "feature": "ledger_sync", "provider": "openai",
                       "model": "gpt-4o", "eval_name": "match-rate", "score": 0.9,
                       "passed": True, "quality_bar": 0.8, "cases": 40})
    evals = data / "evals" / "results.jsonl"
    evals.write_bytes(good.encode() + b"\n" + good.replace("match-rate", "r\u00e9sum\u00e9")
                      .encode("latin-1") + b"\n")
    wh = parse_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    result = RunResult()
    with console.capture() as cap:
        batch._ingest_billing(data, wh, result)
        batch._ingest_evals(data, wh, result)
    out = "".join(cap.get().split())  # rich wraps long paths anywhere

    def said(text: str) -> bool:
        return "".join(text.split()) in out

    assert said(f"note: {bill}: 1 line of 7 not UTF-8 text (the first: line 3, byte 0xe9"), out
    assert said(f"note: {evals}: 1 line of 2 not UTF-8 text (the first: line 2, byte 0xe9"), out
    assert out.count("iconv") == 2, out
