"""The one-pass reader of native JSON lines (ingestion/gateway/jsonl_scan.py over _jsonl.c)
against DuckDB's exact reading (native._from_json_text): every line the C code calls an
ordinary record must give the exact reading's fields and unknown fields, text for text; a
whole load must give the same calls, quarantine, line numbers and PII counts; what only
DuckDB's readers decide (not UTF-8, a 0x1f byte, a bare carriage return, a byte-order mark)
must send the file back to DuckDB with nothing lost."""

from __future__ import annotations

import importlib.util
import json
import random
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from core.settings import load_settings
from ingestion.gateway import jsonl_build, jsonl_scan, native
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.gateway.readers import StreamedRead
from ingestion.gateway.schema import NATIVE_FIELDS

FIELDS = tuple(NATIVE_FIELDS)
LOAD = date(2026, 11, 2)
built = pytest.mark.skipif(
    not jsonl_scan.available(),
    reason="the one-pass reader (_jsonl.c) is not built: `make install` builds it (needs a C "
           "compiler and the Python headers)",
)


# ---- the scanner against the exact reading, line by line ----

def _number(rng: random.Random) -> str:
    k = rng.randrange(10)
    if k == 0:
        return str(rng.randrange(-10**6, 10**6))
    if k == 1:
        return str(rng.randrange(10**17, 10**19))
    if k == 2:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randrange(0, 8)}f}"
    if k == 3:
        return f"0.{'0' * rng.randrange(0, 9)}{rng.randrange(1, 10 ** rng.randrange(1, 10))}"
    if k == 4:
        return f"{rng.randrange(1, 99)}e{rng.choice(['', '-', '+'])}{rng.randrange(0, 25)}"
    if k == 5:
        return rng.choice(["0", "-0", "0.0", "-0.0", "1.50", "2.000", "1E3", "0.00000",
                           "123456789012345.0", "1234567890123456.5", "9007199254740993",
                           "-0.000007", "0.000000123", "2957.0"])
    if k == 6:
        return f"{rng.randrange(0, 10**15)}.{rng.randrange(0, 10 ** rng.randrange(1, 4))}"
    if k == 7:
        return repr(rng.random() * 10 ** rng.randrange(-9, 16))
    if k == 8:
        return f"-{rng.randrange(0, 1000)}.{rng.randrange(0, 1000):03d}"
    return str(rng.randrange(0, 100))


_PIECES = ["a", "Z", " ", "é", "日本", "😀", "/", "\\/", '\\"', "\\\\", "\\n", "\\t", "\\r",
           "\\b", "\\f", "\\u00e9", "\\u0041", "\\u001f", "\\u0000", "\\ud83d\\ude00", "\\ud83d",
           "\\u007f", "\\u2028", ":", ",", "{", "}", "[", "]", "'", "\\u0022", "\\u005c", "\\x",
           "@", "+1 415 555 0132"]


def _string(rng: random.Random) -> str:
    return '"' + "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 6))) + '"'


def _value(rng: random.Random, depth: int = 0) -> str:
    k = rng.randrange(12 if depth < 3 else 8)
    if k < 3:
        return _number(rng)
    if k < 6 or k == 7:
        return _string(rng)
    if k == 6:
        return rng.choice(["true", "false", "null"])
    ws = rng.choice(["", " ", "\t"])
    if k in (8, 9):
        members = [
            f"{_string(rng) if rng.random() < 0.2 else json.dumps(rng.choice(['k', 'a b', 'é', '']))}"
            f":{ws}{_value(rng, depth + 1)}"
            for _ in range(rng.randrange(0, 4))
        ]
        return "{" + ("," + ws).join(members) + "}"
    return "[" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))) + "]"


