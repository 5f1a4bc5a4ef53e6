"""PII redaction as DuckDB SQL expressions, used by every load (gateway, billing, evals) and by
the orchestration's failure records. Interface:

- ``redact_sql(expr: str) -> str``: a DuckDB expression giving ``expr`` (VARCHAR) with every
  PII match replaced by ``[REDACTED:<kind>]``.
- ``pii_count_sql(expr: str) -> dict[str, str]``: per kind in ``KINDS`` (raw.schema.PII_KINDS),
  an expression counting the matches of that kind in ``expr``.
- ``pii_count_redacted_sql(original, redacted) -> dict[str, str]``: the same counts, cheaply,
  from an already redacted column (count markers added). Use it when both are selected.
- ``pseudonymise_sql(expr: str, key: str) -> str``: keyed hash of an identifier.
- ``may_contain_pii_sql(expr) -> str``: the cheap gate; false means nothing to redact.
- ``redact_text(s) -> (str, Counter)``: pure-Python reference with the same patterns and
  checks, for tests only (never on the hot path).

How it works. Everything is vectorised DuckDB (RE2 regexes, list lambdas); no Python per row.
Stages run in this order, each on the previous stage's output:
``secret -> email -> iban -> card -> ssn -> phone -> ip``. Secrets go first so a key's digits
are not half-eaten as a phone; IBANs before cards because an IBAN's digits can look like a
card. Markers contain no digits, ``@`` or key-like prefixes, so no later stage touches them, and
a kind's count is exactly the number of its markers the redaction added.

- card: 13-19 digits, optionally single-space/dash separated, passing a Luhn check (computed in
  SQL with list lambdas over the digits). A bare digit run that is a JSON number value
  (``": 4111111111111111,`` / inside ``[...]``) is a number, not a card: timestamps and counts in
  metadata stay. Two cards separated by a single space merge into one >19-digit run and are
  not recognised (separate them with anything else: comma, word, newline).
- iban: two capital letters, two check digits, 11-30 alphanumerics (grouped by 4 with single
  spaces or contiguous) passing ISO 13616 mod-97 (also in SQL, a list_reduce over the digits).
- ssn: ``ddd-dd-dddd`` excluding area 000/666/900-999, group 00 and serial 0000.
- phone: a leading ``+`` with 8-15 digits in groups (international and +1), or US forms
  ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``555 123 4567``. A bare run of
  digits (``5551234567``) is not a phone: it cannot be told from a count or an id.
- ip: dotted IPv4 (octets 0-255) and IPv6 (full, or compressed with ``::``). A four-part
  ``1.2.3.4`` IS redacted (indistinguishable from an address), ``v1.2.3.4`` and three-part
  versions are not; ``10:00:00`` times and MAC addresses are not IPv6.
- email: ``local@domain.tld``.
- secret: provider key shapes (``sk-``, ``sk-ant-``, ``sk-proj-``, ``AKIA``/``ASIA``, ``ghp_``
  and friends, ``github_pat_``, ``xox[abprs]-``, ``AIza``, JWTs), ``Bearer <token>``, and the
  value after key-like names (``password``, ``secret``, ``api_key``, ``token``, ...) in
  ``k=v``, ``k: v`` and JSON ``"k": "v"`` form. Only the value is replaced.

JSON text stays valid: no pattern consumes a quote or a backslash escape (escapes such as
``\\n`` or ``\\u003c`` count as a boundary), and replacements contain neither.
Ordinary ids stay: uuids, ``req_...`` ids, hex hashes and 32-hex trace ids (a digit run glued
to letters or ``_`` is never a candidate), token counts and epoch timestamps.

Cost (measured on this 2-core machine under load, 1M JSON metadata strings of ~200 chars, 2%
with PII): the gate (``may_contain_pii_sql``) is one RE2 scan, ~1-1.5 s per 1M; the full
redaction costs ~20 us per row it runs on and runs only on rows the gate lets through (the
gate is applied through a list, because DuckDB runs lambdas on all rows even under a CASE).
To flag rows, use ``may_contain_pii_sql`` rather than ``redact_sql(x) <> x``: same rows
(a superset), without running any stage.

Pseudonymisation is HMAC-SHA256 built from DuckDB's ``sha256`` over BLOBs (RFC 2104; the key's
inner/outer pads are computed in Python once per call), output ``cust_`` + the first 16 hex.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections import Counter
from pathlib import Path

from ingestion.raw.schema import PII_KINDS

#: The kinds counted in raw.pii_redactions.kind, one definition (``ingestion/raw/schema.py``).
KINDS: tuple[str, ...] = PII_KINDS


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Leading boundary (group 1): start, a JSON escape, or any char that cannot continue a word.
_ESC = r'\\u[0-9A-Fa-f]{4}|\\[nrtbf"/\\]'
_BL = rf"(^|{_ESC}|[^0-9A-Za-z_\\])"
# Trailing boundary for digit-shaped kinds (captured, put back).
_BT = r"($|[^0-9A-Za-z_])"

# --- secret -------------------------------------------------------------------------------
# Token and context rules come from maintained scanners (gitleaks, detect-secrets), vendored
# as data with their source, version and licence in secret_rules.toml.
_RULES_FILE = Path(__file__).with_name("secret_rules.toml")


def _load_rules(path: Path = _RULES_FILE) -> tuple[list[dict], list[dict]]:
    """The token and context rules; a file without either section raises (an edit that
    renamed a section must not quietly turn secret redaction off)."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    token, context = list(data.get("token", [])), list(data.get("context", []))
    if not token or not context:
        missing = " and ".join(n for n, rules in (("[[token]]", token), ("[[context]]", context))
                               if not rules)
        raise RuntimeError(f"{path} has no {missing} rules: secret redaction cannot run")
    return token, context


