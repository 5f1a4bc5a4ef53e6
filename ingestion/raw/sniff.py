"""Say what a file is before a loader reads it: empty, CSV, JSON lines, one JSON document,
Parquet, or a billing export of a known vendor.

A loader given the wrong file must say so in a sentence ("this is a CSV file; ingest gateway
reads ...", "this looks like an OpenAI usage/costs export: use --vendor openai") instead of
quarantining every line or suggesting a ``--date`` that would not help. The sniffer reads only
the head of the file (64 KiB, decompressed for ``.gz``) and the Parquet schema, so it costs
nothing on the hot path; :func:`gzip_error` streams a whole ``.gz`` file to find where it
breaks, and is called only after a read failed.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.raw import non_utf8

HEAD_BYTES = 1 << 16

# Billing-export signatures: (vendor, what the file is, keys or CSV columns that give it away).
# A record (first JSON object, first result of a paged report, or a CSV header) matching every
# key of a signature is that vendor's export.
VENDOR_SIGNATURES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("openai", "an OpenAI usage/costs API export", ("object:page",)),
    ("openai", "an OpenAI usage export (CSV)", ("num_model_requests", "input_cached_tokens")),
    ("anthropic", "an Anthropic usage report", ("uncached_input_tokens",)),
    ("anthropic", "an Anthropic cost report", ("starting_at", "cost_type")),
    ("aws", "an AWS Cost and Usage Report (CUR 2.0)", ("line_item_usage_start_date",)),
    ("aws", "an AWS Cost and Usage Report (legacy CUR)", ("lineItem/UsageStartDate",)),
    ("gcp", "a Google Cloud billing export", ("usage_start_time", "invoice.month")),
    ("gcp", "a Google Cloud billing export", ("usage_start_time", "invoice")),
    ("azure", "an Azure cost export", ("MeterCategory", "CostInBillingCurrency")),
    ("azure", "an Azure cost export", ("meterCategory", "costInBillingCurrency")),
)


class SniffError(Exception):
    """The file cannot be read at all (missing, unreadable, a broken compressed stream);
    the message names the file and, for a broken ``.gz``, the byte where reading failed."""


@dataclass
class Sniff:
    path: Path
    kind: str  # empty | csv | jsonl | json_document | json_array | parquet | text | binary | utf16
    columns: list[str] = field(default_factory=list)  # CSV header / Parquet / first record keys
    vendor: str | None = None  # billing vendor whose export this is
    vendor_label: str = ""
    size: int = 0

    def describe(self) -> str:
        """What the file is, as a phrase: 'a CSV file (columns a, b, c, ...)'."""
        cols = ", ".join(self.columns[:4]) + (", ..." if len(self.columns) > 4 else "")
        if self.vendor:
            return self.vendor_label
        return {
            "empty": f"empty ({self.size} bytes)",
            "csv": f"a CSV file (columns {cols})",
            "json_document": "one JSON document spread over several lines, not JSON lines"
            + (f" (keys {cols})" if cols else ""),
            "json_array": "a JSON array",
            "jsonl": "JSON lines" + (f" (first record's keys {cols})" if cols else ""),
            "parquet": f"a Parquet file (columns {cols})",
            "text": "a text file that is neither JSON nor CSV",
            "binary": "a binary file that is not Parquet or gzip",
            "utf16": "UTF-16 text (as PowerShell's `>` or Excel's 'Unicode Text' write it), not "
            "UTF-8: convert it first, e.g. `iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8`",
        }[self.kind]


def _utf16(head: bytes) -> bool:
    """UTF-16 without a BOM: text whose every other byte is NUL (ASCII in UTF-16)."""
    sample = head[:4096]
    return len(sample) >= 8 and (sample[1::2].count(0) > 0.9 * len(sample[1::2])
                                 or sample[0::2].count(0) > 0.9 * len(sample[0::2]))


def _is_gz(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _gunzip_head(path: Path, limit: int = HEAD_BYTES) -> bytes:
    """The first ``limit`` decompressed bytes of a gzip file (several members allowed)."""
    out = bytearray()
    fed = 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with path.open("rb") as fh:
        while len(out) < limit:
            chunk = fh.read(4096)
            if not chunk:
                break
            try:
                out += d.decompress(chunk, limit - len(out) + 1)
                while d.unconsumed_tail and len(out) <= limit:
                    out += d.decompress(d.unconsumed_tail, limit - len(out) + 1)
                if d.eof and d.unused_data:  # the next gzip member
                    rest = d.unused_data
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out += d.decompress(rest, limit - len(out) + 1)
            except zlib.error as exc:
                raise SniffError(_gz_message(path, fed, len(chunk), exc)) from exc
            fed += len(chunk)
    return bytes(out[:limit])


def _gz_message(path: Path, fed: int, chunk: int, exc: Exception) -> str:
    return (
        f"{path} is a damaged gzip file: decompression failed between byte {fed:,} and "
        f"{fed + chunk:,} of {path.stat().st_size:,} ({exc}). Fetch the file again from its "
        "source; nothing was loaded."
    )


def gzip_error(path: Path) -> str | None:
    """Stream a whole ``.gz`` file; a message naming the file and the byte where it breaks
    (corrupt data, a bad checksum, or a file cut short), or None when it is sound."""
    import gzip

    path = Path(path)
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        try:
            while gz.read(1 << 20):
                pass
        except EOFError as exc:
            return (
                f"{path} is a gzip file cut short: the compressed stream ends at byte "
                f"{raw.tell():,} before the end of the data ({exc}). Fetch the file again from "
                "its source; nothing was loaded."
            )
        except (OSError, zlib.error) as exc:  # BadGzipFile (CRC) is an OSError
            at = raw.tell()
            return (
                f"{path} is a damaged gzip file: reading failed at or before byte {at:,} of "
                f"{path.stat().st_size:,} ({exc}). Fetch the file again from its source; "
                "nothing was loaded."
            )
    return None


def read_failure(path: Path, what: str, exc: BaseException) -> str:
    """The sentence for a file DuckDB could not read as ``what``: for text that is not UTF-8
    (DuckDB's "Invalid unicode" wall names CSV options), the line and byte and the iconv to
    run (also for DuckDB's "Malformed JSON" when the file holds such a byte); otherwise
    DuckDB's first line. Called only after a read failed (it may stream the file)."""
    text = str(exc)
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    if non_utf8.is_not_utf8_error(exc) or "not utf-8" in text.lower():
        where = _first_non_utf8(Path(path))
        if where is not None:
            return non_utf8.advice(path, *where)
    elif "malformed json" in text.lower():
        # a byte that is not UTF-8 outside a JSON string is "malformed JSON" to DuckDB: say so
        where = _first_non_utf8(Path(path))
        if where is not None:
            return non_utf8.advice(path, *where, f" (DuckDB: {first.rstrip('. ')})")
    return f"cannot read {path} as {what}: {first}"


def _first_non_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte value) of the first byte that is not UTF-8, streaming (gzip too)."""
    import codecs
    import gzip

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    opener = gzip.open if _is_gz(path) else open
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    at = min(err.start, len(chunk) - 1)
                    return line + chunk[:at].count(b"\n"), chunk[at]
                line += chunk.count(b"\n")
    except (OSError, EOFError, zlib.error):
        return None
    return None


def head_bytes(path: Path) -> bytes:
    """The file's first bytes, decompressed for ``.gz``; raises SniffError naming the file."""
    path = Path(path)
    try:
        if _is_gz(path):
            return _gunzip_head(path)
        with path.open("rb") as fh:
            return fh.read(HEAD_BYTES)
    except FileNotFoundError as exc:
        raise SniffError(f"file not found: {path}") from exc
    except OSError as exc:
        raise SniffError(f"cannot read {path}: {exc}") from exc


def _vendor(keys: set[str]) -> tuple[str, str] | None:
    for vendor, label, needed in VENDOR_SIGNATURES:
        if all(k in keys for k in needed):
            return vendor, label
    return None


def _keys_of(obj: object) -> set[str]:
    """Keys of a record, with ``object:<value>`` for an OpenAI-style ``object`` field and the
    keys of a paged report's first result (``data[0].results[0]``)."""
    if not isinstance(obj, dict):
        return set()
    keys = set(obj)
    if isinstance(obj.get("object"), str):
        keys.add(f"object:{obj['object']}")
    data = obj.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        keys |= set(data[0])
        results = data[0].get("results")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            keys |= set(results[0])
    return keys


def _json_kind(text: str, stripped: str, first_line: str) -> tuple[str, object]:
    """(kind, first record) of a head that starts like JSON: JSON lines (one record per line;
    a broken first line does not change that when a later line is a record), one JSON
    document spread over several lines, or a JSON array."""
    try:
        first = json.loads(first_line)
        if isinstance(first, list):
            # a one-line array: a JSON-lines record that is not an object, or a whole array
            kind = "json_array" if first_line.strip() == stripped.strip() else "jsonl"
            return kind, (first[0] if first else None)
        return "jsonl", first
    except ValueError:
        pass
    try:
        doc, _ = json.JSONDecoder().raw_decode(stripped)
    except ValueError:
        doc = None
    if doc is not None:  # a whole document that spans lines (it did not parse as one line)
        if isinstance(doc, list):
            return "json_array", (doc[0] if doc else None)
        return "json_document", doc
    # not one document in the head: JSON lines whose first line is broken, or a document
    # longer than the head (pretty-printed: its first line is a lone bracket)
    for line in text.splitlines()[1:50]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return "jsonl", record
    if first_line.strip() in ("{", "["):
        return ("json_array" if first_line.strip() == "[" else "json_document"), None
    return "jsonl", None


def sniff(path: Path) -> Sniff:
    """What ``path`` is (see the module docstring). Raises SniffError for a file that cannot
    be read (missing, a damaged ``.gz``)."""
    path = Path(path)
    if not path.exists():
        raise SniffError(f"file not found: {path}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise SniffError(f"cannot read {path} as Parquet: {exc}") from exc
        found = _vendor(set(names))
        return Sniff(path, "parquet", names, *(found or (None, "")), size=size)
    head = head_bytes(path)
    if not head.strip():
        return Sniff(path, "empty", size=size)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (b"\x00" in head[:4096] and _utf16(head)):
        return Sniff(path, "utf16", size=size)
    if b"\x00" in head[:4096]:
        return Sniff(path, "binary", size=size)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    first_line = next((ln for ln in text.splitlines() if ln.strip()), "")
    if stripped.startswith(("{", "[")):
        kind, first = _json_kind(text, stripped, first_line)
        keys = _keys_of(first)
        found = _vendor(keys)
        columns = list(first) if isinstance(first, dict) else []
        return Sniff(path, kind, columns, *(found or (None, "")), size=size)
    # a broken first line (garbage, a bare value) before JSON records: still JSON lines
    for line in text.splitlines()[1:50]:
        if line.lstrip().startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                return Sniff(path, "jsonl", list(record),
                             *(_vendor(_keys_of(record)) or (None, "")), size=size)
    # CSV: a header line of several comma- (or semicolon-, tab-) separated names
    for sep in (",", ";", "\t"):
        if first_line.count(sep) >= 1:
            names = [c.strip().strip('"') for c in first_line.split(sep)]
            found = _vendor(set(names))
            return Sniff(path, "csv", names, *(found or (None, "")), size=size)
    return Sniff(path, "text", size=size)
