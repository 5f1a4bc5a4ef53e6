"""Read and validate the configuration folder (``tokenbook config check``).

Pure Python over a few small CSV files (tens of rows): every problem is collected, not only the
first, each naming the file, line and column and saying what to write instead.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core.settings import project_root
from core.textfile import NotUtf8Text, read_utf8
from tokenbook.orgconfig.spec import BY_NAME, FILES, Column, FileSpec

LEVER_DEFAULTS = project_root() / "dbt_project" / "seeds" / "levers_settings.csv"


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    column: str
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f": column {self.column}" if self.column else "")
        return f"{where}: {self.problem}; {self.fix}"


class ConfigInvalid(ValueError):
    """The configuration folder has errors; ``issues`` lists each one."""

    def __init__(self, folder: Path | None, issues: list[Issue]):
        self.folder, self.issues = folder, issues
        head = f"configuration {folder} is invalid ({len(issues)} error(s)):"
        super().__init__(head + "\n  " + "\n  ".join(str(i) for i in issues))


@dataclass
class ConfigFile:
    spec: FileSpec
    path: Path | None  # None: not configured
    rows: list[dict[str, object]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        return self.path is not None


@dataclass
class OrgConfig:
    folder: Path | None
    files: dict[str, ConfigFile]

    def __getitem__(self, name: str) -> ConfigFile:
        return self.files[name]

    def status(self) -> dict[str, str]:
        """Per file: 'N rows' or what is reported when it is absent."""
        return {n: (f"{len(f.rows)} row(s)" if f.configured else f.spec.absent)
                for n, f in self.files.items()}


class NotUtf8(ValueError):
    """A configuration file in another encoding (Excel's "Unicode Text" is UTF-16)."""

    def __init__(self, line: int, problem: str):
        self.line, self.problem = line, problem
        super().__init__(problem)


def _text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed); NotUtf8 naming the line and the encoding."""
    try:
        return read_utf8(path)
    except NotUtf8Text as exc:
        raise NotUtf8(exc.line, exc.problem) from exc


def _records(path: Path) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """(header, header line, [(line number, cells)]) skipping '#' comment and blank lines."""
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    with io.StringIO(_text(path), newline="") as fh:
        for n, text in enumerate(fh, 1):
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            cells = next(csv.reader([text.rstrip("\r\n")]))
            if header is None:
                header, header_line = [c.strip() for c in cells], n
            else:
                rows.append((n, cells))
    return header or [], header_line, rows


def _parse(value: str, col: Column) -> tuple[object, str | None]:
    """(typed value, error) of one cell; '' is None."""
    v = value.strip()
    if v == "":
        return None, None
    try:
        if col.type == "text":
            out: object = v
        elif col.type == "date":
            out = date.fromisoformat(v)
            if len(v) != 10:
                raise ValueError
        elif col.type == "money":
            out = Decimal(v)
            if not out.is_finite():
                raise InvalidOperation
        elif col.type == "number":
            out = float(Decimal(v))
        elif col.type == "integer":
            out = int(v)
        elif col.type == "boolean":
            if v.lower() not in {"true", "false"}:
                raise ValueError
            out = v.lower() == "true"
        else:  # pragma: no cover - spec error
            raise AssertionError(col.type)
    except (ValueError, InvalidOperation):
        what = {
            "date": "write a date as YYYY-MM-DD, e.g. 2026-03-01",
            "money": "write a plain number with a dot for decimals, e.g. 1250.50 "
            "(no currency sign, no thousands separator)",
            "number": "write a plain number with a dot for decimals, e.g. 0.85",
            "integer": "write a whole number, e.g. 3",
            "boolean": "write true or false",
        }[col.type]
        noun = {"date": "a date", "money": "an amount", "number": "a number",
                "integer": "a whole number", "boolean": "true or false"}[col.type]
        return None, f"'{v}' is not {noun}; {what}"
    if col.allowed and out not in col.allowed:
        close = difflib.get_close_matches(str(out), col.allowed, 1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return None, f"'{v}' is not allowed; write one of {', '.join(col.allowed)}{hint}"
    if isinstance(out, (int, float, Decimal)) and not isinstance(out, bool):
        if col.minimum is not None and out < col.minimum:
            return None, (f"{v} is below {col.minimum:g}; a {col.name} cannot be negative"
                          if col.minimum == 0 else f"{v} is below {col.minimum:g}; write at least {col.minimum:g}")
        if col.maximum is not None and out > col.maximum:
            return None, f"{v} is above {col.maximum:g}; write at most {col.maximum:g}"
    return out, None


def read_file(spec: FileSpec, path: Path, issues: list[Issue]) -> ConfigFile:
    name = spec.filename
    try:
        header, header_line, records = _records(path)
    except NotUtf8 as exc:
        issues.append(Issue(name, exc.line, "", exc.problem,
                            "save it as UTF-8 (Excel: 'CSV UTF-8'; or "
                            f"`iconv -t UTF-8 -f UTF-16 {name}` / `-f CP1252`)"))
        return ConfigFile(spec, path)
    out = ConfigFile(spec, path)
    if not header:
        issues.append(Issue(name, 1, "", "the file has no header line",
                            f"start it with: {','.join(c.name for c in spec.columns)} "
                            f"(`tokenbook init` writes a template)"))
        return out
    known = [c.name for c in spec.columns]
    for col in header:
        if col not in known:
            close = difflib.get_close_matches(col, known, 1)
            fix = (f"rename it to {close[0]}" if close else
                   f"remove it; the columns are {', '.join(known)}")
            issues.append(Issue(name, header_line, col, "unknown column", fix))
    for col in spec.columns:
        if col.required and col.name not in header:
            issues.append(Issue(name, header_line, col.name, "missing column",
                                f"add the column {col.name} ({col.type}: {col.doc}) to the header"))
    seen: dict[tuple, int] = {}
    for line, cells in records:
        if len(cells) != len(header):
            issues.append(Issue(name, line, "", f"{len(cells)} values for {len(header)} columns",
                                "write one value per header column (quote values that hold a comma)"))
            continue
        row: dict[str, object] = {c: None for c in known}
        for col_name, cell in zip(header, cells, strict=True):
            col = spec.column(col_name)
            if col is None:
                continue
            value, error = _parse(cell, col)
            if error:
                issues.append(Issue(name, line, col_name, error.split("; ", 1)[0],
                                    error.split("; ", 1)[1] if "; " in error else "fix the value"))
            elif value is None and col.required:
                issues.append(Issue(name, line, col_name, "empty value",
                                    f"write a {col.type} ({col.doc})"))
            row[col_name] = value
        key = tuple(row[k] for k in spec.key)
        if all(k is not None for k in key):
            if key in seen:
                issues.append(Issue(name, line, ",".join(spec.key),
                                    f"duplicate key {'/'.join(str(k) for k in key)} (also on line {seen[key]})",
                                    "keep one row per key: merge the two rows or change one"))
            else:
                seen[key] = line
        out.rows.append(row)
        out.lines.append(line)
    return out


def _cross_checks(cfg: OrgConfig, issues: list[Issue]) -> None:
    teams = {r["team"] for r in cfg["teams"].rows}
    feats = cfg["features"]
    for row, line in zip(feats.rows, feats.lines, strict=True):
        team = row.get("owner_team")
        if team is not None and team not in teams:
            if cfg["teams"].configured:
                close = difflib.get_close_matches(str(team), sorted(teams), 1)
                fix = (f"write a team of teams.csv (did you mean {close[0]}?)" if close
                       else "add a row for it to teams.csv or write a team of teams.csv")
            else:
                fix = "add teams.csv with a row for it (`tokenbook init` writes a template)"
            issues.append(Issue("features.csv", line, "owner_team", f"unknown team '{team}'", fix))
    features = {r["feature"] for r in feats.rows}
    budgets = cfg["budgets"]
    for row, line in zip(budgets.rows, budgets.lines, strict=True):
        if row.get("feature") is not None and row["feature"] not in features:
            issues.append(Issue("budgets.csv", line, "feature", f"unknown feature '{row['feature']}'",
                                "add a row for it to features.csv or write a feature of features.csv"))
    prices = cfg["negotiated_prices"]
    periods: dict[tuple, list[tuple[date, date | None, int]]] = {}
    for row, line in zip(prices.rows, prices.lines, strict=True):
        start, end = row.get("valid_from"), row.get("valid_to")
        if start is None or row.get("provider") is None or row.get("model") is None:
            continue
        if end is not None and end <= start:
            issues.append(Issue("negotiated_prices.csv", line, "valid_to",
                                f"valid_to {end} is not after valid_from {start}",
                                "write a later valid_to (the first day the price no longer applies) "
                                "or leave it empty"))
            continue
        key = (str(row["provider"]).lower(), str(row["model"]).lower())
        for other_start, other_end, other_line in periods.get(key, []):
            if (end is None or other_start < end) and (other_end is None or start < other_end):
                issues.append(Issue(
                    "negotiated_prices.csv", line, "valid_from",
                    f"period {start}..{end or 'open'} of {key[0]}/{key[1]} overlaps line "
                    f"{other_line} ({other_start}..{other_end or 'open'})",
                    f"end the earlier agreement with valid_to = {max(start, other_start)} or move "
                    "this one's valid_from after it"))
        periods.setdefault(key, []).append((start, end, line))
    levers = cfg["lever_settings"]
    if levers.rows and LEVER_DEFAULTS.exists():
        with open(LEVER_DEFAULTS, encoding="utf-8") as fh:
            allowed = [r["setting"] for r in csv.DictReader(fh)]
        for row, line in zip(levers.rows, levers.lines, strict=True):
            if row.get("setting") is not None and row["setting"] not in allowed:
                close = difflib.get_close_matches(str(row["setting"]), allowed, 1)
                issues.append(Issue("lever_settings.csv", line, "setting",
                                    f"unknown setting '{row['setting']}'",
                                    f"write {close[0]}" if close else f"write one of {', '.join(allowed)}"))


def read_config(folder: Path | str | None) -> OrgConfig:
    """Read and validate the folder (None: nothing configured). Raises ConfigInvalid."""
    issues: list[Issue] = []
    folder_path = Path(folder) if folder is not None else None
    if folder_path is not None and folder_path.is_file():
        raise ConfigInvalid(folder_path, [Issue(str(folder_path), 0, "", "this is a file, not the "
                                               "configuration folder",
                                               f"point --config-dir / TOKENBOOK_CONFIG_DIR at the "
                                               f"folder holding it ({folder_path.parent})")])
    if folder_path is not None and not folder_path.is_dir():
        raise ConfigInvalid(folder_path, [Issue(str(folder_path), 0, "", "the configuration folder does not exist",
                                               f"create it with `tokenbook init {folder_path}` or point "
                                               "--config-dir / TOKENBOOK_CONFIG_DIR at yours")])
    files: dict[str, ConfigFile] = {}
    for spec in FILES:
        path = folder_path / spec.filename if folder_path is not None else None
        if path is not None and path.is_file():
            files[spec.name] = read_file(spec, path, issues)
        else:
            files[spec.name] = ConfigFile(spec, None)
    if folder_path is not None:
        for extra in sorted(folder_path.glob("*.csv")):
            if extra.stem not in BY_NAME and extra.name not in _OTHER_FILES:
                close = difflib.get_close_matches(extra.stem, list(BY_NAME), 1)
                if close:
                    issues.append(Issue(extra.name, 0, "", "unknown configuration file",
                                        f"rename it to {close[0]}.csv"))
    if folder_path is not None:
        _check_thresholds(folder_path, issues)
    cfg = OrgConfig(folder_path, files)
    _cross_checks(cfg, issues)
    if issues:
        raise ConfigInvalid(folder_path, issues)
    return cfg


# Files other parts of tokenbook read from the same folder (validated by their own readers).
_OTHER_FILES = {"quality_thresholds.csv"}


def _check_thresholds(folder: Path, issues: list[Issue]) -> None:
    """quality_thresholds.csv (read by `tokenbook check`, validated by its own reader): its
    error as an Issue, so `config check` and the run's load_config step report it first."""
    from ingestion.quality_thresholds import FILE_NAME, ThresholdsError, load_thresholds

    try:
        load_thresholds(folder=folder)
    except ThresholdsError as exc:
        text, prefix = str(exc), str(folder / FILE_NAME)
        rest = text[len(prefix):] if text.startswith(prefix) else f": {text}"
        found = re.match(r":(\d+): (.*)", rest, re.S)
        line, problem = (int(found[1]), found[2]) if found else (0, rest.lstrip(": "))
        issues.append(Issue(FILE_NAME, line, "", problem,
                            "write name,value lines with the thresholds and ranges listed in "
                            "ingestion/README.md (Data-quality suites)"))