def _line(rng: random.Random) -> str:
    if rng.random() < 0.03:
        return rng.choice(["", "   ", "\t", "not json", "[1,2]", "null", "{}", '{"a":1} x',
                           '{"a":1,}', '{"model": "m"', '"s"'])
    keys = rng.sample(FIELDS, rng.randrange(1, 10))
    if rng.random() < 0.3:
        keys.append(rng.choice(["region", "debug.ctx", "x y", "Model", "é", "$a", "k'q"]))
    if rng.random() < 0.05:
        keys.append(rng.choice(keys))  # a key twice
    parts = []
    for key in keys:
        escaped = rng.random() < 0.03
        name = ('"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"') if escaped else json.dumps(key)
        v = _value(rng) if rng.random() < 0.7 else rng.choice([_string(rng), _number(rng), "null"])
        parts.append(name + rng.choice([":", ": ", " : "]) + v)
    pad = rng.choice(["", " "])
    return pad + "{" + rng.choice([",", ", "]).join(parts) + "}" + pad


def _scan_against_exact(path: Path, chunk: int = 4096):
    """(ordinary lines, odd lines, blank lines, lines where the scanner and the exact
    reading differ)."""
    scan = jsonl_scan.Scan(path, FIELDS, threads=2, chunk=chunk)
    rows = pa.Table.from_batches(list(scan.batches()), schema=scan.schema)
    con = duckdb.connect()
    native._extra_macro(con)
    con.register("c_rows", rows)
    native._from_json_text(
        con,
        f"select row_number() over () as n, line from read_csv('{path}', "
        "columns={'line': 'VARCHAR'}, delim=chr(31), quote='', escape='', header=false, "
        "auto_detect=false, strict_mode=false)",
        "exact",
    )
    differs = " or ".join(
        f"c.{native._ident(f)} is distinct from e.{native._ident(f)}" for f in FIELDS + ("extra",))
    bad = con.execute(
        f"""
        select c.source_line from c_rows c left join exact e using (source_line)
        where e.source_line is null or e.parse_error is not null or {differs}
        order by 1
        """
    ).fetchall()
    odd = scan.odd()
    # every odd line is the file's own text at its own line number
    lines = path.read_text(encoding="utf-8").split("\n")
    for n, text in zip(odd.column("n").to_pylist(), odd.column("line").to_pylist(), strict=True):
        assert lines[n - 1].removesuffix("\r") == text
    con.close()
    return rows.num_rows, odd.num_rows, scan.blank, [n for (n,) in bad], scan.lines


@built
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_ordinary_line_reads_as_the_exact_reading(tmp_path, seed):
    rng = random.Random(seed)
    lines = [_line(rng) for _ in range(4000)]
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ordinary, odd, blank, bad, total = _scan_against_exact(path)
    assert bad == [], [lines[n - 1] for n in bad[:5]]
    assert total == len(lines) and ordinary + odd + blank == len(lines)
    assert ordinary > 600 and odd > 600  # both sides exercised


