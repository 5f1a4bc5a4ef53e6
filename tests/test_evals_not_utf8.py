"""An evals file with a line that is not UTF-8 (one Latin-1 byte in an eval name or a note)
loads its other lines; the bad line is quarantined with its reason and line number and
counted; a file mostly in another encoding is still refused with the iconv to run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.evals import EvalsFileError, ingest_evals
from tokenbook.cli import app


def _eval(i: int, name: str = "refund-accuracy") -> dict:
    return {"eval_date": f"2026-09-{1 + i:02d}", "feature": "claims_router",
            "provider": "openai", "model": "gpt-4o-mini", "eval_name": name,
            "score": 0.8 + i / 100, "passed": True, "quality_bar": 0.75, "cases": 200 + i}


def _jsonl(path: Path, n: int = 6, bad: tuple[int, ...] = (4,)) -> Path:
    lines = [json.dumps(_eval(i)).encode() for i in range(n)]
    for line in bad:
        lines[line - 1] = json.dumps(_eval(line - 1, "r\u00e9sum\u00e9-fidelity"),
                                     ensure_ascii=False).encode("latin-1")
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _column(line: bytes) -> int:
    return len(line[: line.index(b"\xe9")].decode()) + 1


def _cli(args: list[str]):
    """``tokenbook ingest evals ARGS`` through the real CLI (its error handler included)."""
    return CliRunner().invoke(app, ["ingest", "evals", *args])


@pytest.mark.parametrize("name", ["results.jsonl", "results.jsonl.gz"])
def test_an_evals_file_with_one_line_not_utf8_loads_the_rest(tmp_path, name):
    path = _jsonl(tmp_path / name)
    wh = tmp_path / "wh.duckdb"
    res = _cli(["--warehouse", f"duckdb:///{wh}", str(path)])
    assert res.exit_code == 0, res.output
    assert "6 lines read, 5 loaded, 1 quarantined" in res.output, res.output
    # the report says which line and byte, and what to do if the file is in another encoding
    assert (f"note: {path}: 1 line of 6 not UTF-8 text (the first: line 4, byte 0xe9"
            in " ".join(res.output.split())), res.output
    assert "iconv" in res.output, res.output
    bad = json.dumps(_eval(3, "r\u00e9sum\u00e9-fidelity"), ensure_ascii=False).encode("latin-1")
    with duckdb.connect(str(wh), read_only=True) as con:
        (q,) = con.execute("select source_file, line_number, reason, raw_line "
                           "from raw.quarantine").fetchall()
        assert q[:3] == (str(path), 4, f"not UTF-8 text: byte 0xe9 at column {_column(bad)}")
        assert q[3].startswith("[unparsed: ") and "fidelity" not in q[3], q[3]
        assert con.execute("select list(source_line order by source_line), "
                           "list(cases order by source_line) from raw.evals").fetchone() == (
            [1, 2, 3, 5, 6], [200, 201, 202, 204, 205])
        assert con.execute("select rows_read, rows_loaded, rows_quarantined, rows_duplicate "
                           "from raw.load_audit").fetchall() == [(6, 5, 1, 0)]


def test_an_evals_csv_with_a_bad_byte_outside_the_eval_fields(tmp_path):
    """The byte is in a column the load does not keep: the row is still quarantined whole."""
    path = tmp_path / "results.csv"
    head = "eval_date,feature,provider,model,eval_name,score,passed,notes\n"
    rows = [f"2026-09-0{i + 1},claims_router,openai,gpt-4o-mini,refund-accuracy-{i},0.9,true,"
            f"reviewed\n".encode() for i in range(4)]
    rows[1] = rows[1].replace(b"reviewed", b"revu par Ren\xe9")
    path.write_bytes(head.encode() + b"".join(rows))
    con = duckdb.connect()
    load = ingest_evals(con, [path])
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (4, 3, 1)
    assert len(load.notes) == 1 and "1 line of 5 not UTF-8 text (the first: line 3" in \
        load.notes[0], load.notes
    assert con.execute("select line_number, reason from raw.quarantine").fetchall() == [
        (3, f"not UTF-8 text: byte 0xe9 at column {_column(rows[1])}")]
    assert con.execute("select list(eval_name order by eval_name) from raw.evals").fetchone()[0] \
        == ["refund-accuracy-0", "refund-accuracy-2", "refund-accuracy-3"]


def test_a_rerun_of_an_evals_file_not_utf8_gives_the_same_tables(tmp_path):
    path = _jsonl(tmp_path / "results.jsonl")
    con = duckdb.connect()
    assert ingest_evals(con, [_jsonl(tmp_path / "clean.jsonl", bad=())]).notes == []
    ingest_evals(con, [path])
    first = {t: con.execute(f"select * from {t} order by all").fetchall()
             for t in ("raw.evals", "raw.quarantine")}
    ingest_evals(con, [path])
    assert {t: con.execute(f"select * from {t} order by all").fetchall()
            for t in ("raw.evals", "raw.quarantine")} == first


def test_an_evals_file_mostly_in_latin1_is_refused_with_the_advice(tmp_path):
    path = _jsonl(tmp_path / "results.jsonl", n=1_100, bad=tuple(range(1, 1_101)))
    with pytest.raises(EvalsFileError) as err:
        ingest_evals(duckdb.connect(), [path])
    msg = str(err.value)
    assert "is not UTF-8 text: 1,100 of its 1,100 lines are not" in msg
    assert "line 1, holds byte 0xe9" in msg and "iconv -f CP1252" in msg, msg