TOKEN_RULES, CONTEXT_RULES = _load_rules()


def _compact(pattern: str, top: int = 16) -> str:
    """Repetitions above ``top`` as ``{min(m, top),}``: RE2 unrolls ``x{93}`` into 93 copies,
    and the rule set's counts (93, 146, 163-166, 27-300, 50-1000) made the one-pass alternation
    about 4x slower per redacted value (measured: 1.4 s against 0.45 s for 4k values). A match
    runs on to the end of its token anyway, so only the minimum length (a false-positive guard
    kept up to ``top``) matters for redaction."""
    def rep(m: re.Match[str]) -> str:
        lo, hi = int(m.group(1)), m.group(3)
        most = lo if m.group(2) is None else (int(hi) if hi else lo)
        if most <= top and (m.group(2) is None or hi):
            return m.group(0)
        return "{" + str(min(lo, top)) + ",}"

    return re.sub(r"\{(\d+)(,(\d*))?\}", rep, pattern)


# One pass for every token rule (RE2 runs an alternation in one scan; leftmost-first, so the
# specific rules listed first win at a position); the match runs on to the end of the token.
_SECRET_TOKEN = (
    rf"(^|{_ESC}|[^0-9A-Za-z_\-\\])((?:"
    + "|".join(_compact(r["token"]) for r in TOKEN_RULES)
    + r")[A-Za-z0-9_\-]*)"
)
_SECRET_BEARER = r"(?i)((?:^|[^0-9A-Za-z_])bearer\s+)([A-Za-z0-9._~+/=\-]{12,})"
_KEY_NAMES = (
    r"(?:password|passwd|pwd|passphrase|secret|client_secret|secret_key|api[_\-]?key|apikey"
    r"|x-api-key|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|token|private[_\-]?key"
    r"|aws_secret_access_key|credentials?)"
)
# JSON: "api_key": "value"  (value = run of non-quote, non-backslash chars)
_SECRET_KV_JSON = (
    rf'(?i)((?:^|{_ESC}|[^0-9A-Za-z_\-\\]){_KEY_NAMES}(?:\\?")\s*:\s*(?:\\?"))([^"\\]{{6,}})'
)
# text: password=value / api_key: value (key NOT followed by a quote, so JSON numbers stay)
_SECRET_KV_TEXT = (
    rf"(?i)((?:^|{_ESC}|[^0-9A-Za-z_\-\\]){_KEY_NAMES}\s*[:=]\s*)([^\s\"'\\,;&{{}}\[\]]{{6,}})"
)