@built
def test_the_forms_real_exporters_write_are_ordinary(tmp_path):
    """The forms gateways and SDKs write (Python's json.dumps spacing, small costs, floats
    with a trailing .0, nested metadata, unknown fields) must stay on the fast side: the
    odd side is correct but slower. Each value is what DuckDB's JSON functions give."""
    base = {"request_id": "r1", "timestamp": "2026-11-01T10:00:00Z", "provider": "openai",
            "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2}
    cases = [
        ({**base, "cost_usd": 0.000081}, "cost_usd", "0.000081"),
        ({**base, "cost_usd": 0.000000123}, "cost_usd", "1.23e-7"),
        ({**base, "latency_ms": 2957.0}, "latency_ms", "2957.0"),
        ({**base, "quality_score": 0.25}, "quality_score", "0.25"),
        ({**base, "batch": False}, "batch", "false"),
        ({**base, "metadata": {"ticket": "T-1", "note": "café \u2028 ok"}}, "metadata",
         '{"ticket":"T-1","note":"café \u2028 ok"}'),
        ({**base, "prompt_preview": 'say "hi"\n\tthen /stop'}, "prompt_preview",
         'say "hi"\n\tthen /stop'),
        ({**base, "customer_id": "Zoë 😀"}, "customer_id", "Zoë 😀"),
        ({**base, "region": "eu-west-1", "debug": {"a": [1, 2.5, None]}}, "extra",
         '{"region":"eu-west-1","debug":{"a":[1,2.5,null]}}'),
    ]
    path = tmp_path / "forms.jsonl"
    path.write_text("".join(json.dumps(rec, ensure_ascii=a) + "\n"
                            for rec, *_ in cases for a in (True, False)), encoding="utf-8")
    ordinary, odd, blank, bad, _ = _scan_against_exact(path)
    assert (ordinary, odd, blank, bad) == (2 * len(cases), 0, 0, [])
    scan = jsonl_scan.Scan(path, FIELDS)
    rows = pa.Table.from_batches(list(scan.batches()), schema=scan.schema).to_pylist()
    for i, (_, field, want) in enumerate(cases):
        assert rows[2 * i][field] == rows[2 * i + 1][field] == want


@built
def test_line_numbers_across_chunks_threads_blank_lines_and_crlf(tmp_path):
    """Chunks of a few hundred bytes (hundreds of them, two threads): every record keeps
    its own line number through blank lines, CRLF ends and a last line without an end."""
    out = []
    for n in range(1, 3001):
        if n % 97 == 0:
            out.append("   ")
            continue
        rec = {"request_id": f"req_{n}", "timestamp": "2026-11-01T10:00:00Z",
               "provider": "openai", "model": "gpt-4o", "input_tokens": n, "output_tokens": 1}
        if n % 500 == 0:
            rec["zone"] = "b"
        out.append(("not json" if n % 777 == 0 else json.dumps(rec))
                   + ("\r" if n % 3 == 0 else ""))
    path = tmp_path / "lines.jsonl"
    path.write_bytes("\n".join(out).encode())  # no line end after the last line
    scan = jsonl_scan.Scan(path, FIELDS, threads=2, chunk=300)
    rows = pa.Table.from_batches(list(scan.batches()), schema=scan.schema).to_pylist()
    assert scan.lines == 3000 and scan.blank == 3000 // 97
    assert all(r["request_id"] == f"req_{r['source_line']}" for r in rows)
    assert [r["source_line"] for r in rows if r["extra"]] == [500, 1000, 1500, 2000, 2500, 3000]
    assert scan.odd().to_pylist() == [{"n": 777, "line": "not json"},
                                      {"n": 1554, "line": "not json"},
                                      {"n": 2331, "line": "not json"}]
    assert len(rows) == 3000 - 3000 // 97 - 3


# ---- whole loads: one pass against the exact pass ----

def _tables(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "calls": con.execute("select * exclude (source_file) "
                                 "from raw.gateway_calls order by source_line").fetchall(),
            "quarantine": con.execute("select line_number, reason from raw.quarantine "
                                      "order by line_number").fetchall(),
            "raw_lines": dict(con.execute("select line_number, raw_line from raw.quarantine")
                              .fetchall()),
            "pii": con.execute("select field, kind, redactions from raw.pii_redactions "
                               "order by all").fetchall(),
        }
    finally:
        con.close()


def _ingest(path: Path, db: Path):
    settings = load_settings(warehouse=f"duckdb:///{db}", pii_key="test-pii-key")
    return ingest_gateway([str(path)], settings, date=LOAD)


@pytest.fixture
def reads(monkeypatch):
    """Every file of any size takes the one-pass read; records what each read returned and
    whether it fell back to DuckDB."""
    monkeypatch.setattr(native, "FAST_MIN_BYTES", 0)
    seen: list = []
    real = native._read_one_pass

    def wrapped(con, path, into, fallback):
        def counted():
            seen.append("fallback")
            return fallback()
        out = real(con, path, into, counted)
        seen.append(out)
        return out

    monkeypatch.setattr(native, "_read_one_pass", wrapped)
    return seen


def _load_file(tmp_path: Path) -> Path:
    fixture = Path(__file__).resolve().parent / "fixtures" / "gateway" / "calls.jsonl"
    base = {"timestamp": "2026-11-01T15:00:00Z", "provider": "openai", "model": "gpt-4o",
            "input_tokens": 10, "output_tokens": 2}
    extra = [
        json.dumps({"request_id": "u1", **base, "debug": {"user": "ann.lee@example.org"}}),
        '{"request_id": "u2", "timestamp": "2026-11-01T15:01:00Z", "provider": "openai", '
        '"model": "gpt-4o", "input_tokens": 1e3, "output_tokens": 2, "x": 1, "x": 2}',
        '{"request_\\u0069d": "u3", "timestamp": "2026-11-01T15:02:00Z", "provider": "openai", '
        '"model": "gpt-4o", "input_tokens": 5, "output_tokens": 2}',
        json.dumps({"request_id": "u4", **base, "cost_usd": 0.000081, "latency_ms": 2957.0,
                    "quality_score": 1.50, "metadata": {"note": "call +1 415 555 0132"}}),
        json.dumps({"request_id": "u5", **base, "output_tokens": -2, "zone": "c"}),
        json.dumps({"request_id": "u1", **base}),  # a duplicate of u1
        "{}",
        "null",
        json.dumps({"request_id": "u6", **base, "model": "", "team": "data"}),
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text(fixture.read_text() + "\n".join(extra) + "\n", encoding="utf-8")
    return path


def _same_load(tmp_path: Path, path: Path, monkeypatch):
    one = _ingest(path, tmp_path / "one.duckdb")
    monkeypatch.setattr(native, "FAST_JSON_LINES", False)
    exact = _ingest(path, tmp_path / "exact.duckdb")
    a, b = _tables(tmp_path / "one.duckdb"), _tables(tmp_path / "exact.duckdb")
    assert a["calls"] == b["calls"]
    assert a["quarantine"] == b["quarantine"]
    assert a["pii"] == b["pii"]
    assert a["raw_lines"].keys() == b["raw_lines"].keys()
    counts = ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")
    assert [getattr(one, c) for c in counts] == [getattr(exact, c) for c in counts]
    return one, a


@built
def test_one_pass_load_matches_the_exact_pass(tmp_path, monkeypatch, reads):
    path = _load_file(tmp_path)
    one, tables = _same_load(tmp_path, path, monkeypatch)
    assert len(reads) == 1 and isinstance(reads[0], StreamedRead)  # no fall-back
    calls = {r[0]: r for r in duckdb.connect(str(tmp_path / "one.duckdb"), read_only=True)
             .execute("select request_id, extra, input_tokens, gateway_cost_usd, "
                      "latency_ms from raw.gateway_calls").fetchall()}
    assert json.loads(calls["u1"][1]) == {"debug": {"user": "[REDACTED:email]"}}
    assert json.loads(calls["u2"][1]) == {"x": 1} and calls["u2"][2] == 1000  # odd: exact way
    assert float(calls["u4"][3]) == 0.000081 and calls["u4"][4] == 2957.0
    reasons = dict(tables["quarantine"])
    assert "negative tokens: output_tokens" in reasons.values()
    assert "not a JSON object" in reasons.values()


@built
@pytest.mark.parametrize("oddity", ["bare CR", "0x1f", "BOM", "not UTF-8"])
def test_what_only_duckdb_decides_sends_the_file_back_to_duckdb(tmp_path, monkeypatch, reads,
                                                                 oddity):
    path = _load_file(tmp_path)
    lines = path.read_bytes().split(b"\n")
    at = next(i for i, ln in enumerate(lines) if b'"request_id": "u4"' in ln)
    if oddity == "bare CR":
        lines[at] = lines[at].replace(b', "provider"', b',\r"provider"', 1)
    elif oddity == "0x1f":
        lines[at] = lines[at].replace(b'"openai"', b'"open\x1fai"', 1)
    elif oddity == "BOM":
        lines[0] = b"\xef\xbb\xbf" + lines[0]
    else:
        lines[at] = lines[at].replace(b'"openai"', b'"op\xe9nai"', 1)
    assert lines != path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines))
    one, tables = _same_load(tmp_path, path, monkeypatch)
    assert reads[:2] and isinstance(reads[0], StreamedRead) and "fallback" in reads
    if oddity == "not UTF-8":
        assert dict(tables["quarantine"])[at + 1].startswith("not UTF-8 text")


