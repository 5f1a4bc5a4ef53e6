"""The one-pass reader of native JSON lines: each line parsed once, in C, on every core.

DuckDB's ``read_json`` returns only the fields it is given, so the DuckDB-only read parses
every line twice (``native.line_pass`` for the key lists, then ``read_json`` for the
values). ``_jsonl.c`` (built by ``make install``, see ``jsonl_build.py``) parses each line
once and returns, per chunk of the file, Arrow columns: each native field as text exactly as
``read_json`` renders it, ``extra`` (the unknown fields as one JSON object), the line number,
and apart the "odd" lines with their text. The chunks are parsed on a thread pool (the C code
releases the GIL) while DuckDB consumes the batches in file order as an Arrow stream. The
odd lines (not a JSON object, a duplicate or escaped key, a value whose rendering the C code
does not claim to know) are read by DuckDB's JSON functions afterwards, the exact way, so
the C code never decides anything the exact way would decide otherwise; a test compares the
two readings on every shape the format allows.

What DuckDB treats at the level of the file (not UTF-8, a NUL or 0x1f byte, a bare carriage
return, a line over 4 MiB, a byte-order mark) raises :class:`Unsupported` before anything is
written: the file is then read by DuckDB alone, which reports it as before.
"""

from __future__ import annotations

import mmap
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    from ingestion.gateway import _jsonl
except ImportError:  # not built (no C compiler): DuckDB reads the file alone
    _jsonl = None

# Bytes per chunk handed to one thread: ~40k lines of a typical gateway record; large enough
# that the per-chunk cost vanishes, small enough that a 4 GB file keeps a few chunks in memory.
CHUNK_BYTES = 32 << 20


class Unsupported(Exception):
    """The file holds something only DuckDB's own readers decide (``reason``, ``line``)."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason if line is None else f"{reason} (line {line:,})")
        self.reason, self.line = reason, line


def available() -> bool:
    """True when the C reader is built."""
    return _jsonl is not None


def _text(col) -> pa.Array:
    rows, nulls, valid, offsets, data = col
    return pa.Array.from_buffers(
        pa.string(), rows,
        [pa.py_buffer(valid) if nulls else None, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=nulls,
    )


def _bounds(mm, size: int, chunk: int):
    """(start, end) byte ranges of ``mm`` cut just after a line end."""
    start = 0
    while start < size:
        cut = mm.find(b"\n", min(start + chunk, size) - 1) if start + chunk < size else -1
        end = size if cut < 0 else cut + 1
        yield start, end
        start = end


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
        self.lines = self.blank = 0
        self._odd: list[pa.Table] = []
        self.unsupported: Unsupported | None = None
        self.schema = pa.schema(
            [("source_line", pa.int64())] + [(f, pa.string()) for f in self.fields]
            + [("extra", pa.string())]
        )

    def _batch(self, out: dict, base: int) -> pa.RecordBatch:
        index = np.frombuffer(out["line_index"], dtype=np.int64) + (base + 1)
        cols = [pa.array(index)] + [_text(c) for c in out["columns"]]
        odd = out["odd"]
        if odd[0]:
            self._odd.append(pa.table({
                "n": pa.array(np.frombuffer(out["odd_index"], dtype=np.int64) + (base + 1)),
                "line": _text(odd),
            }))
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def batches(self):
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:3] == b"\xef\xbb\xbf":
                self.unsupported = Unsupported("a byte-order mark", 1)
                raise self.unsupported
            view = memoryview(mm)
            pool = ThreadPoolExecutor(max_workers=max(1, self.threads),
                                      thread_name_prefix="tokenbook-jsonl")
            pending: deque = deque()
            try:
                bounds = _bounds(mm, size, self.chunk)
                for start, end in bounds:
                    pending.append(pool.submit(_jsonl.scan, view[start:end], self.fields))
                    if len(pending) > self.threads:
                        break
                while pending:
                    out = self._result(pending.popleft())
                    nxt = next(bounds, None)
                    if nxt is not None:
                        pending.append(pool.submit(_jsonl.scan, view[nxt[0]:nxt[1]], self.fields))
                    batch = self._batch(out, self.lines)
                    self.lines += out["lines"]
                    self.blank += out["blank"]
                    if batch.num_rows:
                        yield batch
            finally:
                for f in pending:
                    f.cancel()
                pool.shutdown(wait=True)
                view.release()

    def _result(self, future) -> dict:
        try:
            return future.result()
        except _jsonl.Unsupported as exc:
            reason, line = exc.args
            self.unsupported = Unsupported(reason, self.lines + line + 1)
            raise self.unsupported from None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def odd(self) -> pa.Table:
        if not self._odd:
            return pa.table({"n": pa.array([], pa.int64()), "line": pa.array([], pa.string())})
        return pa.concat_tables(self._odd)