# --- email --------------------------------------------------------------------------------
_EMAIL = (
    rf"(^|{_ESC}|[^0-9A-Za-z_.%+\-\\])"
    r"([A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,})"
)

# --- iban (candidates; checked with mod-97) ------------------------------------------------
_IBAN_PREFILTER = r"[A-Z]{2}\d{2}"
_IBAN_CAND = rf"{_BL}([A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?)"

# --- card (candidates; checked with Luhn) ------------------------------------------------
# Rows worth the candidate scan: a 13-digit run that is not a bare JSON number, or a grouped
# card shape. (A JSON number is a run after ": , [" and before ", } ]".)
_CARD_PREFILTER = (
    r"(?:^|[^:,\[\d\s])\s*\d{13}|[^\"\s]\s*:\s*\d{13}|[:,\[]\s*\d{13,}\s*(?:[^,}\]\d\s]|$)"
    rf"|(?:^|[^0-9A-Za-z_\\]|{_ESC})(?:\d{{4}}[ \-]\d{{4}}[ \-]\d{{4}}|\d{{4}}[ \-]\d{{6}}[ \-]\d{{4}})"
)
# Alternatives, leftmost-first: escapes; words (a digit run glued to letters is an id, skipped);
# a digit run with its JSON-number context (prefix ": / [ / , and suffix , } ]) when present.
_CARD_TOKENS = (
    rf"{_ESC}|[A-Za-z_]+[0-9][0-9A-Za-z_]*|[0-9]+[A-Za-z_][0-9A-Za-z_]*"
    r'|((?:"\s*:\s*|\[\s*|,\s*)?\d(?:[ \-]?\d){12,}(?:[A-Za-z_][0-9A-Za-z_]*|\s*[,}\]])?)'
)
# Shapes a card is written in: contiguous, 4-4-4-4(-1..3) with one kind of separator, 4-6-4/5.
_CARD_SHAPE = (
    r"^(?:\d{13,19}|\d{4}(?: \d{4}){3}(?: \d{1,3})?|\d{4}(?:-\d{4}){3}(?:-\d{1,3})?"
    r"|\d{4} \d{6} \d{4,5}|\d{4}-\d{6}-\d{4,5})$"
)
_DIGIT_RUN = r"\d(?:[ \-]?\d)*"

# --- ssn ----------------------------------------------------------------------------------
_SSN = (
    rf"(^|{_ESC}|[^0-9A-Za-z_\-\\])"
    r"((?:00[1-9]|0[1-9]\d|[1-578]\d\d|6[0-57-9]\d|66[0-57-9])-(?:0[1-9]|[1-9]\d)"
    r"-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d\d\d))"
    r"($|[^0-9A-Za-z_\-])"
)

# --- phone --------------------------------------------------------------------------------
_PHONE = (
    rf"(^|{_ESC}|[^0-9A-Za-z_+\-.\\])("
    r"\+[1-9]\d{0,2}[ .\-]?\(?\d{1,4}\)?(?:[ .\-]?\d{2,4}){2,4}"
    r"|\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"
    r"|\d{3}[.\-]\d{3}[.\-]\d{4}"
    r"|\d{3} \d{3} \d{4}"
    r")($|[^0-9A-Za-z_\-])"
)