@built
def test_a_file_of_mostly_odd_lines_goes_to_duckdb_alone(tmp_path, monkeypatch, reads):
    """The text of the lines set apart waits in memory for the exact reading: past
    ODD_MAX_BYTES the file is read by DuckDB alone (which streams and spills), same tables."""
    monkeypatch.setattr(jsonl_scan, "ODD_MAX_BYTES", 200)
    path = _load_file(tmp_path)
    _same_load(tmp_path, path, monkeypatch)
    assert isinstance(reads[0], StreamedRead) and "fallback" in reads


@built
def test_a_gzip_file_is_read_in_one_pass_too(tmp_path, monkeypatch, reads):
    """The nightly's usual file is gateway-D.jsonl.gz: inflated as it is read, parsed on the
    pool, same tables as DuckDB's exact pass."""
    import gzip

    monkeypatch.setattr(native, "ONE_PASS_MIN_GZIP_BYTES", 0)
    plain = _load_file(tmp_path)
    path = tmp_path / "calls.jsonl.gz"
    path.write_bytes(gzip.compress(plain.read_bytes() * 40))  # past one 32 MB-free chunk
    monkeypatch.setattr(jsonl_scan, "CHUNK_BYTES", 2048)  # many chunks, inflated one by one
    _same_load(tmp_path, path, monkeypatch)
    assert isinstance(reads[0], StreamedRead) and "fallback" not in reads


