"""Privacy holds on every path through ingestion, rejected records included.

A corpus written here plants every secret format and PII kind, a prompt text and a raw customer
id in each field (metadata, nested metadata, an unknown field, prompt_preview, customer_id) of
loaded records and of rejected records of every rejection reason, plus lines that do not parse
(a truncated record, a JSON array, plain text, a record with a byte that is not UTF-8). After the loads (gateway, evals, a failed task
recorded in raw.pipeline_failures), EVERY text column of EVERY table of the warehouse is scanned:
no planted value, and no 12-character piece of one, may be found; the counts by kind in
raw.pii_redactions must be the plantings the redactor can see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from core.settings import load_settings
from ingestion.evals import ingest_evals
from ingestion.gateway.pipeline import ingest_gateway
from ingestion.raw import redact
from tokenbook import orchestration as orch
from tokenbook.exitcodes import CONFIG_INVALID

LOAD = date(2026, 11, 20)
KEY = "corpus-test-key-5f1c"
CUSTOMER = "hilde_brandauer_1958"
PROMPT = "Patient Hilde Brandauer, Lindenallee 12, Morbus Crohn relapse since March"


def _luhn(prefix: str) -> str:
    for d in "0123456789":
        digits = prefix + d
        if redact._luhn_ok(digits):
            return " ".join(digits[i:i + 4] for i in range(0, 16, 4))
    raise AssertionError


PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7Lq2Vd9Pw3Tz8Kc1Rb6Ny4Mf0Gs5Jh2Xe7Ua9Oi\n"
       "Qp3Wd6Sa1Zk8Lm4Cv7Bn0Fg2Hj5Rt9Ye3Ui6Op1As4Df7Gh0Jk2Lz5Xc8Vb1Nm\n"
       "-----END RSA PRIVATE KEY-----")
# kind -> (text as it appears, the planted value that must never be stored)
PLANTED: dict[str, tuple[str, str]] = {
    "email": ("hilde.brandauer@posteo.example",) * 2,
    "phone": ("+49 30 9876 5432",) * 2,
    "card": (_luhn("453914880343646"),) * 2,
    "iban": ("GB82 WEST 1234 5698 7654 32",) * 2,
    "ssn": ("536-22-1234",) * 2,
    "ip": ("203.0.113.77",) * 2,
    "openai": ("sk-proj-" + "Ab1Cd2Ef3G" * 7 + "h4Ij" + "T3BlbkFJ" + "Kl5Mn6Op7Q" * 7 + "r8St",) * 2,
    "anthropic": ("sk-ant-api03-" + "Qw7_eR9-tY2u" * 7 + "Io3pAs5dF" + "AA",) * 2,
    "aws_key_id": ("AKIAZ7Q3W5E2R4T6Y2UI",) * 2,
    "aws_secret": ("aws secret key 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",
                   "Gh7Jk9Lm2Np4Qr6St8Vw0Xy1Za3Bc5De7Fg9Hi2K"),
    "google": ("AIzaSyB" + "x7Qm2Lk9Pw4Rt6Yu1Io3Ea5Sd8Fg0Hj2K",) * 2,
    "github": ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",) * 2,
    "github_fine": ("github_pat_11ABCDE2Y0" + "aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5" * 2 + "Ab",) * 2,
    "gitlab": ("glpat-xK9-mP2_qR7sT4vW1yZ3",) * 2,
    "slack": ("xoxb-2847561930-4728193650-Zq8Wx7Ec6Rv5Tb4Yn3Um2",) * 2,
    "stripe": ("sk_live_" + "51NqFh2e" * 3 + "Zt",) * 2,
    "huggingface": ("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",) * 2,
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJoYnJhbmRhdWVyIn0.Qm9b7Vx2Lk4Pz8Rt6Yw1Ns3Hd5Jf9Gc",) * 2,
    "pem": (PEM, "MIIEowIBAAKCAQEAx7Lq2Vd9Pw3Tz8Kc1Rb6Ny4Mf0Gs5Jh2Xe7Ua9Oi"),
    "url_password": ("postgresql://ledger_svc:Vx9-Pl2Qm7Rt@db.internal:5432/ledger", "Vx9-Pl2Qm7Rt"),
    "assignment": ("password=Mauve-Gnu-4471", "Mauve-Gnu-4471"),
}
PII_KINDS = ("email", "phone", "card", "iban", "ssn", "ip")


def _kind(name: str) -> str:
    return name if name in PII_KINDS else "secret"


def _joined(pem: bool = True) -> str:
    return " ; ".join(t for k, (t, _) in PLANTED.items() if pem or k != "pem")


def _expected(pem: bool = True) -> Counter:
    return Counter(_kind(k) for k in PLANTED if pem or k != "pem")


def _base(rid: str) -> dict:
    return {"request_id": rid, "timestamp": "2026-11-19T10:00:00Z", "provider": "openai",
            "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10,
            "feature": "ledger_assist", "customer_segment": "smb", "customer_id": CUSTOMER,
            "prompt_preview": PROMPT, "metadata": {"channel": "portal"}}


# rejection reason (or "loaded") -> change to the record that causes it
REASONS = {
    "loaded": {},
    "missing required field: model": {"model": None},
    "wrong type: input_tokens": {"input_tokens": "many"},
    "negative tokens: output_tokens": {"output_tokens": -3},
    "cache tokens above input tokens": {"cache_read_input_tokens": 500},
    "unparseable timestamp": {"timestamp": "2026-13-45T99:00:00Z"},
    "out of window": {"timestamp": "2026-09-01T10:00:00Z"},
}
FIELDS = ("metadata", "nested metadata", "unknown field", "prompt_preview", "customer_id")


def _plant(rec: dict, field: str, text: str) -> dict:
    if field == "metadata":
        rec["metadata"] = {"channel": "portal", "note": text}
    elif field == "nested metadata":
        rec["metadata"] = {"channel": "portal", "case": {"history": [{"text": text}]}}
    elif field == "unknown field":
        rec["agent_notes"] = text
    elif field == "prompt_preview":
        rec["prompt_preview"] = PROMPT + " " + text
    else:
        rec["customer_id"] = text
    return rec


def _gateway_corpus(path: Path) -> tuple[list[str], Counter, dict[str, int]]:
    """The corpus file; returns its lines, the expected redaction counts by kind, and the
    expected reason per line number."""
    lines: list[str] = []
    expected: Counter = Counter()
    reasons: dict[int, str] = {}
    for n, (reason, change) in enumerate(REASONS.items()):
        for m, field in enumerate(FIELDS):
            rec = {**_base(f"rq-{n}-{m}"), **change}
            rec = {k: v for k, v in rec.items() if v is not None}
            lines.append(json.dumps(_plant(rec, field, _joined())))
            reasons[len(lines)] = reason
            expected += _expected()
    # lines that do not parse: a JSON array, plain text, a truncated record
    lines.append(json.dumps([CUSTOMER, PROMPT, _joined()]))
    reasons[len(lines)] = "not a JSON object"
    expected += _expected()
    lines.append(f"gateway error for {CUSTOMER}: {PROMPT} {_joined(pem=False)}")
    reasons[len(lines)] = "not JSON"
    expected += _expected(pem=False)
    whole = json.dumps({"request_id": "rq-cut", "metadata": {"note": _joined()},
                        "customer_id": CUSTOMER, "prompt_preview": PROMPT})
    lines.append(whole[: len(whole) - 30])  # cut inside the prompt text
    reasons[len(lines)] = "not JSON"
    expected += _expected()
    # a record that is valid but for one Latin-1 byte: quarantined whatever it holds, stored as
    # its shape (its text decoded with U+FFFD for the bad byte: the line ``lines`` keeps)
    bad = json.dumps(_plant(_base("rq-latin1"), "metadata", _joined())).encode().replace(
        b"ledger_assist", b"ledger_assist_\xe9")
    lines.append(bad.decode("utf-8", "replace"))
    column = bad.index(b"\xe9") + 1  # the line is ASCII before it
    reasons[len(lines)] = f"not UTF-8 text: byte 0xe9 at column {column}"
    expected += _expected()
    path.write_bytes(b"\n".join(bad if ln == lines[-1] else ln.encode() for ln in lines) + b"\n")
    return lines, expected, reasons


def _litellm_corpus(path: Path) -> Counter:
    """LiteLLM spend-log rows (its own prompt/response fields, end_user as the customer): one
    loaded, one rejected (negative tokens). Returns the expected counts (metadata only: the
    reader drops messages and response before anything is scanned)."""
    rows = []
    for n, tokens in enumerate((100, -5)):
        rows.append({
            "request_id": f"ll-{n}", "startTime": "2026-11-19T10:00:00Z",
            "endTime": "2026-11-19T10:00:01Z", "model": "gpt-4o", "custom_llm_provider": "openai",
            "prompt_tokens": tokens, "completion_tokens": 10, "spend": 0.001,
            "end_user": CUSTOMER, "request_tags": ["feature:ledger_assist"],
            "messages": [{"role": "user", "content": PROMPT + " " + _joined()}],
            "response": {"choices": [{"message": {"content": PROMPT}}]},
            "metadata": {"note": _joined()}})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return _expected() + _expected()


def _text_columns(con) -> list[tuple[str, str, str]]:
    return con.execute(
        """
        select table_schema, table_name, column_name from information_schema.columns
        where data_type in ('VARCHAR', 'JSON') or data_type like '%[]' or data_type like 'STRUCT%'
              or data_type like 'MAP%'
        order by all
        """
    ).fetchall()


def _pieces(value: str, width: int = 12) -> set[str]:
    value = value.replace("\n", "")
    if len(value) <= width:
        return {value}
    return {value[i:i + width] for i in range(len(value) - width + 1)}


def test_no_planted_value_lands_in_any_table_and_counts_match(tmp_path):
    corpus = tmp_path / "gateway-2026-11-20.jsonl"
    lines, expected_gateway, reasons = _gateway_corpus(corpus)
    litellm = tmp_path / "litellm-spend-2026-11-20.jsonl"
    expected_gateway += _litellm_corpus(litellm)
    db = tmp_path / "wh.duckdb"
    settings = load_settings(warehouse=f"duckdb:///{db}", pii_key=KEY)
    # most of the corpus is quarantined, on purpose (the quality suites run in `tokenbook check`)
    report = ingest_gateway([corpus, litellm], settings, date=LOAD)
    f, ll = report.files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) == (
        len(lines), len(FIELDS), len(lines) - len(FIELDS), 0)
    assert (ll.source_format, ll.rows_loaded, ll.rows_quarantined) == ("litellm", 1, 1)

    # evals: a rejected record with free text in a stored field, a truncated line
    evals_file = tmp_path / "evals.jsonl"
    good = {"eval_date": "2026-11-19", "feature": "ledger_assist", "provider": "openai",
            "model": "gpt-4o", "eval_name": "exactness", "score": 0.9, "passed": True}
    bad = {**good, "eval_name": _joined(), "score": 1.7, "judge_notes": PROMPT}
    cut = json.dumps({**good, "judge_notes": _joined() + " " + PROMPT})
    evals_file.write_text("\n".join([json.dumps({**good, "judge_notes": _joined()}),
                                     json.dumps(bad), cut[:-25]]) + "\n")
    con = duckdb.connect(str(db))
    try:
        ingest_evals(con, [evals_file], load_date=LOAD)
    finally:
        con.close()
    expected_evals = _expected() + _expected()

    # a failed task whose exception quotes a record
    quoted = json.dumps(_plant(_base("rq-fail"), "metadata", _joined()))
    record = orch.failure_record(
        dag_id="tokenbook_nightly", task_id="ingest_gateway", run_id="r1",
        logical_date=datetime(2026, 11, 21, tzinfo=UTC), run_date=LOAD, try_number=1,
        exception=RuntimeError(f"cannot load line 3: {quoted}"))
    orch.record_failure(settings, record)

    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = _text_columns(con)
        tables = {(s, t) for s, t, _ in columns}
        assert {("raw", "gateway_calls"), ("raw", "quarantine"), ("raw", "pii_redactions"),
                ("raw", "evals"), ("raw", "pipeline_failures"), ("raw", "load_audit")} <= tables
        texts: list[str] = []
        for schema, table, column in columns:
            texts += [v for (v,) in con.execute(
                f'select cast("{column}" as varchar) from "{schema}"."{table}" '
                f'where "{column}" is not null').fetchall()]
        haystack = "\n".join(texts)
        found = {}
        planted = {k: v for k, (_, v) in PLANTED.items()}
        planted |= {"prompt": PROMPT, "customer_id": CUSTOMER}
        for name, value in planted.items():
            hits = [p for p in _pieces(value) if p in haystack]
            if hits:
                found[name] = hits[:3]
        assert found == {}, found

        # the same keyed hash for loaded and quarantined records
        pseudonym = redact.pseudonymise_text(CUSTOMER, KEY)
        loaded_ids = {r[0] for r in con.execute(
            "select customer_id from raw.gateway_calls where request_id <> 'rq-0-4'").fetchall()}
        assert len(loaded_ids) == 1  # the native and the LiteLLM customer alike
        assert loaded_ids == {pseudonym}
        quarantined = con.execute(
            "select line_number, reason, raw_line from raw.quarantine where source = 'gateway' "
            f"and source_file = '{corpus}' order by line_number").fetchall()
        (ll_raw,) = con.execute(
            "select raw_line from raw.quarantine where source_file = ?", [str(litellm)]
        ).fetchone()
        assert json.loads(ll_raw)["customer_id"] == pseudonym
        assert {n: r for n, r, _ in quarantined} == {
            n: r for n, r in reasons.items() if r != "loaded"}
        for n, _, raw in quarantined:
            if raw.startswith("[unparsed: "):
                line = lines[n - 1]
                assert raw.startswith(f"[unparsed: {len(line.encode())} bytes, sha256 ")
                assert len(raw) <= len("[unparsed: ] ") + 10 + 73 + redact.UNPARSED_KEEP_CHARS
                continue
            rec = json.loads(raw)
            assert "prompt_preview" not in rec
            if n % len(FIELDS) != 0:  # customer_id was not the planted field
                assert rec["customer_id"] == pseudonym, rec

        counts = dict(con.execute(
            "select source || ':' || kind, sum(redactions)::INT from raw.pii_redactions "
            "group by all").fetchall())
    finally:
        con.close()
    want = {f"gateway:{k}": n for k, n in expected_gateway.items()}
    want |= {f"evals:{k}": n for k, n in expected_evals.items()}
    assert counts == want


def test_run_refuses_the_development_key_outside_the_demo(tmp_path):
    """`tokenbook run --date D` with the development PII key (no TOKENBOOK_PII_KEY) fails with
    exit 4 and says how to set the key; nothing is created."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOKENBOOK_")}
    db = tmp_path / "wh.duckdb"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tokenbook"), "run", "--date", "2026-11-20",
         "--data-dir", str(tmp_path / "data"), "--warehouse", f"duckdb:///{db}"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == CONFIG_INVALID, proc.stderr
    assert "development PII key" in proc.stderr and "TOKENBOOK_PII_KEY" in proc.stderr
    assert not db.exists()
    # with a key of its own the same command gets past the key check (and then fails on the
    # missing data folder, which is another error)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tokenbook"), "run", "--date", "2026-11-20",
         "--data-dir", str(tmp_path / "data"), "--warehouse", f"duckdb:///{db}"],
        env={**env, "TOKENBOOK_PII_KEY": "a-key-of-our-own"}, capture_output=True, text=True,
        cwd=tmp_path, timeout=300)
    assert "development PII key" not in proc.stderr