# --- ip -----------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(^|{_ESC}|[^0-9A-Za-z_.\\])({_OCTET}(?:\.{_OCTET}){{3}})($|\.$|\.[^0-9]|[^0-9A-Za-z_.])"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(^|{_ESC}|[^0-9A-Za-z_:\\])("
    rf"(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}:){{1,7}}:(?:{_H}(?::{_H}){{0,6}})?"
    rf"|::{_H}(?::{_H}){{0,6}}"
    r")($|[^0-9A-Za-z_:])"
)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _bind(expr: str, body: str, var: str = "pii_s") -> str:
    """Evaluate ``body`` with ``var`` bound to ``expr`` once (keeps nested SQL linear in size).
    Lambda variables are named ``pii_*`` so they never shadow a caller's column."""
    return f"list_transform([{expr}], lambda {var}: {body})[1]"


def _sub(expr: str, pattern: str, replacement: str) -> str:
    return f"regexp_replace({expr}, {_lit(pattern)}, {_lit(replacement)}, 'g')"


def _luhn_sql(d: str) -> str:
    """True when the digit string ``d`` passes the Luhn check."""
    return (
        f"list_sum(list_transform(string_split(reverse({d}), ''), lambda pii_c, pii_i: "
        f"CASE WHEN pii_i % 2 = 0 THEN (CAST(pii_c AS INTEGER) * 2) % 9 + "
        f"CASE WHEN pii_c = '9' THEN 9 ELSE 0 END ELSE CAST(pii_c AS INTEGER) END)) % 10 = 0"
    )


def _mod97_sql(c: str) -> str:
    """True when the IBAN text ``c`` (spaces allowed) passes ISO 13616 mod-97."""
    n = f"replace({c}, ' ', '')"
    rearranged = f"(substr({n}, 5) || substr({n}, 1, 4))"
    vals = (
        f"list_transform(string_split({rearranged}, ''), lambda pii_ch: "
        f"CASE WHEN pii_ch BETWEEN '0' AND '9' THEN ascii(pii_ch) - 48 ELSE ascii(pii_ch) - 55 END)"
    )
    step = "(pii_a * CASE WHEN pii_v >= 10 THEN 100 ELSE 10 END + pii_v) % 97"
    return (
        f"(length({n}) BETWEEN 15 AND 34 AND "
        f"list_reduce({vals}, lambda pii_a, pii_v: {step}, 0) = 1)"
    )


def _replace_all(s: str, matches: str, kind: str) -> str:
    rep = f"replace(pii_acc, pii_m, {_lit(marker(kind))})"
    return f"list_reduce({matches}, lambda pii_acc, pii_m: {rep}, {s})"


def _iban_stage(expr: str) -> str:
    cand = f"regexp_extract_all(pii_s, {_lit(_IBAN_CAND)}, 2)"
    # A greedy candidate may swallow a following capitalised word group: retry without it.
    trimmed = "regexp_replace(pii_t, ' ?[A-Z0-9]+$', '')"
    pick = (
        f"list_filter(list_transform({cand}, lambda pii_t: CASE WHEN {_mod97_sql('pii_t')} "
        f"THEN pii_t WHEN {_mod97_sql(trimmed)} THEN {trimmed} END), "
        f"lambda pii_t: pii_t IS NOT NULL)"
    )
    body = (
        f"CASE WHEN NOT regexp_matches(pii_s, {_lit(_IBAN_PREFILTER)}) THEN pii_s "
        f"ELSE {_replace_all('pii_s', pick, 'iban')} END"
    )
    return _bind(expr, body)


