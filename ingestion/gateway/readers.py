"""Gateway-log readers: the interface every input format implements, and format detection.

The reader interface (contract with ``native.py``, ``litellm.py``, ``otel.py``)
===============================================================================

A reader is a module-level function::

    def read(con: duckdb.DuckDBPyConnection, path: pathlib.Path, into: str) -> None

It reads ONE file and creates a TEMP table named ``into`` (``create temp table {into} as ...``),
or a TEMP view when the scan is cheap to run once later (the native JSON-lines reader: the
pipeline then parses the file inside its typing statement; the reader must still raise
ReaderError for an unreadable file, e.g. by fetching one row), holding one row per source
record, with exactly these columns, in this order:

``source_line BIGINT``
    1-based line number (JSONL) or record number (Parquet row, JSON-array element, OTLP span
    in document order). Unique within the file; the pipeline keeps file order by it.
    A VIEW may leave it NULL on every row ("positional"): the record's number is then its
    row position, 1-based, in the table the pipeline materialises from the view in one
    order-preserving statement (the native JSON-lines reader: a parallel scan has no row
    numbers). Such a view keeps one row per line; a line that is not a record (blank) is a
    row whose ``parse_error`` is :data:`SKIP`, which the pipeline drops after numbering.
``raw_line VARCHAR``
    The record as text, used only for quarantine (it is redacted before it lands). May be NULL
    on a fast path; the pipeline then rebuilds it from the row's columns.
``parse_error VARCHAR``
    NULL when the record parsed as an object. Otherwise the quarantine reason, one of
    ``'not JSON'``, ``'not a JSON object'``, or a short reader-specific reason
    (e.g. ``'span without gen_ai attributes'``). Rows with a parse_error are quarantined as is.
``<one VARCHAR column per field of schema.NATIVE_FIELDS, in that dict's order>``
    The value mapped onto the native field: a string's own text (not JSON-quoted), a number's
    or boolean's JSON text (``'12'``, ``'0.5'``, ``'true'``), an object or array as JSON text
    (``metadata`` is the object's JSON text). NULL when absent or JSON null. Readers of other
    formats convert to the native conventions here (tokens: ``input_tokens`` is ALL input,
    cache read and write included; ``output_tokens`` includes reasoning; timestamps as
    RFC 3339 UTC text, e.g. ``'2026-11-01T10:00:00.123Z'``), and never type-check: typing
    (``try_cast``) and validation happen once, in the pipeline, for every format.
``extra VARCHAR``
    A JSON object text holding the record's fields that have no native field (kept, redacted,
    in ``raw.gateway_calls.extra``), or NULL when there are none.

A reader returns None, a :class:`PositionalRead` (a positional view) or a
:class:`SkippedRecords` (units of the file that are by design not records, e.g. OTel spans
that are not GenAI calls: the load report notes them per file).

A reader must not loop over records in Python (use DuckDB/Arrow), must not write outside its
TEMP table, and raises :class:`ReaderError` naming the file (and column) when the file as a
whole cannot be read: missing, unreadable, not the format, or a Parquet file without a
required column. A bad record is never an exception: it is a row with ``parse_error`` set or
with values the pipeline's validation rejects.

The pipeline then does the rest identically for all formats: typing with ``try_cast``,
validation as SQL predicates (one reason per failed rule), the load-date window, duplicate
``request_id`` within a load, PII redaction and pseudonymisation, staging, publication through
a ``schema.Sink``, and the load audit. ``source_format`` in raw.gateway_calls is the format
name under which the reader is registered below.

Formats and detection
=====================

``FORMATS`` maps a format name to ``"module:function"``; modules are imported lazily, so a
format whose reader is missing only fails when a file needs it. ``detect_format(path)``
decides from the file name and the first record (first non-blank line, first array element or
the Parquet schema):

- ``otel``: the record has ``resourceSpans`` (OTLP/JSON export, one request per line or file;
  Grafana Tempo's trace API calls them ``batches``),
  or is one span on its own: a span or trace id (``spanId``, ``span_id``, ``context``,
  ``traceId``, ``TraceId``, ...) beside ``attributes``/``SpanAttributes`` and no
  ``request_id`` (the Python SDK's span JSON, a ClickHouse ``otel_traces`` row, ...);
- ``litellm``: the record has ``startTime`` and one of ``spend``, ``response_cost``,
  ``prompt_tokens`` (LiteLLM_SpendLogs rows or StandardLoggingPayload);
- ``native``: anything else (missing native fields are then reported per record).

Accepted file names: ``*.jsonl``, ``*.ndjson``, ``*.json``, each optionally ``.gz``, and
``*.parquet``. Folders are searched recursively for those, and for files without any suffix
whose head is JSON records (LiteLLM's GCS bucket logger names its objects ``<date>/<id>``);
globs are expanded.
"""

