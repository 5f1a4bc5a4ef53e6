"""A new organisation closed at weekends says so: `closed_weekdays` in quality_thresholds.csv.

A network of language schools starts on a Wednesday; its gateway sends no file on Saturdays and
Sundays. With three days of history its first Saturday cannot be told from a lost delivery, so
it fails the night; declared closed (`closed_weekdays,sat sun`) it is a quiet day from day one,
through the same steps the DAG and `tokenbook run --date` call (tokenbook.orchestration) and
through `tokenbook check`. A weekday whose file never came still fails, and a file that does
come on a closed day is loaded and checked as usual.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime

import pytest
from typer.testing import CliRunner

from core.settings import load_settings
from tests.nightly_asserts import night_fails_for_a_lost_file, night_passes_on_a_quiet_day
from tokenbook import orchestration as orch
from tokenbook.cli import app
from tokenbook.exitcodes import CONFIG_INVALID, QUALITY_FAILED

FIRST_DAYS = (date(2026, 10, 7), date(2026, 10, 8), date(2026, 10, 9))  # Wed, Thu, Fri
SATURDAY = date(2026, 10, 10)
SUNDAY = date(2026, 10, 11)
LOST_WEDNESDAY = date(2026, 10, 14)  # Monday and Tuesday came, Wednesday's export did not
FEATURES = ("lesson_planner", "essay_grader", "enrolment_chat")


def _write(folder, day: date, calls: int = 180) -> None:
    rng = random.Random(day.toordinal())
    lines = [json.dumps({
        "request_id": f"school-{day:%Y%m%d}-{i:05d}",
        "timestamp": datetime(day.year, day.month, day.day, 8 + i % 9, i % 60).isoformat() + "Z",
        "provider": "openai", "model": "gpt-4.1-mini",
        "input_tokens": rng.randint(700, 1800), "output_tokens": rng.randint(60, 300),
        "feature": FEATURES[i % 3], "customer_segment": ("school", "district")[i % 2],
        "latency_ms": rng.randint(200, 2500), "status": "ok",
        "cost_usd": round(0.001 * rng.uniform(0.9, 1.1), 7),
    }) for i in range(calls)]
    (folder / f"gateway-{day}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def schools(tmp_path_factory):
    """(warehouse URL, settings without the setting, settings with it, inputs): three days
    loaded and checked; the two configuration folders differ only by closed_weekdays."""
    base = tmp_path_factory.mktemp("closed-weekdays")
    gateway = base / "gateway"
    gateway.mkdir()
    (base / "open").mkdir()
    (base / "closed").mkdir()
    (base / "closed" / "quality_thresholds.csv").write_text(
        "name,value,note\nclosed_weekdays,sat sun,the schools are closed at weekends\n")
    url = f"duckdb:///{base / 'wh.duckdb'}"
    plain = load_settings(warehouse=url, pii_key="k", config_dir=str(base / "open"))
    closed = load_settings(warehouse=url, pii_key="k", config_dir=str(base / "closed"))
    inputs = orch.RunInputs(gateway_path=str(gateway))
    for day in (*FIRST_DAYS, date(2026, 10, 12), date(2026, 10, 13)):
        _write(gateway, day)
    for day in FIRST_DAYS:
        orch.ingest_gateway_day(day, plain, inputs)
        orch.check_data_quality(day, plain)
    return url, plain, closed, inputs, base


def test_a_new_organisations_first_saturday_fails_without_the_setting(schools):
    _, plain, _, inputs, _ = schools
    night_fails_for_a_lost_file(SATURDAY, plain, inputs)


def test_a_declared_closed_saturday_passes_the_night_from_day_one(schools):
    _, _, closed, inputs, _ = schools
    night_passes_on_a_quiet_day(SATURDAY, closed, inputs, "Saturday is a declared closed day")


def test_an_empty_file_on_a_declared_closed_sunday_is_the_delivery_of_nothing(schools):
    _, _, closed, inputs, base = schools
    (base / "gateway" / f"gateway-{SUNDAY}.jsonl").write_text("")
    try:
        loaded = orch.ingest_gateway_day(SUNDAY, closed, inputs)
        assert loaded["skipped"] is True and "hold no record" in loaded["reason"]
        orch.check_data_quality(SUNDAY, closed)
        assert orch.check_quality(SUNDAY, closed)["quiet_day"] is True
    finally:
        (base / "gateway" / f"gateway-{SUNDAY}.jsonl").unlink()


def test_tokenbook_check_says_the_saturday_is_a_declared_closed_day(schools):
    url, _, _, _, base = schools
    runner = CliRunner()
    args = ["check", "--date", str(SATURDAY), "--warehouse", url, "--config-dir"]
    without = runner.invoke(app, [*args, str(base / "open")], env={"COLUMNS": "1000"})
    assert without.exit_code == QUALITY_FAILED, without.output
    assert "no Saturday in the history yet" in without.output
    declared = runner.invoke(app, [*args, str(base / "closed")], env={"COLUMNS": "1000"})
    assert declared.exit_code == 0, declared.output
    assert f"{SATURDAY} is a Saturday, a declared closed day" in declared.output
    assert "passed" in declared.output


def test_a_weekday_whose_file_never_came_still_fails_with_weekends_closed(schools):
    _, _, closed, inputs, _ = schools
    for day in (date(2026, 10, 12), date(2026, 10, 13)):
        orch.ingest_gateway_day(day, closed, inputs)
        orch.check_data_quality(day, closed)
    night_fails_for_a_lost_file(LOST_WEDNESDAY, closed, inputs)


def test_a_file_that_comes_on_a_declared_closed_day_is_loaded_and_checked(schools):
    """A Saturday open day at one school: its calls load, and its file is judged like any
    other (a quarter of its lines malformed still fails gateway_load)."""
    _, _, closed, inputs, base = schools
    saturday = date(2026, 10, 17)
    _write(base / "gateway", saturday, calls=20)
    with open(base / "gateway" / f"gateway-{saturday}.jsonl", "a") as fh:
        fh.write('{"request_id": "school-broken", "timestamp": \n' * 5)
    loaded = orch.ingest_gateway_day(saturday, closed, inputs)
    assert not loaded.get("skipped") and loaded["rows_loaded"] == 20
    with pytest.raises(orch.QualityGateFailed, match="gateway_load: quarantine_share = 0.2") as e:
        orch.check_data_quality(saturday, closed)
    assert "declared closed" not in str(e.value)


@pytest.mark.parametrize(("value", "message"), [
    ("funday", "'funday' is not a weekday (accepted: mon, tue, wed, thu, fri, sat, sun"),
    ("sat,sun", "is followed by another field: separate the weekdays with spaces or ';'"),
    ("mon tue wed thu fri sat sun", "declares every weekday closed"),
])
def test_an_invalid_closed_weekdays_exits_4_naming_the_file_and_row(tmp_path, value, message):
    (tmp_path / "quality_thresholds.csv").write_text(
        f"name,value\nvolume_ratio_min,0.4\nclosed_weekdays,{value}\n")
    out = CliRunner().invoke(app, ["check", "--date", "2026-10-10", "--config-dir",
                                   str(tmp_path), "--warehouse",
                                   f"duckdb:///{tmp_path / 'wh.duckdb'}"],
                             env={"COLUMNS": "1000"})
    assert out.exit_code == CONFIG_INVALID, out.output
    assert "quality_thresholds.csv:3: closed_weekdays" in out.output
    assert message in out.output


def test_a_declared_closed_day_needs_no_warehouse_query_on_bigquery(schools, monkeypatch):
    """BigQuery cannot be reached: the ingest step's verdict on a declared closed Saturday comes
    from the configuration alone (no client is made), and a Wednesday still asks the history."""
    from core.warehouse import Warehouse
    from tokenbook.orchestration.ingest import quiet_day

    *_, base = schools
    asked = []
    monkeypatch.setattr(Warehouse, "bigquery_client", lambda self: asked.append(self) or 1 / 0)
    settings = load_settings(warehouse="bigquery://school-finops/tb", pii_key="k",
                             config_dir=str(base / "closed"))
    assert "Saturday is a declared closed day" in quiet_day(SATURDAY, settings)
    assert asked == []
    with pytest.raises(ZeroDivisionError):
        quiet_day(LOST_WEDNESDAY, settings)
    assert len(asked) == 1
