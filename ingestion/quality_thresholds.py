"""Thresholds of the data-quality suites: defaults in code, overridable per organisation.

The organisation's configuration folder (``TOKENBOOK_CONFIG_DIR``, else ``./config`` when it
exists) may hold ``quality_thresholds.csv`` with two columns, ``name,value`` (one threshold a
line, any subset of :data:`DEFAULTS`; a ``note`` column is allowed and ignored, any other column
is refused; header names are
read without regard to case or spaces, and a spreadsheet's byte-order mark is skipped). An absent
file means the defaults. A name that is not a threshold, a name set twice, a value that is not a
finite number >= 0, a number of days that is not a whole number from 1 to
:data:`MAX_HISTORY_DAYS`, or a lower bound above its upper bound is a configuration error
(:class:`ThresholdsError`), never silently ignored, truncated or left to fail every day.

One row is not a number: ``closed_weekdays`` names the weekdays the organisation is closed
(``closed_weekdays,sat sun``; short or full English names, separated by spaces or ``;``; ``none``
or empty: none, the default). A declared closed weekday is a quiet day from the first day (see
``quality_gate.quiet_day_reason``); history alone decides without it. It is kept in the values
as a bit mask (Monday = 1, ..., Sunday = 64) so that every value stays a number;
:func:`closed_weekdays` reads it back.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
from pathlib import Path

from core.textfile import NotUtf8Text, read_utf8

ENV_CONFIG_DIR = "TOKENBOOK_CONFIG_DIR"
FILE_NAME = "quality_thresholds.csv"

# name -> (default, what it bounds). Shares are fractions of the day's calls (0.10 = 10%);
# "increase" is in share points above the trailing median of the same metric.
DEFAULTS: dict[str, tuple[float, str]] = {
    "history_days": (28, "days of history each partition is compared with"),
    "min_history_days": (2, "history days a comparison needs; fewer: not evaluable"),
    "volume_ratio_min": (0.5, "calls / median of the same weekday's calls in the history"),
    "volume_ratio_max": (2.0, "calls / median of the same weekday's calls in the history"),
    "missing_feature_increase_max": (0.10, "share of calls without feature, above its median"),
    "missing_segment_increase_max": (
        0.10, "share of calls without customer_segment, above its median"),
    "unpriced_share_increase_max": (
        0.05, "share of calls whose model the price book cannot resolve, above its median"),
    "quarantine_share_max": (0.05, "quarantined / read records of the day's latest load"),
    "duplicate_share_max": (0.05, "duplicate / read records of the day's latest load"),
    "redelivered_share_max": (
        0.05, "calls whose request_id an earlier load date of the history already brought"),
    "null_rate_increase_max": (0.25, "a column's null rate above its median"),
    "new_fields_max": (0, "fields in the day's records never seen in the history"),
    "vanished_fields_max": (0, "fields present in most history days, absent from the day"),
    "tokens_per_call_ratio_min": (0.5, "tokens per call / its median in the history"),
    "tokens_per_call_ratio_max": (2.0, "tokens per call / its median in the history"),
    "cost_per_call_ratio_min": (0.5, "gateway cost per call / its median in the history"),
    "cost_per_call_ratio_max": (2.0, "gateway cost per call / its median in the history"),
    "billing_vendors_missing_max": (0, "vendors billing most history days, absent for the day"),
    "billing_ratio_change_max": (
        0.25, "|billed / gateway cost, over its median in the history, - 1|"),
    "closed_weekdays": (0, "weekdays the organisation is closed (sat sun): quiet from day one"),
}

# closed_weekdays: accepted names (Monday = 0, as date.weekday()); stored as a bit mask
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALL_WEEKDAYS_MASK = 2 ** len(WEEKDAY_NAMES) - 1


# Thresholds counted in days (whole numbers); a year of history is the most a check compares.
DAY_COUNTS = ("history_days", "min_history_days")
MAX_HISTORY_DAYS = 366
# (lower, upper) bounds of the same metric: the lower must not be above the upper.
PAIRS: tuple[tuple[str, str], ...] = tuple(
    (name, name[: -len("_min")] + "_max") for name in DEFAULTS if name.endswith("_min")
)


class ThresholdsError(ValueError):
    """quality_thresholds.csv is not valid; the message names the file, line and value."""


def config_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The organisation's configuration folder: ``TOKENBOOK_CONFIG_DIR``, else ``./config``
    when it exists, else None."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG_DIR):
        return Path(env[ENV_CONFIG_DIR])
    local = Path("config")
    return local if local.is_dir() else None


def load_thresholds(folder: Path | None = None, environ: dict[str, str] | None = None
                    ) -> dict[str, float]:
    """Defaults, overridden by ``<config folder>/quality_thresholds.csv`` when present."""
    values = {name: float(v) for name, (v, _) in DEFAULTS.items()}
    folder = config_dir(environ) if folder is None else folder
    path = None if folder is None else Path(folder) / FILE_NAME
    if path is None or not path.is_file():
        return values
    seen: dict[str, int] = {}
    try:  # a BOM (Excel's "CSV UTF-8") is fine; another encoding is named, not a crash
        text = read_utf8(path)
    except NotUtf8Text as exc:
        raise ThresholdsError(str(exc)) from exc
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [(f or "").strip().lower() for f in reader.fieldnames or []]
        if not {"name", "value"} <= set(header):
            raise ThresholdsError(f"{path}: the header must have the columns name,value "
                                  f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
        unknown = [f for f in header if f not in ("name", "value", "note")]
        if unknown:
            raise ThresholdsError(f"{path}: unknown column {unknown[0]!r}: the columns are "
                                  "name,value and an optional note (one threshold a line)")
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            name = (row.get("name") or "").strip()
            if not name:
                continue
            if name not in DEFAULTS:
                close = difflib.get_close_matches(name, list(DEFAULTS), 1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ThresholdsError(
                    f"{path}:{line}: unknown threshold {name!r}; {hint}known: "
                    f"{', '.join(DEFAULTS)}"
                )
            if name in seen:
                raise ThresholdsError(
                    f"{path}:{line}: {name} is set twice (first on line {seen[name]})")
            seen[name] = line
            if name == "closed_weekdays":
                values[name] = _weekday_mask(row, f"{path}:{line}")
                continue
            values[name] = _number(name, row.get("value"), f"{path}:{line}")
    validate(values, str(path))
    return values


def _number(name: str, text: str | None, where: str) -> float:
    """The value of threshold ``name`` read from ``text``, or ThresholdsError saying why not."""
    try:
        value = float((text or "").strip())
    except ValueError as exc:
        raise ThresholdsError(f"{where}: {name} must be a number, got {text!r}") from exc
    _check_value(name, value, where, text)
    return value


def closed_weekdays(values: dict[str, float]) -> tuple[int, ...]:
    """The declared closed weekdays of ``values`` (Monday = 0, as ``date.weekday()``)."""
    mask = int(values.get("closed_weekdays", 0))
    return tuple(k for k in range(len(WEEKDAY_NAMES)) if mask >> k & 1)


_ACCEPTED_WEEKDAYS = ("mon, tue, wed, thu, fri, sat, sun or the full names (monday ...), "
                      "separated by spaces or ';' (closed_weekdays,sat sun), or none")


def _weekday_mask(row: dict, where: str) -> float:
    """The bit mask of the ``closed_weekdays`` row, or ThresholdsError naming the accepted
    values. ``closed_weekdays,sat,sun`` (an unquoted comma) is refused, not read as Saturday."""
    text = (row.get("value") or "").strip()
    extra = [v for v in (row.get(None) or []) if (v or "").strip()]
    note = (row.get("note") or "").strip().lower()
    if extra or (note and _weekday(note) is not None):
        raise ThresholdsError(
            f"{where}: closed_weekdays {text!r} is followed by another field: separate the "
            f"weekdays with spaces or ';', not ',' (accepted: {_ACCEPTED_WEEKDAYS})")
    mask = 0
    words = [w for w in text.replace(";", " ").replace(",", " ").split() if w]
    if [w.lower() for w in words] in ([], ["none"]):
        return 0.0
    for word in words:
        k = _weekday(word.lower())
        if k is None:
            raise ThresholdsError(f"{where}: closed_weekdays: {word!r} is not a weekday "
                                  f"(accepted: {_ACCEPTED_WEEKDAYS})")
        mask |= 1 << k
    if mask == ALL_WEEKDAYS_MASK:
        raise ThresholdsError(f"{where}: closed_weekdays declares every weekday closed: no day "
                              "would ever be checked; name only the days the organisation is "
                              "closed")
    return float(mask)


def _weekday(word: str) -> int | None:
    for k, name in enumerate(WEEKDAY_NAMES):
        if word in (name, name[:3]):
            return k
    return None


def _check_value(name: str, value: float, where: str, text: object = None) -> None:
    shown = repr(text) if text is not None else repr(value)
    if not math.isfinite(value):
        raise ThresholdsError(f"{where}: {name} must be a finite number, got {shown}")
    if name == "closed_weekdays":
        if not (value.is_integer() and 0 <= value < ALL_WEEKDAYS_MASK):
            raise ThresholdsError(
                f"{where}: closed_weekdays must name at least one open weekday (a bit mask "
                f"from 0 to {ALL_WEEKDAYS_MASK - 1} in code), got {shown}")
        return
    if name in DAY_COUNTS and not (value.is_integer() and 1 <= value <= MAX_HISTORY_DAYS):
        raise ThresholdsError(f"{where}: {name} must be a whole number of days from 1 to "
                              f"{MAX_HISTORY_DAYS}, got {shown}")
    if value < 0:
        raise ThresholdsError(f"{where}: {name} must be >= 0 (a share, a ratio or a count), "
                              f"got {shown}")


def validate(values: dict[str, float], where: str = "quality thresholds") -> None:
    """ThresholdsError when ``values`` (every name of :data:`DEFAULTS`) cannot work: a value
    out of its range, a lower bound above its upper bound, more history days required than
    compared. Also for thresholds passed in code (``quality.check_dates``)."""
    missing = [n for n in DEFAULTS if n not in values]
    unknown = [n for n in values if n not in DEFAULTS]
    if missing or unknown:
        raise ThresholdsError(f"{where}: missing thresholds {missing}, unknown {unknown}")
    for name, value in values.items():
        _check_value(name, float(value), where)
    for low, high in PAIRS:
        if values[low] > values[high]:
            raise ThresholdsError(
                f"{where}: {low} ({values[low]:g}) is above {high} ({values[high]:g}): "
                "every day would fail; set both")
    if values["min_history_days"] > values["history_days"]:
        raise ThresholdsError(
            f"{where}: min_history_days ({values['min_history_days']:g}) is above history_days "
            f"({values['history_days']:g}): no comparison could ever be evaluated")
