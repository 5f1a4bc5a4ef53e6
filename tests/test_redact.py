"""PII redaction (ingestion.raw.redact): every kind in real-shaped variants, near-misses
left alone, counts equal to replacements, JSON still valid, keyed pseudonymisation."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import duckdb
import pytest

from ingestion.raw import redact
from ingestion.raw.schema import PII_KINDS


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _sql(con, values: list[str | None]) -> list[tuple]:
    """Redacted text and per-kind counts for each value, computed in DuckDB."""
    counts = redact.pii_count_redacted_sql("v", "r")
    cols = ", ".join(f"{expr} AS {kind}" for kind, expr in counts.items())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE vals AS SELECT * FROM unnest(?) WITH ORDINALITY t(v, i)",
        [values],
    )
    inner = f"SELECT i, v, {redact.redact_sql('v')} AS r FROM vals"
    return con.execute(f"SELECT r, {cols} FROM ({inner}) ORDER BY i").fetchall()


def _one(con, value: str) -> tuple[str, dict[str, int]]:
    row = _sql(con, [value])[0]
    return row[0], {k: n for k, n in zip(redact.KINDS, row[1:], strict=True) if n}


def _luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "0" * (length - len(prefix) - 1)
    for check in "0123456789":
        if redact._luhn_ok(body + check):
            return body + check
    raise AssertionError


VALID_CARDS = [
    "4111111111111111",  # Visa 16
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5500 0055 5555 5559",  # Mastercard
    "378282246310005",  # Amex 15
    "3782 822463 10005",  # Amex grouping 4-6-5
    "6011111111111117",  # Discover
    "30569309025904",  # Diners 14
    "4222222222222",  # Visa 13
    _luhn_complete("6759", 19),  # Maestro 19
]
VALID_IBANS = [
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "GB82 WEST 1234 5698 7654 32",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "IT60X0542811101000000123456",
]
VALID_SSNS = ["123-45-6789", "078-05-1120", "536-22-1234", "899-99-9999"]
PHONES = [
    "+1 415 555 0134",
    "+1-415-555-0134",
    "+14155550134",
    "(415) 555-0134",
    "(415)555-0134",
    "415-555-0134",
    "415.555.0134",
    "415 555 0134",
    "+44 20 7946 0958",
    "+49 30 1234567",
    "+33 1 23 45 67 89",
    "+91 98765 43210",
    "+81-3-1234-5678",
    "+61 2 9876 5432",
]
IPS = [
    "192.168.0.1",
    "10.0.0.12",
    "8.8.8.8",
    "255.255.255.255",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "2001:db8::8a2e:370:7334",
    "fe80::1ff:fe23:4567:890a",
    "::1",
]
EMAILS = [
    "jane.doe@example.com",
    "j.o'hara@example.org".replace("'", ""),
    "first+tag@sub.example.co.uk",
    "ops_team-1@corp-mail.io",
    "X@Y.DE",
]
SECRETS = [
    "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4",
    "sk-proj-" + "Zx9" * 15,
    "sk-ant-api03-" + "q" * 40 + "-AA",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "gho_" + "Z9y8" * 9,
    "xoxb-123456789012-123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
    "AIzaSyD-1234567890abcdefghijklmnopqrstu",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    # the rule set vendored from gitleaks (secret_rules.toml), at full real length
    "sk-ant-api03-" + "Qw7_eR9-tY2u" * 7 + "Io3pAs5dF" + "AA",  # 93 + AA
    "sk-ant-admin01-" + "Zx8cV6bN4m" * 9 + "Lk2" + "AA",
    "sk-proj-" + "Ab1Cd2Ef3G" * 7 + "h4Ij" + "T3BlbkFJ" + "Kl5Mn6Op7Q" * 7 + "r8St",
    "sk_live_" + "51NqFh2e" * 3 + "Zt",  # Stripe live secret key
    "rk_live_" + "Pq7Rs8Tu9V" * 2,  # Stripe restricted key
    "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi",  # Hugging Face, 34 letters
    "api_org_" + "MnBvCxZlKjHgFdSaPoIuYtReWqMnBvCxZl",
    "glpat-" + "xK9-mP2_qR7sT4vW1yZ3",  # GitLab PAT
    "glpat-" + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC" + ".01" + "a2b3c4d",  # GitLab routable PAT
    "glrt-" + "Hj4Kl6Mn8Pq0Rs2Tu4Vw",
    "github_pat_" + "11ABCDE2Y0" + "aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5" * 2 + "Ab",
    "ghs_" + "Tq5Wr6Ey7Ut8Yi9Uo0Pa1Sd2Fg3Hj4Kl5Zx6C",
    "AIzaSyB" + "x7Qm2Lk9Pw4Rt6Yu1Io3Ea5Sd8Fg0Hj2K",  # 35 after AIza
    "ASIA" + "Y3ZQK2LMNOP4QRST",
    "https://hooks.slack.com/services/" + "T0AB12CD3/B0EF45GH6/" + "Xy7Zw8Vu9Ts0Rq1Po2Nm3Lk4",
    "xapp-1-A0B1C2D3E4F-1234567890123-" + "a1b2c3d4e5f6a7b8c9d0",
    "-----BEGIN RSA PRIVATE KEY-----" + "MIIEowIBAAKCAQEA7bq9Xf2Lk" * 4 + "-----END RSA PRIVATE KEY-----",
]
# text around a secret, the secret value itself
SECRET_ASSIGNMENTS = [
    ("Authorization: Bearer {v}", "abc.DEF-ghi_jkl0123456789"),
    ("password={v}", "hunter22"),
    ("db password: {v} ok", "Tr0ub4dor&3x"),
    ("api_key={v}&q=1", "0123456789abcdef0123"),
    ('{{"password": "{v}"}}', "correct horse battery"),
    ('{{"api_key": "{v}", "n": 1}}', "a" * 32),
    ('{{"client_secret":"{v}"}}', "9f8e7d6c5b4a3210"),
    ("export AWS_SECRET_ACCESS_KEY={v}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    # detect-secrets' AWSKeyDetector (secret key by its context) and BasicAuthDetector
    ("the aws secret key is {v} for prod", "Gh7Jk9Lm2Np4Qr6St8Vw0Xy1Za3Bc5De7Fg9Hi2K"),
    ('{{"aws_key_rotated": "{v}"}}', "Pq2Rs4Tu6Vw8Xy0Za1Bc3De5Fg7Hi9Jk2Lm4No6P"),
    ("postgresql://ledger_app:{v}@db.internal:5432/ledger", "S3cr3tPass99"),
    ('{{"dsn": "redis://default:{v}@cache-1:6379/0"}}', "r3d1sPw-77"),
]


PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"


@pytest.mark.parametrize(
    "text",
    [
        # a private-key block as JSON carries it (escaped newlines), as text, and cut short
        '{"pem": "-----BEGIN PRIVATE KEY-----\\n' + PEM_BODY + "\\n" + PEM_BODY
        + '\\n-----END PRIVATE KEY-----\\n", "n": 1}',
        "key:\n-----BEGIN EC PRIVATE KEY-----\n" + PEM_BODY + "\n" + PEM_BODY
        + "\n-----END EC PRIVATE KEY-----\ndone",
        '{"pem": "-----BEGIN OPENSSH PRIVATE KEY-----\\n' + PEM_BODY + '\\nb3BlbnNz"}',
    ],
)
def test_private_key_blocks_are_redacted_whole(con, text):
    out, counts = _one(con, text)
    assert counts == {"secret": 1}, out
    assert PEM_BODY[:12] not in out and "BEGIN" not in out, out
    if text.startswith("{"):
        json.loads(out)
    assert redact.redact_text(text) == (out, counts)


def test_secret_rules_are_vendored_with_their_source():
    """Every rule names its source; rules taken from a scanner keep the published pattern,
    and the file names each scanner's version and licence."""
    text = redact._RULES_FILE.read_text()
    for source, licence in (("gitleaks", "MIT"), ("detect-secrets", "Apache License 2.0")):
        assert source in text and licence in text
    assert "009e025ad4106ab333aa0b9dc4f2a884390d134c" in text
    for rule in (*redact.TOKEN_RULES, *redact.CONTEXT_RULES):
        assert rule["source"] in {"gitleaks", "detect-secrets", "tokenbook"}, rule["id"]
        if rule["source"] != "tokenbook":
            assert rule["upstream"], rule["id"]


