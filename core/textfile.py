"""Small text files a user edits (configuration, thresholds, events, FX rates): read as UTF-8,
and when they are not, one sentence naming the file, the line and how to save it.

``read_utf8(path)`` returns the text (a BOM, as Excel's "CSV UTF-8" writes, is allowed);
``NotUtf8Text`` (a ValueError) carries ``line`` and ``problem`` for callers that report them
in their own format (``tokenbook config check``)."""

from __future__ import annotations

from pathlib import Path


class NotUtf8Text(ValueError):
    def __init__(self, path: Path, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem
        super().__init__(f"{path} is not UTF-8 text: {problem}; save it as UTF-8 "
                         "(Excel: 'CSV UTF-8')")


def read_utf8(path: str | Path) -> str:
    """The file's text; NotUtf8Text for UTF-16 (Excel's 'Unicode Text') or a byte that is not
    UTF-8 (a Latin-1 / Windows-1252 file), with its line."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise NotUtf8Text(path, 1, "the file is UTF-16 text (Excel's 'Unicode Text')")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NotUtf8Text(path, line, f"byte 0x{data[exc.start]:02x} is not UTF-8 (a Latin-1 "
                                      "or Windows-1252 file?)") from exc
