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
        ("name,value,scope\nvolume_ratio_min,0.3,weekends\n",
         "unknown column 'scope': the columns are name,value and an optional note"),
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


def test_the_configuration_folder_of_the_settings_decides_the_thresholds(tmp_path):
    """`tokenbook run --config-dir X` (settings.config_dir, no environment variable): the
    check applies X's thresholds, not the defaults."""
    from core.settings import load_settings
    from ingestion.quality import check_dates

    folder = _write(tmp_path, "name,value,note\nvolume_ratio_min,0.2,our Mondays are quiet\n")
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}",
                             config_dir=str(folder))
    result = check_dates(settings, [__import__("datetime").date(2026, 9, 15)])
    volume = [o for o in result.outcomes if o.column_name == "volume_ratio"]
    assert volume and volume[0].min_value == 0.2


def test_check_reads_the_thresholds_of_its_config_dir_option(tmp_path):
    _write(tmp_path, "name,value\nvolume_ratio_min,low\n")
    out = CliRunner().invoke(app, ["check", "--date", "2026-09-15", "--config-dir",
                                   str(tmp_path), "--warehouse",
                                   f"duckdb:///{tmp_path / 'wh.duckdb'}"])
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv:2: volume_ratio_min must be a number" in out.output


def test_run_exits_4_on_an_invalid_thresholds_file_in_its_config_dir(tmp_path, monkeypatch):
    """The nightly `tokenbook run --date D --config-dir X`: the thresholds file of X is read by
    its data_quality step; an invalid one stops the run as a configuration error (4) naming the
    file and line, before any model is built."""
    import gzip
    import json

    gateway = tmp_path / "data" / "gateway"
    gateway.mkdir(parents=True)
    records = [{"request_id": f"wb-{i}", "timestamp": f"2026-09-16T{i % 24:02d}:10:00Z",
                "provider": "openai", "model": "gpt-4.1-mini", "input_tokens": 1800,
                "output_tokens": 150, "feature": "berth_planner",
                "customer_segment": "port_authority", "team": "quay-ops"}
               for i in range(40)]
    with gzip.open(gateway / "gateway-2026-09-16.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in records) + "\n")
    config = tmp_path / "cfg"
    config.mkdir()
    _write(config, "name,value\nvolume_ratio_min,0.9\nvolume_ratio_max,0.5\n")
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, [
        "run", "--date", "2026-09-16", "--data-dir", str(tmp_path / "data"), "--config-dir",
        str(config), "--warehouse", f"duckdb:///{tmp_path / 'wh.duckdb'}", "--skip-forecast"])
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv" in out.output and "volume_ratio_max" in out.output


def test_config_check_reports_an_invalid_thresholds_file(tmp_path):
    """`tokenbook config check` is where an organisation validates its folder: a typo in
    quality_thresholds.csv is reported there (exit 4), not first by the nightly's check."""
    _write(tmp_path, "name,value\nvolume_ratio_min,0.3\nvolume_raito_max,3\n")
    out = CliRunner().invoke(app, ["config", "check", "--config-dir", str(tmp_path)])
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv:3" in out.output and "volume_raito_max" in out.output
    _write(tmp_path, "name,value\nvolume_ratio_min,0.3\n")
    ok = CliRunner().invoke(app, ["config", "check", "--config-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output


def test_check_of_a_warehouse_that_does_not_exist_refuses_instead_of_creating_it(tmp_path):
    """A mistyped --warehouse: one sentence naming the path (exit 1), not an empty warehouse
    left behind and a 'no gateway record was loaded' failure that sends the user to the
    exporter."""
    from tokenbook.exitcodes import INPUT_REFUSED

    missing = tmp_path / "warehuose" / "tokenbook.duckdb"
    out = CliRunner().invoke(app, ["check", "--date", "2026-09-15", "--config-dir",
                                   str(tmp_path), "--warehouse", f"duckdb:///{missing}"])
    assert out.exit_code == INPUT_REFUSED, out.output
    assert f"no warehouse at {missing}" in out.output
    assert not missing.exists() and not missing.parent.exists()
