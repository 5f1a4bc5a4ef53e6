"""Thresholds of the data-quality suites: defaults in code, overridable per organisation.

The organisation's configuration folder (``TOKENBOOK_CONFIG_DIR``, else ``./config`` when it
exists) may hold ``quality_thresholds.csv`` with two columns, ``name,value`` (one threshold a
line, any subset of :data:`DEFAULTS`; a ``note`` column is allowed and ignored). An absent file
means the defaults. A name that is not a threshold, or a value that is not a number, is a
configuration error (:class:`ThresholdsError`), never silently ignored.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

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
}


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
    try:  # a BOM (Excel's "CSV UTF-8") is fine; another encoding is named, not a crash
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ThresholdsError(f"{path}: not UTF-8 text (UTF-16 or Latin-1?); save it as UTF-8 "
                              "(Excel: 'CSV UTF-8')") from exc
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"name", "value"} <= set(reader.fieldnames):
            raise ThresholdsError(f"{path}: the header must have the columns name,value")
        for line, row in enumerate(reader, start=2):
            name = (row.get("name") or "").strip()
            if not name:
                continue
            if name not in DEFAULTS:
                raise ThresholdsError(
                    f"{path}:{line}: unknown threshold {name!r}; known: {', '.join(DEFAULTS)}"
                )
            try:
                values[name] = float((row.get("value") or "").strip())
            except ValueError as exc:
                raise ThresholdsError(
                    f"{path}:{line}: {name} must be a number, got {row.get('value')!r}"
                ) from exc
    return values