def _cases():
    for v in VALID_CARDS:
        yield "card", v
    for v in VALID_IBANS:
        yield "iban", v
    for v in VALID_SSNS:
        yield "ssn", v
    for v in PHONES:
        yield "phone", v
    for v in IPS:
        yield "ip", v
    for v in EMAILS:
        yield "email", v
    for v in SECRETS:
        yield "secret", v


TEMPLATES = [
    "{v}",
    "contact: {v}.",
    "please use {v}, thanks",
    '{{"note": "customer said {v} on the call"}}',
    '{{"a": {{"b": ["x", "{v}"]}}}}',
    '{{"t": "line one\\n{v}\\tend"}}',
]


@pytest.mark.parametrize("kind,value", list(_cases()))
def test_every_kind_is_redacted_in_every_context(con, kind, value):
    texts = [t.format(v=value) for t in TEMPLATES]
    rows = _sql(con, texts)
    for text, row in zip(texts, rows, strict=True):
        out = row[0]
        counts = {k: n for k, n in zip(redact.KINDS, row[1:], strict=True) if n}
        assert value not in out, (text, out)
        assert f"[REDACTED:{kind}]" in out, (text, out)
        assert counts == {kind: 1}, (text, out, counts)
        if text.startswith("{"):
            json.loads(out)  # still valid JSON
        py, py_counts = redact.redact_text(text)
        assert (py, dict(py_counts)) == (out, counts)


