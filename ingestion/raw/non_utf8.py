"""A JSON-lines file with a few lines that are not UTF-8: load the good lines, quarantine the
bad ones with their line number and what is wrong, and refuse only a file in another encoding.

DuckDB refuses a whole file for one byte that is not UTF-8 (a Latin-1 ``\\xe9`` in one
metadata value: a real exporter bug). Nothing here runs on the normal path: only after a
reader failed with DuckDB's invalid-unicode error (:func:`is_not_utf8_error`) does the load
call :func:`repair`, which streams the file once (gzip too) in large chunks, validating each
chunk with ``bytes.decode`` (C speed; Python runs only at a bad byte, found from
``UnicodeDecodeError.start``, never once per good line), and writes a repaired copy where each
bad line is replaced ONE FOR ONE (line numbers do not move) by

    MARK <line number> MARK <the line decoded with errors='replace'>

``MARK`` (U+FFFE, a Unicode noncharacter) makes the line JSON that no reader parses, so every
JSON-lines reader quarantines it as an unparsed line (its text kept as is, like any line that
does not parse); :func:`force_sql` then gives each such row of the load the reason
``not UTF-8 text: byte 0xe9 at column 57`` and its text without the mark (stored, like every
unparsed line, as its shape only: ``redact.unparsed_line_sql``). The mark carries the line
number because a reader may number its rows otherwise (OTel numbers spans).

Readers that parse a line's fields (a CSV, whose records may span lines through a quoted
newline; a JSON line whose reader must not fail on it) take the INLINE repair instead
(``repair(..., inline=True)``): only the line's first bad byte is replaced, by
``MARK<line number>MARK``, and its other bad bytes by U+FFFD. A byte that is not UTF-8 is never
ASCII, so no delimiter, quote or newline moves: the file keeps its records one for one, and the
record holding the mark is found by its text (:func:`marked_rows`: its row number, the line of
the mark, its text without the mark). :func:`check_marked` refuses, with the sentence below, a
file where that does not hold one for one (two bad lines in one record, a bad header line).

A file in another encoding is not a bad row: when more than :data:`MAX_BAD_SHARE` (1%) of its
lines AND more than :data:`MAX_BAD_LINES` (1,000) lines are not UTF-8, :func:`repair` raises
:class:`WrongEncoding`, the sentence with the first line, the byte and the ``iconv`` to run;
nothing is loaded. (A UTF-16 file is refused before any read by ``sniff.py``.) Below that, a
file of a few hundred lines written in Latin-1 loads its ASCII lines and quarantines the
others; the load report's note says how many and how to convert the file.
"""

from __future__ import annotations

import codecs
import gzip
import tempfile
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARK = "\ufffe"
PREFIX = "not-utf8-repaired-"
REASON_PREFIX = "not UTF-8 text:"
MAX_BAD_SHARE = 0.01
MAX_BAD_LINES = 1000
CHUNK_BYTES = 16 << 20

_MARKERS = ("invalid unicode", "valid utf-8", "invalid utf-8")
_ICONV = "`iconv -f CP1252 -t UTF-8 FILE > FILE.utf8`"


class WrongEncoding(Exception):
    """Most of the file is not UTF-8: it is in another encoding, refused whole."""


