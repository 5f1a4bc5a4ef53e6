"""The one-pass reader of native JSON lines: each line parsed once, in C, on every core.

DuckDB's ``read_json`` returns only the fields it is given, so the DuckDB-only read parses
every line twice (``native.line_pass`` for the key lists, then ``read_json`` for the
values). ``_jsonl.c`` (built by ``make install``, see ``jsonl_build.py``) parses each line
once and returns, per chunk of the file, Arrow columns: each native field as text exactly as
DuckDB's JSON functions render it (the exact reading, ``native._from_json_text``; ``read_json``
differs only on numbers below 1e-4: ``8.1e-05`` for ``0.000081``, the same value once typed),
``extra`` (the unknown fields as one JSON object), the line number,
and apart the "odd" lines with their text. The chunks are parsed on a thread pool (the C code
releases the GIL) while DuckDB consumes the batches in file order as an Arrow stream. The
odd lines (not a JSON object, a duplicate or escaped key, a value whose rendering the C code
does not claim to know) are read by DuckDB's JSON functions afterwards, the exact way, so
the C code never decides anything the exact way would decide otherwise; a test compares the
two readings on every shape the format allows.

What DuckDB treats at the level of the file (not UTF-8, a NUL or 0x1f byte, a bare carriage
return, a line over 4 MiB, a byte-order mark, a damaged gzip stream) raises :class:`Unsupported` before anything is
written: the file is then read by DuckDB alone, which reports it as before.
"""

from __future__ import annotations

import gzip
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from ingestion.gateway.readers import is_gzip

try:
    from ingestion.gateway import _jsonl
except ImportError:  # not built (no C compiler): DuckDB reads the file alone
    _jsonl = None


def _stale(module) -> bool:
    """The library was built from another version of ``_jsonl.c`` (a pull without
    ``make install``): its output may not be what this module reads, so it is not used."""
    from ingestion.gateway import jsonl_build

    try:
        return getattr(module, "source_sha256", None) != jsonl_build.source_sha256()
    except OSError:  # an installed wheel without the source: nothing to compare with
        return False


STALE = _jsonl is not None and _stale(_jsonl)
if STALE:
    _jsonl = None

# The text of the lines set apart is kept (in Arrow) until the stream ends: past this much of
# it (a file whose every line has an escaped key, say) the file is read by DuckDB alone, whose
# exact pass streams and spills instead.
ODD_MAX_BYTES = 256 << 20

# Bytes per chunk handed to one thread: ~40k lines of a typical gateway record; large enough
# that the per-chunk cost vanishes, small enough that a 4 GB file keeps a few chunks in memory.
CHUNK_BYTES = 32 << 20