@pytest.mark.parametrize("template,value", SECRET_ASSIGNMENTS)
def test_secret_values_after_key_like_names(con, template, value):
    text = template.format(v=value)
    out, counts = _one(con, text)
    assert value not in out and counts == {"secret": 1}, out
    if text.startswith("{"):
        assert json.loads(out)  # keys kept, value replaced, still JSON


NEAR_MISSES = [
    "4111111111111112",  # Luhn fails
    "4111 1111 1111 1112",
    "5500 0055 5555 5558",
    "DE89370400440532013001",  # mod-97 fails
    "GB82WEST12345698765433",
    "000-12-3456",  # invalid SSN area
    "666-12-3456",
    "912-34-5678",
    "123-00-4567",  # group 00
    "123-45-0000",  # serial 0000
    "999.1.1.1",  # not an IPv4
    "version 1.2.3",
    "v1.2.3.4",
    "Windows 10.0.22631.4460",
    "12:30:45",
    "2026-11-28T10:00:00.123Z",
    "2026-11-28",
    "00:1a:2b:3c:4d:5e",  # MAC address
    "5551234567",  # a bare 10-digit number is not a phone
    "ticket #48213 closed after 1234567 ms",
    "550e8400-e29b-41d4-a716-446655440000",  # uuid
    "12345678-1234-1234-1234-123456789012",
    "req_01J9ZQ4K8M3N5P7R9S1T3V5X7Z",
    "chatcmpl-9pTxTa4E1ZkH8u2b3c4d5e6f7g8h",
    "msg_01XFDUDYJgAACzvnptvVoYEL",
    "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",  # sha256
    "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
    "4bf92f3577b34da6a3ce929d0e0e4736",  # trace id
    "00f067aa0ba902b7",  # span id
    "risk-assessment-for-enterprise-customers",
    "task-1234567890123456789",
    "sk-short",
    "the password is not here",
    "max_tokens=1024",
    "prompt_tokens: 123456",
    "user@localhost",
    "price 1,234,567.89 USD",
    "+5 points",
    '{"ts": 1732800000000, "ns": 1732800000000000000, "n": 4111111111111111}',
    '{"counts": [4111111111111111, 1732800000000], "cost": 0.000123}',
    '{"password": null, "token": 12345678, "api_key": true}',
    '{"user_api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"}',
    '{"user_api_key_alias": "prod-key", "api_key_alias": "analytics"}',
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_and_ordinary_ids_stay(con, text):
    out, counts = _one(con, text)
    assert out == text and counts == {}
    assert redact.redact_text(text) == (text, {})


def test_null_stays_null_and_counts_zero(con):
    row = _sql(con, [None])[0]
    assert row[0] is None and all(n == 0 for n in row[1:])


def test_many_values_in_one_json_document_stay_valid(con):
    doc = {
        "customer": {"email": "a.b@example.com", "phone": "+44 20 7946 0958"},
        "payment": "card 4111 1111 1111 1111 / iban DE89 3704 0044 0532 0130 00",
        "notes": ["ssn 123-45-6789", "from 192.168.1.20 and 2001:db8::1"],
        "headers": {"Authorization": "Bearer abcDEF0123456789ghij", "x": 'quote " inside'},
        "ids": {"req": "req_01J9ZQ4K8M3N", "trace": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "usage": {"prompt_tokens": 1234567, "ts": 1732800000000},
        "unicode": "café <b@c.io>",
    }
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False, separators=(",", ":"))):
        out, counts = _one(con, text)
        parsed = json.loads(out)
        assert counts == {
            "email": 2,
            "phone": 1,
            "card": 1,
            "iban": 1,
            "ssn": 1,
            "ip": 2,
            "secret": 1,
        }
        assert parsed["ids"] == doc["ids"] and parsed["usage"] == doc["usage"]
        assert parsed["headers"]["x"] == 'quote " inside'
        assert "example.com" not in out and "4111" not in out and "DE89" not in out