def is_not_utf8_error(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is DuckDB refusing text that is
    not UTF-8 (``read_csv``: "Invalid unicode"; ``read_text``: "could not read content ... as
    valid UTF-8"; ``read_json``: "invalid UTF-8 encoding")."""
    seen = 0
    while exc is not None and seen < 8:
        text = str(exc).lower()
        if any(m in text for m in _MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def reason(byte: int, column: int) -> str:
    """The quarantine reason of a line whose first bad byte is ``byte`` at ``column``."""
    return f"{REASON_PREFIX} byte 0x{byte:02x} at column {column}"


def is_repaired(path: Path | str) -> bool:
    """``path`` is a repaired copy written by :func:`repair` (a reader reading it notes its
    marked records: :func:`marked_rows`)."""
    return Path(path).name.startswith(PREFIX)


def advice(path: Path | str, line: int, byte: int, why: str = "") -> str:
    """The sentence refusing ``path`` for its first line that is not UTF-8."""
    return (f"{path} is not UTF-8 text: line {line:,} holds byte 0x{byte:02x} (a Latin-1 / "
            f"Windows-1252 file?){why}; convert it, e.g. {_ICONV}, and load that; nothing was "
            "loaded")


@dataclass
class Repaired:
    """The repaired copy of ``source`` and its bad lines (line number, first bad byte, its
    1-based column in characters), in file order; ``lines``: the file's line count."""

    source: Path
    path: Path
    lines: int
    line_numbers: array = field(default_factory=lambda: array("q"))
    bytes_: array = field(default_factory=lambda: array("B"))
    columns: array = field(default_factory=lambda: array("q"))

    @property
    def bad(self) -> int:
        return len(self.line_numbers)

    def reasons(self) -> tuple[list[int], list[str]]:
        """(line numbers, reasons) of the bad lines."""
        return (list(self.line_numbers),
                [reason(b, c) for b, c in zip(self.bytes_, self.columns, strict=True)])

    def note(self, source_name: str) -> str:
        """The load report's note for the file."""
        n = self.bad
        lines = f"{n:,} line{'' if n == 1 else 's'}"
        return (
            f"{source_name}: {lines} of {self.lines:,} not UTF-8 text (the first: line "
            f"{self.line_numbers[0]:,}, byte 0x{self.bytes_[0]:02x} at column {self.columns[0]}) "
            f"quarantined with the reason in raw.quarantine; the other lines loaded. If the "
            f"file was written in another encoding, convert it (e.g. {_ICONV}) and load it "
            "again"
        )


def _opener(path: Path):
    return gzip.open if path.name.lower().endswith(".gz") else open


def repair(path: Path, into: Path, inline: bool = False) -> Repaired:
    """Stream ``path`` (``.gz`` decompressed) into a repaired copy under the folder ``into``
    (see the module docstring); raises WrongEncoding when most of it is not UTF-8. The copy
    is uncompressed and keeps the JSON-lines suffix: readers take its format from its name.

    A file in another encoding is refused early: once more than MAX_BAD_LINES lines are bad,
    the file's lines are counted (newlines only, at C speed) and the repair stops as soon as
    the bad lines are over MAX_BAD_SHARE of them. ``inline``: the line keeps its fields (see
    the module docstring)."""
    path = Path(path)
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    copy = Path(into) / f"{PREFIX}{name}"
    out = Repaired(path, copy, 0)
    lines, total = 0, None
    with _opener(path)(path, "rb") as src, copy.open("wb") as dst:
        carry = b""
        while True:
            chunk = src.read(CHUNK_BYTES)
            data = carry + chunk if carry else chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a chunk: read on
                    carry = data
                    continue
                block, carry = data[:cut], data[cut:]
            else:
                block, carry = data, b""
            lines = _copy_block(block, lines, dst, out, inline)
            if out.bad > MAX_BAD_LINES:
                total = _count_lines(path) if total is None else total
                if out.bad > MAX_BAD_SHARE * total:
                    break
            if not chunk:
                break
    out.lines = lines if total is None else total
    if out.bad > MAX_BAD_LINES and out.bad > MAX_BAD_SHARE * out.lines:
        copy.unlink(missing_ok=True)
        some = "at least " if lines < out.lines else ""
        raise WrongEncoding(
            f"{path} is not UTF-8 text: {some}{out.bad:,} of its {out.lines:,} lines are not "
            f"(the first, line {out.line_numbers[0]:,}, holds byte 0x{out.bytes_[0]:02x}): a "
            f"Latin-1 / Windows-1252 file? Convert it, e.g. {_ICONV}, and load that; nothing "
            "was loaded"
        )
    return out


def _count_lines(path: Path) -> int:
    """The file's line count (decompressed), counting newlines in large chunks."""
    count, last = 0, b"\n"
    with _opener(path)(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


# Bytes validated per decode call: small right after a bad byte (the UnicodeDecodeError holds a
# copy of what was passed), doubling back up to CHUNK_BYTES while the text is good.
_SMALL_WINDOW = 1 << 10


def _copy_block(block: bytes, lines_before: int, dst, out: Repaired, inline: bool = False) -> int:
    """Write ``block`` (whole lines, or the file's last line) to ``dst``, each line that is not
    UTF-8 replaced (see the module docstring) and recorded in ``out``; returns the count of
    lines read so far. Python runs once per window of good text and once per bad line."""
    view = memoryview(block)
    n = len(block)
    pos, window = 0, CHUNK_BYTES
    written, counted, line_at_counted = 0, 0, lines_before + 1
    while pos < n:
        stop = min(n, pos + window)
        try:
            _, used = codecs.utf_8_decode(view[pos:stop], "strict", stop == n)
        except UnicodeDecodeError as err:
            at = pos + err.start
            start = block.rfind(b"\n", 0, at) + 1
            end = block.find(b"\n", at)
            end = n if end < 0 else end + 1
            line = line_at_counted + block.count(b"\n", counted, start)
            dst.write(view[written:start])
            body = block[start:end]
            ending = b"\r\n" if body.endswith(b"\r\n") else b"\n" if body.endswith(b"\n") else b""
            text = body[: len(body) - len(ending)]
            if inline:  # the fields stay: the first bad byte becomes the mark
                cut = at - start
                dst.write(text[:cut] + f"{MARK}{line}{MARK}".encode()
                          + text[cut + 1:].decode("utf-8", "replace").encode() + ending)
            else:
                dst.write(f"{MARK}{line}{MARK}{text.decode('utf-8', 'replace')}".encode()
                          + ending)
            out.line_numbers.append(line)
            out.bytes_.append(block[at])
            out.columns.append(len(block[start:at].decode("utf-8")) + 1)
            pos = written = counted = end
            line_at_counted, window = line + 1, _SMALL_WINDOW
        else:
            pos += used
            window = min(window * 2, CHUNK_BYTES)
    dst.write(view[written:])
    return lines_before + block.count(b"\n") + (1 if n and not block.endswith(b"\n") else 0)


def force_sql(records_sql: str, bad_table: str) -> str:
    """``records_sql`` (a load's typed rows of one file: ``reason``, ``raw_line``,
    ``unparsed``, ``needs_pii``) with each marked line of :func:`repair`'s copy given its
    reason from ``bad_table`` (line BIGINT, reason VARCHAR) and its text without the mark,
    quarantined as an unparsed line whatever it holds."""
    mark = f"'{MARK}'"
    line_of = f"try_cast(split_part(r.raw_line, {mark}, 2) as BIGINT)"
    body = f"substr(r.raw_line, length(split_part(r.raw_line, {mark}, 2)) + 3)"
    return f"""
      select r.* replace (
               coalesce(b.reason, r.reason) as reason,
               case when b.reason is not null then {body} else r.raw_line end as raw_line,
               r.unparsed or b.reason is not null as unparsed,
               case when b.reason is null then r.needs_pii end as needs_pii)
      from ({records_sql}) r
      left join {bad_table} b
        on r.unparsed and starts_with(r.raw_line, {mark}) and b.line = {line_of}
    """


def mark_line_sql(expr: str) -> str:
    """The line number a marked text (``expr``) carries, or NULL."""
    return f"try_cast(regexp_extract({expr}, '{MARK}(\\d+){MARK}', 1) as BIGINT)"


def unmark_sql(expr: str) -> str:
    """``expr`` with its marks replaced by U+FFFD (the byte that was not UTF-8)."""
    return f"regexp_replace({expr}, '{MARK}\\d+{MARK}', '\ufffd', 'g')"


def marked_rows(con, source: str, row_text: str, into: str) -> None:
    """TEMP table ``into`` (source_line, line, raw_line) of the rows of ``source`` (a reader's
    table of an inline-repaired copy, with ``source_line``) whose text ``row_text`` (an
    expression over ``source``) holds a mark: the reader's row number, the line of the mark,
    the text without the mark. Run only on a repaired copy."""
    con.execute(
        f"create or replace temp table {into} as "
        f"select source_line, {mark_line_sql(row_text)} as line, "
        f"{unmark_sql(row_text)} as raw_line, "
        f"length(regexp_extract_all({row_text}, '{MARK}\\d+{MARK}')) as marks "
        f"from {source} where contains({row_text}, '{MARK}') "
        f"and regexp_matches({row_text}, '{MARK}\\d+{MARK}')"
    )


def still_failing(failure: BaseException, exc: BaseException, repaired: Repaired,
                  path: Path | str) -> str:
    """The refusal of a file whose repaired copy a reader still could not read (a bad byte
    outside a JSON string, a missing column): the sentence of the first failure (line, byte,
    iconv), then the copy's error under the file's name."""
    why = str(exc).replace(str(repaired.path), str(path))
    return f"{failure} (with its bytes that are not UTF-8 replaced, it still fails: {why})"


def reread_repaired(path: Path, read: Callable[[Path], None], error: type[Exception],
                    failure: BaseException) -> Repaired:
    """The slow path after ``failure`` (a read of ``path`` that ``is_not_utf8_error``): the file
    streamed into a repaired copy with inline marks (``repair(inline=True)``, a temporary
    folder), read again by ``read(copy)``; returns the repair. Raises ``error`` with the
    sentence for a file in another encoding (``WrongEncoding``) or a copy that still fails
    (``still_failing``), and ``failure`` itself when no byte was bad after all. Used by the
    billing loader and the evals loader; their marked records are then checked
    (``check_marked``) and quarantined (``quarantine_marked``)."""
    with tempfile.TemporaryDirectory(prefix="tokenbook-not-utf8-") as folder:
        try:
            repaired = repair(path, Path(folder), inline=True)
        except WrongEncoding as exc:
            raise error(str(exc)) from failure
        if not repaired.bad:  # the reader's failure was something else after all
            raise failure
        try:
            read(repaired.path)
        except error as exc:  # the sentence, then why the copy failed (under the file's name)
            raise error(still_failing(failure, exc, repaired, path)) from exc
    return repaired


class NotOneForOne(Exception):
    """The repaired copy's marked records do not match its bad lines one for one."""


def check_marked(con, marked: str, repaired: Repaired, source_name: str,
                 header: bool = False) -> None:
    """Raise NotOneForOne (the sentence to refuse the file with) unless each bad line of
    ``repaired`` is found once, in its own record, in ``marked`` (see :func:`marked_rows`);
    ``header``: the file's line 1 is a header (a bad header is refused)."""
    first_line, first_byte = repaired.line_numbers[0], repaired.bytes_[0]
    if header and first_line == 1:
        raise NotOneForOne(advice(source_name, 1, first_byte, "; it is the header line"))
    rows, marks, lines = con.execute(
        f"select count(*), coalesce(sum(marks), 0), count(distinct line) from {marked}"
    ).fetchone()
    if not rows == marks == lines == repaired.bad:
        raise NotOneForOne(advice(
            source_name, first_line, first_byte,
            "; its lines that are not UTF-8 do not map one for one onto its records (a record "
            "spanning lines through a quoted newline?), so they cannot be quarantined alone"))


def quarantine_marked(con, into: str, marked: str, repaired: Repaired,
                      nulled: list[str]) -> None:
    """Make each record of a reader's table ``into`` (source_line, raw_line, parse_error,
    ``nulled``...) that ``marked`` (see :func:`marked_rows`, checked by :func:`check_marked`)
    finds an unparsed line: ``parse_error`` its reason (plus the file's line when the reader
    numbers its records otherwise: a CSV counts data rows), ``raw_line`` its text without the
    mark, every column of ``nulled`` NULL (nothing, money least of all, is read from a repaired
    line). Drops ``marked``."""
    lines, reasons = repaired.reasons()
    bad = f"{marked}_reasons"
    con.execute(f"create or replace temp table {bad} as "
                "select unnest(?::BIGINT[]) as line, unnest(?::VARCHAR[]) as reason",
                [lines, reasons])
    emptied = "".join(f", {c} = NULL" for c in nulled)
    con.execute(
        f"""update {into} as p set
              parse_error = r.reason || case when m.line is distinct from m.source_line
                then ' (line ' || m.line || ' of the file)' else '' end,
              raw_line = m.raw_line{emptied}
            from {marked} as m join {bad} as r using (line)
            where p.source_line = m.source_line"""
    )
    con.execute(f"drop table if exists {bad}")
    con.execute(f"drop table if exists {marked}")