def _card_stage(expr: str) -> str:
    toks = (
        f"list_filter(regexp_extract_all(pii_s, {_lit(_CARD_TOKENS)}, 1), "
        f"lambda pii_t: pii_t <> '')"
    )
    run = f"regexp_extract(pii_t, {_lit(_DIGIT_RUN)})"
    json_number = (
        "(regexp_matches(pii_t, '^(\"|\\[|,)') AND regexp_matches(pii_t, '[,}\\]]$') "
        f"AND NOT regexp_matches({run}, '[ -]'))"
    )
    digits = f"regexp_replace({run}, '[^0-9]', '', 'g')"
    ok = (
        f"NOT regexp_matches(pii_t, '[A-Za-z_][0-9A-Za-z_]*$') "
        f"AND regexp_matches({run}, {_lit(_CARD_SHAPE)}) "
        f"AND NOT {json_number} AND {_luhn_sql(digits)}"
    )
    pick = f"list_transform(list_filter({toks}, lambda pii_t: {ok}), lambda pii_t: {run})"
    body = (
        f"CASE WHEN NOT regexp_matches(pii_s, {_lit(_CARD_PREFILTER)}) THEN pii_s "
        f"ELSE {_replace_all('pii_s', pick, 'card')} END"
    )
    return _bind(expr, body)


def _secret_stage(expr: str) -> str:
    m = marker("secret")
    out = _sub(expr, _SECRET_TOKEN, rf"\1{m}")
    out = _sub(out, _SECRET_BEARER, rf"\1{m}")
    out = _sub(out, _SECRET_KV_JSON, rf"\1{m}")
    out = _sub(out, _SECRET_KV_TEXT, rf"\1{m}")
    for rule in CONTEXT_RULES:  # group 1 kept, group 2 the secret, group 3 kept
        out = _sub(out, rule["pattern"], rf"\1{m}\3")
    return out


# Cheap gate: a row matching none of these cannot contain PII of any kind (most rows).
_ANY = "|".join(
    (
        "@",
        *dict.fromkeys(r["gate"] for r in (*TOKEN_RULES, *CONTEXT_RULES)),
        r"(?i:bearer)\s",
        rf"(?i:{_KEY_NAMES})\\?\"?\s*[:=]",
        _IBAN_PREFILTER,
        _CARD_PREFILTER,
        r"\d{3}-\d{2}-\d{4}",
        r"\+\d|\(\d{3}\)|\d{3}[.\- ]\d{3}[.\- ]\d{4}",
        r"\d\.\d{1,3}\.\d{1,3}\.\d",
        r"[0-9A-Fa-f]::|::[0-9A-Fa-f]|(?:[0-9A-Fa-f]{1,4}:){7}",
    )
)


def _full_sql(v: str) -> str:
    """Every stage, in order, on the VARCHAR variable ``v``."""
    out = _secret_stage(v)
    email = _sub("pii_e", _EMAIL, "\\1" + marker("email"))
    out = _bind(out, f"CASE WHEN contains(pii_e, '@') THEN {email} ELSE pii_e END", "pii_e")
    out = _iban_stage(out)
    out = _card_stage(out)
    out = _sub(out, _SSN, rf"\1{marker('ssn')}\3")
    out = _sub(out, _PHONE, rf"\1{marker('phone')}\3")
    out = _sub(out, _IPV4, rf"\1{marker('ip')}\3")
    return _sub(out, _IPV6, rf"\1{marker('ip')}\3")


def may_contain_pii_sql(expr: str) -> str:
    """Cheap BOOLEAN gate (one regex): false guarantees ``redact_sql(expr)`` changes nothing.
    Use it to pick the rows worth redacting; it is the first thing ``redact_sql`` checks."""
    return f"coalesce(regexp_matches(CAST(({expr}) AS VARCHAR), {_lit(_ANY)}), false)"


def redact_sql(expr: str) -> str:
    """DuckDB expression: ``expr`` (VARCHAR) with every PII match replaced by a marker.

    Gating through a list: a row the gate rejects becomes an empty list, so the lambdas of
    the full redaction never run on it (DuckDB evaluates lambdas on every element of the
    list child, whatever a surrounding CASE says)."""
    e = f"CAST(({expr}) AS VARCHAR)"
    gated = f"CASE WHEN regexp_matches({e}, {_lit(_ANY)}) THEN [{e}] ELSE [] END"
    return f"coalesce(list_transform({gated}, lambda pii_r: {_full_sql('pii_r')})[1], {e})"