from __future__ import annotations

import glob
import gzip
import importlib
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingestion.gateway.schema import NATIVE_FIELDS
from ingestion.raw.sniff import SniffError, sniff

FORMATS: dict[str, str] = {
    "native": "ingestion.gateway.native:read",
    "litellm": "ingestion.gateway.litellm:read",
    "otel": "ingestion.gateway.otel:read",
}

# Column names and order of a reader's TEMP table.
READER_COLUMNS: tuple[str, ...] = (
    "source_line",
    "raw_line",
    "parse_error",
    *NATIVE_FIELDS,
    "extra",
)

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
SUFFIXES = JSON_SUFFIXES + PARQUET_SUFFIXES

Reader = Callable[..., None]

# parse_error of a row that only holds a line number (a blank line): not a record, dropped.
SKIP = "(not a record)"


@dataclass
class PositionalRead:
    """What a reader returns when its view is positional and checkable (else it returns None).

    ``records``: the rows the view must yield. ``fix_table``: a TEMP table with the reader
    columns (``source_line`` set) whose rows replace the view's rows at positions
    ``source_line`` (records the fast view cannot read exactly), or None. ``exact()``
    re-creates the view the exact (slower) way, used when the pipeline finds that the
    materialised view does not line up (row count, or an all-NULL row where no fix is)."""

    records: int
    fix_table: str | None
    exact: Callable[[], None]


@dataclass
class StreamedRead:
    """What a reader returns when its view streams the file once (the one-pass reader,
    ``jsonl_scan``): the view has ``source_line`` set and holds the ordinary records only.

    After the pipeline's typing statement has consumed the view, ``finish()`` reads the lines
    the stream set apart (``odd``) the exact way into a TEMP table with the reader columns and
    returns its name (or None when there were none); its rows join the records, they replace
    nothing. When the typing statement fails and ``unsupported()`` says why (the file holds
    what only DuckDB's own readers decide), ``fallback()`` re-creates the view with DuckDB
    alone and returns what that reader returns; ``close()`` lets go of the stream."""

    finish: Callable[[], str | None]
    unsupported: Callable[[], Exception | None]
    fallback: Callable[[], object]
    close: Callable[[], None]


@dataclass
class SkippedRecords:
    """What a reader returns when some units of its file are, by design, not records (neither
    loaded nor quarantined): the OTel reader's HTTP/database spans, agent spans and the sibling
    span of a call seen by two instrumentations. ``total`` units (``unit``, e.g. "spans") =
    ``records`` (the rows that parsed into a record; they are the rows read, with any
    unreadable document) + each ``skipped`` count. ``skipped``: (count, singular, plural,
    why) per kind. The load report carries :meth:`note` per file, so nothing disappears from
    the counts unseen."""

    unit: str
    total: int
    records: int
    skipped: list[tuple[int, str, str, str]]
    unreadable: int = 0  # rows that are not units (an unreadable document), quarantined

    def note(self, source_name: str) -> str | None:
        parts = [
            f"{n:,} {one if n == 1 else many}" + (f" {why}" if why else "")
            for n, one, many, why in self.skipped
            if n
        ]
        if not parts:
            return None
        records = f"{self.records:,} call record{'' if self.records == 1 else 's'}"
        read = (
            f"rows read = {records} + {self.unreadable:,} unreadable "
            f"document{'' if self.unreadable == 1 else 's'}; "
            if self.unreadable
            else ""
        )
        return (
            f"{source_name}: {self.total:,} {self.unit} = {records}"
            f"{'' if self.unreadable else ' (rows read)'} + {' + '.join(parts)}; {read}"
            "only call records are loaded or quarantined"
        )


