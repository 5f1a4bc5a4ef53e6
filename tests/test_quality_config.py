"""`tokenbook check`'s thresholds as an organisation writes them: every mistake a person makes in
quality_thresholds.csv is a configuration error naming the file and line (exit 4), never a
traceback, a silent truncation or a threshold that fails (or passes) every day; and the
configuration folder given to `tokenbook check` / `tokenbook run` is the one whose thresholds
apply.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ingestion.quality_thresholds import ThresholdsError, load_thresholds
from tokenbook.cli import app
from tokenbook.exitcodes import CONFIG_INVALID


def _write(folder, text: str, encoding: str = "utf-8"):
    (folder / "quality_thresholds.csv").write_text(text, encoding=encoding)
    return folder


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name,value\nvolume_ratio_min,0.9\nvolume_ratio_max,0.5\n",
         "volume_ratio_min (0.9) is above volume_ratio_max (0.5)"),
        ("name,value\ncost_per_call_ratio_max,0.3\n",
         "cost_per_call_ratio_min (0.5) is above cost_per_call_ratio_max (0.3)"),
        ("name,value\nvolume_ratio_min,nan\n", ":2: volume_ratio_min must be a finite number"),
        ("name,value\nvolume_ratio_max,inf\n", ":2: volume_ratio_max must be a finite number"),
        ("name,value\nquarantine_share_max,-0.05\n", ":2: quarantine_share_max must be >= 0"),
        ("name,value\nhistory_days,0\n", ":2: history_days must be a whole number of days"),
        ("name,value\nhistory_days,2.7\n", ":2: history_days must be a whole number of days"),
        ("name,value\nhistory_days,100000000000\n", ":2: history_days must be a whole number"),
        ("name,value\nmin_history_days,-1\n", ":2: min_history_days must be a whole number"),
        ("name,value\nhistory_days,14\nmin_history_days,20\n",
         "min_history_days (20) is above history_days (14)"),
        ("name,value\nvolume_ratio_min,0.3\nvolume_ratio_min,0.4\n",
         ":3: volume_ratio_min is set twice (first on line 2)"),
    ],
)
def test_a_threshold_that_cannot_work_is_a_configuration_error(tmp_path, body, message):
    with pytest.raises(ThresholdsError, match=_escaped(message)):
        load_thresholds(folder=_write(tmp_path, body))


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_a_spreadsheet_export_is_read_as_written(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark, and people capitalise headers: the
    file still says name,value."""
    t = load_thresholds(folder=_write(
        tmp_path, "Name , Value,Note\r\nvolume_ratio_min,0.2,weekends are quiet\r\n",
        encoding="utf-8-sig"))
    assert t["volume_ratio_min"] == 0.2
    assert load_thresholds(folder=_write(tmp_path, "name,value\nhistory_days,21.0\n"))[
        "history_days"] == 21


def test_check_exits_4_not_70_on_bounds_that_cannot_hold(tmp_path, monkeypatch):
    _write(tmp_path, "name,value\nvolume_ratio_min,0.9\nvolume_ratio_max,0.5\n")
    monkeypatch.setenv("TOKENBOOK_CONFIG_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["check", "--date", "2026-09-15", "--warehouse",
                                   f"duckdb:///{tmp_path / 'wh.duckdb'}"])
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv" in out.output and "volume_ratio_max" in out.output