def _marker_count(expr: str, kind: str) -> str:
    m = marker(kind)
    return f"((length({expr}) - length(replace({expr}, {_lit(m)}, ''))) // {len(m)})"


def pii_count_redacted_sql(original: str, redacted: str) -> dict[str, str]:
    """Per kind: markers in ``redacted`` minus markers already present in ``original``
    (BIGINT, 0 for null)."""
    return {
        k: f"coalesce({_marker_count(redacted, k)} - {_marker_count(original, k)}, 0)"
        for k in KINDS
    }


def pii_count_sql(expr: str) -> dict[str, str]:
    """Per kind in schema.PII_KINDS: the number of matches ``redact_sql(expr)`` replaces.

    Each expression recomputes the redaction; when the redacted column is selected anyway,
    ``pii_count_redacted_sql(expr, redacted_column)`` gives the same counts at no extra cost."""
    red = redact_sql(expr)
    return {
        k: _bind(f"{{'o': CAST(({expr}) AS VARCHAR), 'r': {red}}}", _count_pair(k)) for k in KINDS
    }


def _count_pair(kind: str) -> str:
    return f"coalesce({_marker_count('pii_s.r', kind)} - {_marker_count('pii_s.o', kind)}, 0)"


# --- what quarantine keeps of a line that did not parse ---------------------------------------
# A line that is not a JSON object cannot go through the field rules (nothing says which part
# is the prompt or the customer id), so only its shape is kept: JSON keys (identifier-like names
# only), punctuation, true/false/null and numbers of up to 8 characters; every string value
# becomes "[TEXT]", every other word [TEXT], a longer number [NUMBER]. Cut to UNPARSED_KEEP_CHARS,
# prefixed with the line's byte length and SHA-256 so an engineer can find it in the source
# (`sha256sum` of the line without its line break).
UNPARSED_KEEP_CHARS = 240
_SHAPE_TOKENS = (
    r'(?s)"(?:[^"\\]|\\.?)*(?:"|$)(?:\s*:)?|-?\d+(?:\.\d+)?(?:[eE][+\-]?\d+)?|[{}\[\]:,]|\s+'
    r'|[^\s"{}\[\]:,]+'
)


_SHAPE_KEY = r'"[A-Za-z0-9_.\-]{1,64}"\s*:'
_SHAPE_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][+\-]?\d+)?"
_SHAPE_PUNCT = r"[{}\[\]:,]|\s+"


def shape_sql(expr: str) -> str:
    """DuckDB expression: the shape of the text ``expr`` (see above); NULL stays NULL.
    A number is kept only as a JSON value (after ``:``, ``[`` or ``,``): digits in free text
    (``+49 30 9876 5432``, grouped IBANs) are words."""
    t, i, lst = "pii_t", "pii_i", "pii_l"
    prev = f"coalesce({lst}[{i} - 1], '')"
    prev2 = f"coalesce({lst}[{i} - 2], '')"
    json_value = (f"(regexp_matches({prev}, '[:\\[,]$') OR (regexp_full_match({prev}, '\\s+') "
                  f"AND regexp_matches({prev2}, '[:\\[,]$')))")
    quoted_key, quoted = "'\"[TEXT]\":'", "'\"[TEXT]\"'"
    mapped = (
        f"CASE WHEN regexp_full_match({t}, {_lit(_SHAPE_KEY)}) THEN {t} "
        f"WHEN starts_with({t}, '\"') THEN CASE WHEN regexp_matches({t}, ':$') "
        f"THEN {quoted_key} ELSE {quoted} END "
        f"WHEN regexp_full_match({t}, {_lit(_SHAPE_NUMBER)}) AND {json_value} "
        f"THEN CASE WHEN length({t}) <= 8 THEN {t} ELSE '[NUMBER]' END "
        f"WHEN {t} IN ('true', 'false', 'null') OR regexp_full_match({t}, {_lit(_SHAPE_PUNCT)}) "
        f"THEN {t} ELSE '[TEXT]' END"
    )
    toks = f"regexp_extract_all(CAST(({expr}) AS VARCHAR), {_lit(_SHAPE_TOKENS)})"
    body = f"array_to_string(list_transform({lst}, lambda {t}, {i}: {mapped}), '')"
    return _bind(toks, body, lst)