class ReaderError(Exception):
    """A file that cannot be read as a whole; the message names the file (and column)."""


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def has_known_suffix(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def get_reader(fmt: str) -> Reader:
    """The ``read`` function registered for ``fmt``."""
    if fmt not in FORMATS:
        raise ReaderError(f"unknown gateway-log format {fmt!r}; expected one of {sorted(FORMATS)}")
    module_name, func = FORMATS[fmt].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # a format not built yet
        raise ReaderError(f"the {fmt} reader is not available ({exc})") from exc
    return getattr(module, func)


def _unsuffixed_json(path: Path) -> bool:
    """A file whose name has no suffix at all and whose head is JSON records (one per line,
    or an array): LiteLLM's GCS bucket logger names each call's object ``<date>/<response
    id>`` or ``<date>/failure-<hex>``, so a copied bucket folder holds no ``.json`` name.
    Other files without a suffix (a README, a lock file) are not read."""
    if "." in path.name:
        return False
    try:
        return sniff(path).kind in ("jsonl", "json_array")
    except SniffError:
        return False


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths`` (files, folders searched recursively, or globs), in a stable
    order: each argument's files sorted by path, arguments in the order given, no repeats.
    Raises ReaderError naming the first argument that matches nothing."""
    out: list[Path] = []
    seen: set[Path] = set()
    for arg in paths:
        text = str(arg)
        p = Path(text)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and (has_known_suffix(f) or _unsuffixed_json(f))
            )
            if not found:
                raise ReaderError(
                    f"folder {text} holds no gateway-log files "
                    f"(looked for {', '.join('*' + s for s in SUFFIXES)}, and files without "
                    "a suffix holding JSON records)"
                )
        elif p.exists():
            if not p.is_file():
                raise ReaderError(f"{text} is not a regular file")
            found = [p]
        elif glob.has_magic(text):
            found = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
            if not found:
                raise ReaderError(f"no file matches {text}")
        else:
            raise ReaderError(f"file not found: {text}")
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


# Detection reads the file's head; a first record longer than that (a collector batch of
# spans on one line, a spend-log row holding a long prompt) is read further, up to this size.
_HEAD_CHARS = 1 << 16
_MAX_FIRST_RECORD_CHARS = 1 << 27


def _first_record(path: Path) -> object | None:
    """The first JSON record of a JSON/JSONL file (None if it has none or it is not JSON).
    Reads the head, and more (growing, up to ``_MAX_FIRST_RECORD_CHARS``) only while the first
    record is cut off by the end of what was read."""
    opener = gzip.open if is_gzip(path) else open
    size = _HEAD_CHARS
    while True:
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                head = fh.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReaderError(f"cannot read {path}: {exc}") from exc
        whole = len(head) < size
        record, cut_off = _parse_first(head, whole)
        if not cut_off or size >= _MAX_FIRST_RECORD_CHARS:
            return record
        size *= 8


def _cut_off(exc: json.JSONDecodeError, text: str) -> bool:
    """The JSON text failed only because it ends too early (not because it is not JSON)."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()) - 1


def _parse_first(head: str, whole: bool) -> tuple[object | None, bool]:
    """(first record, cut off): cut off when the first record may continue past ``head``."""
    decoder = json.JSONDecoder()
    stripped = head.lstrip()
    if stripped.startswith("["):
        # A JSON array: its first element.
        rest = stripped[1:].lstrip()
        if rest.startswith("]"):
            return None, False
        try:
            return decoder.raw_decode(rest)[0], False
        except json.JSONDecodeError as exc:
            return None, not whole and _cut_off(exc, rest)
    for line in head.splitlines(keepends=True):
        if not line.strip():
            continue
        complete = whole or line.endswith(("\n", "\r"))
        try:
            return json.loads(line), False
        except ValueError:
            if not complete:
                return None, True
        # A pretty-printed object spans lines: try the whole head.
        try:
            return decoder.raw_decode(stripped)[0], False
        except json.JSONDecodeError as exc:
            return None, not whole and _cut_off(exc, stripped)
    return None, not whole


# A span exported on its own (see otel.py): span or trace ids beside an attribute map.
_SPAN_ID_KEYS = {"spanId", "span_id", "SpanId", "context", "spanContext", "traceId", "TraceId"}
_SPAN_ATTRIBUTE_KEYS = {"attributes", "SpanAttributes"}


def _classify_keys(keys: Iterable[str]) -> str:
    keys = set(keys)
    if "resourceSpans" in keys:
        return "otel"
    if keys & _SPAN_ID_KEYS and keys & _SPAN_ATTRIBUTE_KEYS and "request_id" not in keys:
        return "otel"
    if "startTime" in keys and keys & {"spend", "response_cost", "prompt_tokens"}:
        return "litellm"
    return "native"


#: What ``ingest gateway`` reads, for the messages that refuse a file.
READS = (
    "ingest gateway reads gateway logs as JSON lines (.jsonl or .ndjson, one record per line, "
    "optionally .gz), a JSON array (.json) or Parquet, in the native, LiteLLM (also its CSV "
    "spend logs) or OpenTelemetry (OTLP/JSON) format"
)


def check_file(path: Path, fmt: str | None = None) -> str:
    """Say what ``path`` is and refuse what ``ingest gateway`` cannot read, with a sentence
    naming the file, what it is and what the command reads (a billing export of a known
    vendor: which command loads it). Returns the detected format (``fmt`` when given).

    An empty file is not refused here: the load then holds no valid record, which the
    pipeline refuses (and records in raw.load_audit)."""
    path = Path(path)
    try:
        what = sniff(path)
    except SniffError as exc:
        raise ReaderError(str(exc)) from exc
    if what.vendor:
        raise ReaderError(
            f"{path} is {what.vendor_label}, not gateway logs: load it with "
            f"`tokenbook ingest billing --vendor {what.vendor}`"
        )
    if what.kind == "empty":
        return fmt or "native"
    if what.kind == "csv":
        if fmt == "litellm" or _classify_keys(what.columns) == "litellm":
            return "litellm"
        raise ReaderError(f"{path} is {what.describe()}; {READS}")
    if (
        what.kind == "json_document"
        and fmt not in ("otel", "litellm")
        # one OTLP export, or a page of LiteLLM's spend-logs API ({"data": [rows], ...});
        # a document longer than the sniffed head: its keys from the whole first record
        and _classify_keys(what.columns) == "native"
        and detect_format(path) == "native"
    ):
        raise ReaderError(
            f"{path} is {what.describe()}; {READS}. Write one record per line "
            "(for example `jq -c '.[]'` for an array, `jq -c .` for one object)"
        )
    if what.kind in ("text", "binary", "utf16"):
        raise ReaderError(f"{path} is {what.describe()}; {READS}")
    if fmt:
        return fmt
    if what.kind == "parquet":
        return _classify_keys(what.columns)
    return detect_format(path)


def detect_format(path: Path) -> str:
    """``native``, ``litellm`` or ``otel`` for one file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"file not found: {path}")
    if is_parquet(path):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise ReaderError(f"cannot read {path} as Parquet: {exc}") from exc
        return _classify_keys(names)
    record = _first_record(path)
    if isinstance(record, dict):
        return _classify_keys(_record_keys(record))
    return "native"


def _record_keys(record: dict) -> set[str]:
    """A record's keys, with those of its first ``data`` element for a page of an API answer
    (LiteLLM's ``/spend/logs/ui``: ``{"data": [rows], "total": .., "page": ..}``)."""
    keys = set(record)
    data = record.get("data")
    if "request_id" not in keys and isinstance(data, list) and data and isinstance(data[0], dict):
        keys |= set(data[0])
    # Grafana Tempo's trace API (/api/traces/<id>): the export's resourceSpans as "batches"
    batches = record.get("batches")
    if (isinstance(batches, list) and batches and isinstance(batches[0], dict)
            and {"scopeSpans", "resource"} & set(batches[0])):
        keys.add("resourceSpans")
    return keys