@built
@pytest.mark.parametrize("damage", ["cut short", "damaged"])
def test_a_damaged_gzip_says_what_duckdb_alone_says(tmp_path, monkeypatch, reads, damage):
    import gzip

    from ingestion.gateway.readers import ReaderError

    monkeypatch.setattr(native, "ONE_PASS_MIN_GZIP_BYTES", 0)
    data = gzip.compress(_load_file(tmp_path).read_bytes() * 40)
    if damage == "cut short":
        data = data[: len(data) // 2]
    else:
        data = bytearray(data)
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ReaderError) as one:
        _ingest(path, tmp_path / "one.duckdb")
    # the load's checks may find the damage before any reader; the one-pass reader, when it
    # meets it, hands the file back to DuckDB: either way the same sentence
    scan = jsonl_scan.Scan(path, FIELDS)
    with pytest.raises(jsonl_scan.Unsupported, match="gzip stream that does not inflate"):
        for _ in scan.batches():
            pass
    assert scan.unsupported is not None
    monkeypatch.setattr(native, "ONE_PASS", False)
    with pytest.raises(ReaderError) as alone:
        _ingest(path, tmp_path / "alone.duckdb")
    assert str(one.value) == str(alone.value) and "byte" in str(one.value)


def test_without_the_built_reader_duckdb_reads_alone(tmp_path, monkeypatch):
    """No C compiler on the machine: the same load, by DuckDB's two-pass read."""
    monkeypatch.setattr(native, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl_scan, "_jsonl", None)
    seen = []
    real = native._read_json_lines
    monkeypatch.setattr(native, "_read_json_lines",
                        lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    report = _ingest(_load_file(tmp_path), tmp_path / "wh.duckdb")
    assert len(seen) == 1  # the two-pass read (its own fall-back then reads it line by line)
    assert report.rows_loaded > 0 and report.balanced
    # the load says why it was slower and what builds the reader
    assert any("one-pass reader of JSON lines is not built" in n and "make install" in n
               for n in report.notes), report.notes


def test_a_library_built_from_another_source_is_not_used(tmp_path, monkeypatch):
    """A pull that changed _jsonl.c without `make install`: the old library's output may not
    be what jsonl_scan reads, so it is set aside (and the load says so)."""
    fake = type("module", (), {"source_sha256": "0" * 64})
    assert jsonl_scan._stale(fake)
    if jsonl_scan.available():
        assert not jsonl_scan._stale(jsonl_scan._jsonl)  # the library make install built


def test_an_unknown_field_written_twice_is_kept_once_not_a_failed_file(tmp_path, monkeypatch):
    """DuckDB's exact reading built the unknown fields as a MAP, which cannot hold a key
    twice: one such line made the whole file fail. The first value is kept, as json_extract
    reads it."""
    monkeypatch.setattr(native, "FAST_JSON_LINES", False)
    path = tmp_path / "twice.jsonl"
    path.write_text(
        '{"request_id": "t1", "timestamp": "2026-11-01T15:01:00Z", "provider": "openai", '
        '"model": "gpt-4o", "input_tokens": 3, "output_tokens": 2, "zone": "a", "zone": "b"}\n'
    )
    report = _ingest(path, tmp_path / "wh.duckdb")
    assert report.rows_loaded == 1
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert con.execute("select extra from raw.gateway_calls").fetchone()[0] == '{"zone":"a"}'
    con.close()


def test_the_reader_builds_from_its_source(tmp_path):
    """The C source compiles warning-free (-Wall -Werror) and the library it gives reads a
    line; skipped with the reason when this machine has no compiler or headers."""
    out = jsonl_build.build(quiet=True, folder=tmp_path)
    if out is None:
        pytest.skip("no C compiler or Python headers on this machine (jsonl_build said why)")
    spec = importlib.util.spec_from_file_location("_jsonl", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.scan(b'{"model": "m", "zone": 1}\n\n[1]\n', ("model",))
    assert (got["lines"], got["blank"], got["columns"][0][0], got["odd"][0]) == (3, 1, 1, 1)


@built
def test_a_streamed_read_reports_its_own_progress(tmp_path):
    """DuckDB reports no progress while it scans an Arrow stream: the reader's own figure
    (bytes parsed and handed over) is what a long read shows, and it stops with the read."""
    from ingestion.gateway import session

    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"request_id": f"r{i}", "model": "m"}) + "\n"
                            for i in range(2000)))
    scan = jsonl_scan.Scan(path, FIELDS, chunk=4096)
    con = duckdb.connect()
    session.reader_progress(con, scan.percent)
    seen = [session._progress_of(con)]
    for _ in scan.batches():
        seen.append(session._progress_of(con))
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen) and len(set(seen)) > 5
    session.reader_progress(con, None)
    assert session._progress_of(con) == -1