@pytest.mark.parametrize("how", ["env", "file"])
def test_a_key_of_ones_own_is_accepted(tmp_path, monkeypatch, how):
    monkeypatch.delenv("TOKENBOOK_ALLOW_DEV_KEY", raising=False)
    assert load_settings().is_dev_key
    with pytest.raises(ValueError, match="TOKENBOOK_PII_KEY"):
        load_settings().require_pii_key()
    if how == "env":
        monkeypatch.setenv("TOKENBOOK_PII_KEY", "k-from-env")
        assert load_settings().require_pii_key() == "k-from-env"
    else:
        key_file = tmp_path / "pii.key"
        key_file.write_text("k-from-file\n")
        monkeypatch.setenv("TOKENBOOK_PII_KEY_FILE", str(key_file))
        assert load_settings().require_pii_key() == "k-from-file"


def test_the_key_file_is_read_on_use_not_when_settings_load(tmp_path, monkeypatch):
    """The DAG file loads the settings while Airflow parses it, where the workers' secret
    mount may be absent: loading them never reads the key file. Pseudonymising does, and a
    missing file is then a configuration error naming the file (exit 4), not a parse failure."""
    monkeypatch.delenv("TOKENBOOK_PII_KEY", raising=False)
    monkeypatch.delenv("TOKENBOOK_ALLOW_DEV_KEY", raising=False)
    missing = tmp_path / "secrets" / "pii.key"
    monkeypatch.setenv("TOKENBOOK_PII_KEY_FILE", str(missing))
    settings = load_settings()  # would raise if it read the file
    assert not settings.is_dev_key
    with pytest.raises(ValueError, match="cannot read the key"):
        settings.require_pii_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOOK_")}
    env["TOKENBOOK_PII_KEY_FILE"] = str(missing)
    sample = tmp_path / "calls.jsonl"
    sample.write_text('{"request_id": "r1"}\n')
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tokenbook"), "ingest", "gateway", str(sample),
         "--date", "2026-11-20", "--warehouse", f"duckdb:///{tmp_path / 'wh.duckdb'}"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == CONFIG_INVALID, proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr
    missing.parent.mkdir()
    missing.write_text("k-of-our-own\n")
    assert load_settings().require_pii_key() == "k-of-our-own"