def unparsed_line_sql(expr: str, keep: int = UNPARSED_KEEP_CHARS) -> str:
    """DuckDB expression: what quarantine stores of a line that did not parse:
    ``[unparsed: <bytes> bytes, sha256 <hex>] <shape, redacted, cut to keep chars>``."""
    e = f"CAST(({expr}) AS VARCHAR)"
    return (
        f"CASE WHEN {e} IS NULL THEN NULL ELSE '[unparsed: ' || octet_length(encode({e})) "
        f"|| ' bytes, sha256 ' || sha256({e}) || '] ' || left({redact_sql(shape_sql(e))}, "
        f"{int(keep)}) END"
    )


def unparsed_line_text(line: str, keep: int = UNPARSED_KEEP_CHARS) -> str:
    """Python twin of ``unparsed_line_sql`` (tests; ``raw.pipeline_failures``)."""
    toks = [m.group(0) for m in re.finditer(_SHAPE_TOKENS, line)]

    def one(i: int, t: str) -> str:
        prev, prev2 = (toks[i - 1] if i >= 1 else ""), (toks[i - 2] if i >= 2 else "")
        json_value = bool(re.search(r"[:\[,]$", prev)) or (
            bool(re.fullmatch(r"\s+", prev)) and bool(re.search(r"[:\[,]$", prev2)))
        if re.fullmatch(_SHAPE_KEY, t):
            return t
        if t.startswith('"'):
            return '"[TEXT]":' if t.endswith(":") else '"[TEXT]"'
        if re.fullmatch(_SHAPE_NUMBER, t) and json_value:
            return t if len(t) <= 8 else "[NUMBER]"
        if t in ("true", "false", "null") or re.fullmatch(_SHAPE_PUNCT, t):
            return t
        return "[TEXT]"

    shape = "".join(one(i, t) for i, t in enumerate(toks))
    red, _ = redact_text(shape)
    digest = hashlib.sha256(line.encode()).hexdigest()
    return f"[unparsed: {len(line.encode())} bytes, sha256 {digest}] {red[:keep]}"


# Free text that may quote a record (an exception message in raw.pipeline_failures): the values
# of prompt-text and identifier keys are masked whole, whatever they hold, then the text is
# redacted. Keys: the native format's prompt and identifier fields, and the prompt/response
# fields of the LiteLLM and OTel formats.
_QUOTED_SENSITIVE = (
    r'(?is)("(?:prompt_preview|customer_id|end_user|user|messages|response|prompt|completion'
    r'|proxy_server_request|gen_ai\.(?:prompt|completion|input\.messages|output\.messages'
    r'|system_instructions)[^"]*)\\?"\s*:\s*)(?:"(?:[^"\\]|\\.)*(?:"|$)|\[[^\]]*(?:\]|$)'
    r'|\{[^}]*(?:\}|$))'
)


def mask_quoted_records_sql(expr: str) -> str:
    """DuckDB expression: ``expr`` with the values of prompt-text and identifier keys replaced
    by ``"[TEXT]"``, then redacted (``redact_sql``)."""
    masked = _sub(f"CAST(({expr}) AS VARCHAR)", _QUOTED_SENSITIVE, '\\1"[TEXT]"')
    return redact_sql(masked)