def test_json_escapes_before_and_after_pii(con):
    # json.dumps writes \n, \" and (with ensure_ascii) \uXXXX right against the value.
    text = json.dumps({"t": "\nbob@x.io\n4111111111111111\t(415) 555-0134\u00e9<a@b.co>"})
    assert "\\u00e9" in text
    out, counts = _one(con, text)
    assert counts == {"email": 2, "card": 1, "phone": 1}
    assert json.loads(out)["t"] == (
        "\n[REDACTED:email]\n[REDACTED:card]\t[REDACTED:phone]\u00e9<[REDACTED:email]>"
    )


def test_counts_from_redacted_column_match(con):
    texts = [t.format(v=v) for _, v in _cases() for t in TEMPLATES[:3]] + NEAR_MISSES
    con.execute("CREATE OR REPLACE TEMP TABLE vals2 AS SELECT unnest(?) AS v", [texts])
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE red AS SELECT v, {redact.redact_sql('v')} AS r FROM vals2"
    )
    cheap = redact.pii_count_redacted_sql("v", "r")
    full = redact.pii_count_sql("v")
    sums = ", ".join(f"sum({cheap[k]}), sum({full[k]})" for k in PII_KINDS)
    row = con.execute(f"SELECT {sums} FROM red").fetchone()
    assert row[0::2] == row[1::2]
    assert sum(row[0::2]) == len(list(_cases())) * 3


def test_sql_matches_python_reference_on_random_documents(con):
    rng = random.Random(11)
    pool = [v for _, v in _cases()] + NEAR_MISSES[:30]
    words = ["ok", "ticket", "42", "2026-11-28", "v1.2", "req_01ABC", "::", "-", "+", "(", "\\n"]
    texts = []
    for _ in range(400):
        parts = [
            rng.choice(pool if rng.random() < 0.4 else words) for _ in range(rng.randint(1, 8))
        ]
        sep = rng.choice([" ", ", ", "; ", " | "])
        texts.append(json.dumps({"note": sep.join(parts), "n": rng.randint(0, 10**15)}))
    rows = _sql(con, texts)
    for text, row in zip(texts, rows, strict=True):
        py, py_counts = redact.redact_text(text)
        assert py == row[0], text
        assert {k: py_counts.get(k, 0) for k in redact.KINDS} == dict(
            zip(redact.KINDS, row[1:], strict=True)
        )
        json.loads(row[0])


def test_pseudonymise_is_keyed_hmac_sha256(con):
    key = "s3cret-key"
    expr = redact.pseudonymise_sql("v", key)
    values = ["cust-42", "ACME Corp", "émilie", None]
    got = [r[0] for r in con.execute(f"SELECT {expr} FROM unnest(?) t(v)", [values]).fetchall()]
    want = [
        None
        if v is None
        else "cust_" + hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest()[:16]
        for v in values
    ]
    assert got == want
    other = con.execute(f"SELECT {redact.pseudonymise_sql('v', 'other')} FROM (SELECT 'cust-42' v)")
    assert other.fetchone()[0] != want[0]
    long_key = "k" * 100  # longer than the SHA-256 block: hashed first, as RFC 2104 says
    row = con.execute(
        f"SELECT {redact.pseudonymise_sql('v', long_key)} FROM (SELECT 'x' v)"
    ).fetchone()
    assert row[0] == "cust_" + hmac.new(long_key.encode(), b"x", hashlib.sha256).hexdigest()[:16]
    with pytest.raises(ValueError, match="key is empty"):
        redact.pseudonymise_sql("v", "")


def test_gate_is_a_superset_of_what_redaction_changes(con):
    texts = [t.format(v=v) for _, v in _cases() for t in TEMPLATES] + NEAR_MISSES
    rows = con.execute(
        f"SELECT v, {redact.may_contain_pii_sql('v')}, {redact.redact_sql('v')} <> v "
        "FROM unnest(?) t(v)",
        [texts],
    ).fetchall()
    assert all(gate for _, gate, changed in rows if changed)
    assert sum(1 for _, gate, _ in rows if gate) >= len(list(_cases())) * len(TEMPLATES)
    clean = ["routine request ok", '{"tokens": 1234, "ts": 1732800000000, "model": "gpt-4o"}']
    got = con.execute(f"SELECT {redact.may_contain_pii_sql('v')} FROM unnest(?) t(v)", [clean])
    assert [r[0] for r in got.fetchall()] == [False, False]