@built
def test_floats_as_programs_print_them_are_ordinary_and_read_as_the_exact_reading(tmp_path):
    """Costs computed in floating point print with 16 or 17 digits (Python's repr, JSON.stringify,
    Go): 0.30000000000000004, 0.00022844999999999998. The C code finds the shortest digits of
    the double, as DuckDB writes it back; a long or non-shortest form (%.17g, %.20f) too."""
    rng = random.Random(3)
    values = []
    for _ in range(1500):
        x = rng.randrange(1, 200_000) * rng.choice([1.5e-7, 2.5e-6, 3e-5, 1.1e-3, 0.15, 7.0])
        values += [repr(x), f"{x:.17g}", f"{x:.20f}",
                   repr(rng.random() * 10 ** rng.randrange(-9, 15))]
    values += ["0.30000000000000004", "0.1000000000000000055511151231257827", "1e-320",
               "123456789012345678.5", "9007199254740993.0"]
    path = tmp_path / "floats.jsonl"
    path.write_text("".join(
        f'{{"request_id": "f{i}", "cost_usd": {v}, "metadata": {{"c": {v}}}}}\n'
        for i, v in enumerate(values)))
    ordinary, odd, blank, bad, total = _scan_against_exact(path)
    assert bad == [], [values[n - 1] for n in bad[:5]]
    assert ordinary >= 0.9 * len(values), (ordinary, odd)