def pseudonymise_sql(expr: str, key: str) -> str:
    """HMAC-SHA256(key, value) as ``cust_<first 16 hex>``; null stays null. ``key`` must be
    non-empty (it comes from settings)."""
    if not key:
        raise ValueError(
            "pseudonymisation key is empty: set TOKENBOOK_PSEUDONYM_KEY (or the settings key)"
        )
    k = key.encode()
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in k).hex()
    opad = bytes(b ^ 0x5C for b in k).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode(CAST(({expr}) AS VARCHAR))))"
    outer = f"sha256(unhex('{opad}') || {inner})"
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE 'cust_' || substr({outer}, 1, 16) END"


def pseudonymise_text(value: str | None, key: str) -> str | None:
    """Python twin of ``pseudonymise_sql`` (tests, documentation)."""
    if value is None:
        return None
    return "cust_" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


# --- pure-Python reference (tests only) ----------------------------------------------------
def _luhn_ok(d: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch)
        if i % 2 == 1:
            x = x * 2 - (9 if x >= 5 else 0)
        total += x
    return total % 10 == 0


def _mod97_ok(c: str) -> bool:
    n = c.replace(" ", "")
    if not 15 <= len(n) <= 34:
        return False
    r = n[4:] + n[:4]
    return int("".join(str(int(ch, 36)) for ch in r)) % 97 == 1


def _py(pattern: str) -> re.Pattern[str]:
    flags = 0
    if pattern.startswith("(?i)"):
        pattern, flags = pattern[4:], re.IGNORECASE
    return re.compile(pattern, flags)


def redact_text(s: str | None) -> tuple[str | None, Counter]:
    """Reference implementation of ``redact_sql`` and ``pii_count_sql`` in plain Python."""
    counts: Counter = Counter()
    if s is None:
        return None, counts
    if not _py(_ANY).search(s):
        return s, counts

    def sub(text: str, pattern: str, kind: str, tail: bool) -> str:
        def rep(mt: re.Match[str]) -> str:
            counts[kind] += 1
            return mt.group(1) + marker(kind) + (mt.group(3) if tail else "")

        return _py(pattern).sub(rep, text)

    s = sub(s, _SECRET_TOKEN, "secret", False)
    s = sub(s, _SECRET_BEARER, "secret", False)
    s = sub(s, _SECRET_KV_JSON, "secret", False)
    s = sub(s, _SECRET_KV_TEXT, "secret", False)
    for rule in CONTEXT_RULES:
        s = sub(s, rule["pattern"], "secret", True)
    s = sub(s, _EMAIL, "email", False)
    if _py(_IBAN_PREFILTER).search(s):
        found = []
        for c in [m.group(2) for m in _py(_IBAN_CAND).finditer(s)]:
            t = re.sub(r" ?[A-Z0-9]+$", "", c)
            if _mod97_ok(c):
                found.append(c)
            elif _mod97_ok(t):
                found.append(t)
        for c in found:
            counts["iban"] += s.count(c)
            s = s.replace(c, marker("iban"))
    if _py(_CARD_PREFILTER).search(s):
        found = []
        for m in _py(_CARD_TOKENS).finditer(s):
            t = m.group(1)
            if not t or re.search(r"[A-Za-z_][0-9A-Za-z_]*$", t):
                continue
            run = re.search(_DIGIT_RUN, t).group(0)
            is_num = (
                re.match(r'^("|\[|,)', t)
                and re.search(r"[,}\]]$", t)
                and not re.search(r"[ -]", run)
            )
            digits = run.replace(" ", "").replace("-", "")
            if re.match(_CARD_SHAPE, run) and not is_num and _luhn_ok(digits):
                found.append(run)
        for c in found:
            counts["card"] += s.count(c)
            s = s.replace(c, marker("card"))
    s = sub(s, _SSN, "ssn", True)
    s = sub(s, _PHONE, "phone", True)
    s = sub(s, _IPV4, "ip", True)
    s = sub(s, _IPV6, "ip", True)
    return s, counts