class Unsupported(Exception):
    """The file holds something only DuckDB's own readers decide (``reason``, ``line``)."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason if line is None else f"{reason} (line {line:,})")
        self.reason, self.line = reason, line


def available() -> bool:
    """True when the C reader is built (from this version of its source)."""
    return _jsonl is not None


def _text(col) -> pa.Array:
    rows, nulls, valid, offsets, data = col
    return pa.Array.from_buffers(
        pa.string(), rows,
        [pa.py_buffer(valid) if nulls else None, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=nulls,
    )


def _int64(index: bytes, base: int) -> pa.Array:
    """Line indexes in a chunk (int64) as 1-based line numbers of the file."""
    return pa.array(np.frombuffer(index, dtype=np.int64) + (base + 1))


def _fill(fh, view) -> int:
    """Read into ``view`` until it is full or the file ends (a gzip stream gives a block at a
    time); the bytes read."""
    total = 0
    while total < len(view):
        got = fh.readinto(view[total:])
        if not got:
            break
        total += got
    return total


def _chunks(fh, chunk: int, spare: deque):
    """(buffer, piece) pairs: the file's bytes in pieces of about ``chunk`` bytes, each ending
    just after a line end (the last one where the file ends), read into ``buffer``. Read, not
    memory-mapped (a mapped 4 GB file counts in full in the process's resident memory once
    parsed), into buffers the caller hands back through ``spare`` once a piece is parsed:
    fresh buffers for every chunk cost a page fault per 4 KB (0.6 s of system time per GB)."""
    size = chunk + MAX_LINE
    carry = b""
    while True:
        buf = spare.popleft() if spare else bytearray(size)
        n0 = len(carry)
        buf[:n0] = carry
        room = min(chunk, size - n0)
        got = _fill(fh, memoryview(buf)[n0: n0 + room]) if room else 0
        end = n0 + got
        if not got:
            if room == 0:
                raise Unsupported("a line longer than 4 MiB")
            if carry:
                yield buf, memoryview(buf)[:end]
            return
        cut = buf.rfind(b"\n", 0, end)
        if cut < 0:
            carry = bytes(buf[:end])
            spare.append(buf)
            continue
        carry = bytes(buf[cut + 1: end])
        yield buf, memoryview(buf)[: cut + 1]


# the longest line the C code reads (as DuckDB's maximum_object_size in the DuckDB-only read)
MAX_LINE = 4 << 20


class Scan:
    """One file's one-pass read. ``batches()`` yields Arrow record batches (``source_line``,
    the fields, ``extra``) in file order, once; afterwards ``lines``, ``blank`` and
    ``odd()`` (an Arrow table of the odd lines: ``n``, ``line``) describe the whole file."""

    def __init__(self, path: Path, fields: tuple[str, ...], threads: int = 2,
                 chunk: int | None = None):
        if _jsonl is None:
            raise Unsupported("the one-pass reader is not built (make install)")
        self.path, self.fields, self.threads = Path(path), tuple(fields), threads
        self.chunk = chunk or CHUNK_BYTES
        self.lines = self.blank = self.odd_bytes = 0
        self.size = self.path.stat().st_size
        self.bytes_done = 0  # bytes of the file parsed and handed to DuckDB
        self._odd: list[pa.Table] = []
        self.unsupported: Unsupported | None = None
        self.schema = pa.schema(
            [("source_line", pa.int64())] + [(f, pa.string()) for f in self.fields]
            + [("extra", pa.string())]
        )

    def _batch(self, out: dict, base: int) -> pa.RecordBatch:
        cols = [_int64(out["line_index"], base)] + [_text(c) for c in out["columns"]]
        odd = out["odd"]
        self.odd_bytes += len(odd[4])
        if self.odd_bytes > ODD_MAX_BYTES:
            raise Unsupported(f"more than {ODD_MAX_BYTES >> 20} MB of lines set apart for the "
                              "exact reading")
        if odd[0]:
            self._odd.append(pa.table({
                "n": _int64(out["odd_index"], base),
                "line": _text(odd),
            }))
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def batches(self):
        try:
            yield from self._batches()
        except Unsupported as exc:
            self.unsupported = exc
            raise

    def _open(self):
        """The file's bytes: a gzip file is inflated as it is read (zlib lets go of the GIL:
        the pool parses meanwhile)."""
        if is_gzip(self.path):
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")

    def _batches(self):
        try:
            yield from self._read()
        except (OSError, EOFError, zlib.error) as exc:
            if not is_gzip(self.path):
                raise
            # a damaged gzip stream: DuckDB's reading names the byte (raise_if_damaged_gzip)
            raise Unsupported(f"a gzip stream that does not inflate ({exc})") from None

    def _read(self):
        with self._open() as fh:
            if fh.read(3) == b"\xef\xbb\xbf":
                raise Unsupported("a byte-order mark", 1)
            fh.seek(0)
            pool = ThreadPoolExecutor(max_workers=max(1, self.threads),
                                      thread_name_prefix="tokenbook-jsonl")
            pending: deque = deque()
            spare: deque = deque()
            pieces = _chunks(fh, self.chunk, spare)

            def submit(item) -> None:
                buf, piece = item
                pending.append((buf, pool.submit(_jsonl.scan, piece, self.fields)))

            try:
                # the pool parses up to one chunk per thread ahead of the one DuckDB reads
                for item in pieces:
                    submit(item)
                    if len(pending) > self.threads:
                        break
                while pending:
                    buf, future = pending.popleft()
                    out = self._result(future)
                    spare.append(buf)  # its piece is parsed: the buffer reads the next one
                    item = next(pieces, None)
                    if item is not None:
                        submit(item)
                    batch = self._batch(out, self.lines)
                    self.bytes_done += out["bytes"]
                    self.lines += out["lines"]
                    self.blank += out["blank"]
                    if batch.num_rows:
                        yield batch
            finally:
                for _, f in pending:
                    f.cancel()
                pool.shutdown(wait=True)

    def _result(self, future) -> dict:
        try:
            return future.result()
        except _jsonl.Unsupported as exc:
            reason, line = exc.args
            raise Unsupported(reason, self.lines + line + 1) from None

    def percent(self) -> float:
        """How much of the file has been parsed and handed over (0-100)."""
        return 100.0 * self.bytes_done / self.size if self.size else 100.0

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def odd(self) -> pa.Table:
        if not self._odd:
            return pa.table({"n": pa.array([], pa.int64()), "line": pa.array([], pa.string())})
        return pa.concat_tables(self._odd)
