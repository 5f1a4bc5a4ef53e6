"""The nightly run of an organisation closed at weekends: a network of veterinary clinics whose
gateway has no call, so no file, on Saturdays and Sundays. Loaded night by night through the
same steps the DAG and `tokenbook run --date` call (tokenbook.orchestration).

Its healthy Saturday must pass the night (nothing to load is the delivery of a quiet day), and
a weekday whose file never came must still fail it, at the ingest step (which Airflow retries)
and at the data-quality step.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import load_settings
from ingestion.raw.guard import LoadRefused
from tests.nightly_asserts import night_fails_for_a_lost_file, night_passes_on_a_quiet_day
from tokenbook import orchestration as orch

FIRST = date(2026, 10, 5)  # a Monday: four weeks of weekdays up to Friday 10-30
SATURDAY = date(2026, 10, 31)
SUNDAY = date(2026, 11, 1)
LOST = date(2026, 11, 4)  # a Wednesday whose export never landed
FEATURES = ("triage_assistant", "record_summarizer", "appointment_bot")


def _write(folder, day: date) -> None:
    rng = random.Random(day.toordinal())
    lines = []
    for i in range(int(240 * rng.uniform(0.95, 1.05))):
        lines.append(json.dumps({
            "request_id": f"clinic-{day:%Y%m%d}-{i:05d}",
            "timestamp": datetime(day.year, day.month, day.day, 8 + i % 10, i % 60).isoformat()
            + "Z",
            "provider": "openai", "model": "gpt-4.1-mini",
            "input_tokens": rng.randint(900, 2400), "output_tokens": rng.randint(80, 400),
            "feature": FEATURES[i % 3], "customer_segment": ("clinic", "hospital")[i % 2],
            "latency_ms": rng.randint(200, 3000), "status": "ok",
            "cost_usd": round(0.0012 * rng.uniform(0.9, 1.1), 7),
        }))
    (folder / f"gateway-{day}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def clinics(tmp_path_factory):
    base = tmp_path_factory.mktemp("closed-weekends")
    folder = base / "gateway"
    folder.mkdir()
    settings = load_settings(warehouse=f"duckdb:///{base / 'wh.duckdb'}", pii_key="k",
                             config_dir=str(base / "config"))
    inputs = orch.RunInputs(gateway_path=str(folder))
    day = FIRST
    while day <= LOST + timedelta(days=1):
        if day.weekday() < 5 and day != LOST:
            _write(folder, day)
        day += timedelta(days=1)
    day = FIRST
    while day < SATURDAY:  # the nights of the weekdays: loaded and checked
        if day.weekday() < 5:
            orch.ingest_gateway_day(day, settings, inputs)
            orch.check_data_quality(day, settings)
        day += timedelta(days=1)
    return settings, inputs


@pytest.mark.parametrize("day", [SATURDAY, SUNDAY])
def test_a_quiet_weekend_night_passes_every_step(clinics, day):
    settings, inputs = clinics
    night_passes_on_a_quiet_day(day, settings, inputs, "no call on this weekday")


def test_a_weekday_whose_file_never_came_still_fails_the_night(clinics):
    settings, inputs = clinics
    for day in (date(2026, 11, 2), date(2026, 11, 3)):
        orch.ingest_gateway_day(day, settings, inputs)
    night_fails_for_a_lost_file(LOST, settings, inputs)


def test_a_quiet_day_is_not_taken_for_one_without_its_checks(clinics):
    """The gate passes a day with no load only on the check's own verdict: a Saturday whose
    suites never ran still fails it."""
    settings, inputs = clinics
    saturday = SATURDAY + timedelta(days=7)
    with pytest.raises(orch.QualityGateFailed, match="no gateway load recorded"):
        orch.check_quality(saturday, settings)


def test_an_empty_file_on_a_quiet_day_is_the_delivery_of_nothing(clinics):
    """Exporters often write the day's file whatever it holds: an empty file on a quiet
    Saturday skips the load like no file; an empty file on a Wednesday is still refused."""
    settings, inputs = clinics
    folder = Path(inputs.gateway_path)
    saturday, wednesday = date(2026, 11, 14), date(2026, 11, 11)
    for day in (saturday, wednesday):
        (folder / f"gateway-{day}.jsonl").write_text("")
    loaded = orch.ingest_gateway_day(saturday, settings, inputs)
    assert loaded["skipped"] is True and "hold no record" in loaded["reason"]
    orch.check_data_quality(saturday, settings)
    assert orch.check_quality(saturday, settings)["quiet_day"] is True
    with pytest.raises(LoadRefused, match="no valid record"):
        orch.ingest_gateway_day(wednesday, settings, inputs)


def test_the_quiet_day_rule_reads_bigquery_with_one_plain_query():
    """BigQuery cannot be reached: a fake client answers; the SQL is BigQuery's (sqlglot)."""
    import sqlglot

    from core.warehouse import Warehouse
    from ingestion.quality_gate import history_dates, quiet_day_reason
    from ingestion.quality_thresholds import load_thresholds

    weekdays = [FIRST + timedelta(days=k) for k in range(26) if (FIRST + timedelta(days=k)
                                                                  ).weekday() < 5]
    seen = []

    class Client:
        def get_table(self, name):
            seen.append(("table", name))

        def query(self, sql):
            seen.append(("sql", sql))
            rows = [{"load_date": d} for d in weekdays]
            return type("Job", (), {"result": lambda _self: rows})()

    wh = Warehouse.from_settings(load_settings(warehouse="bigquery://vet-finops/tb"))
    history = history_dates(wh, SATURDAY, 28, client=Client())
    assert history == weekdays
    assert seen[0] == ("table", "vet-finops.tb_raw.gateway_calls")
    sql = seen[1][1]
    sqlglot.parse_one(sql, read="bigquery")
    assert "`vet-finops.tb_raw.gateway_calls`" in sql and "DATE '2026-10-03'" in sql
    t = load_thresholds(folder=Path("/nonexistent-config"))
    assert "in any of the 3 weeks" in quiet_day_reason(history, SATURDAY, t)
    assert quiet_day_reason(history, date(2026, 11, 4), t) is None  # a Wednesday: expected
    # a new organisation's first Saturday: too little history to call it quiet
    assert quiet_day_reason(weekdays[:5], date(2026, 10, 10), t) is None


def test_a_new_organisations_first_saturday_says_it_is_not_known_yet(clinics):
    """The first Saturday of a new organisation cannot be told from a lost delivery: it fails,
    and says that a closed weekday becomes a quiet day once the history shows it."""
    settings, _ = clinics
    with pytest.raises(orch.QualityGateFailed) as failed:
        orch.check_data_quality(date(2026, 10, 10), settings)
    assert ("rows_loaded = 0 (no Saturday in the history yet: if the organisation is closed on "
            "Saturdays, it is a quiet day from week 3 on (min_history_days))") in str(failed.value)


def test_a_gs_gateway_path_has_its_quiet_days_too(clinics, monkeypatch):
    """A bucket of daily objects (`gs://.../gateway-YYYY-MM-DD.*`): a quiet Saturday whose
    pattern matches no object skips the load as a folder's does; a lost Wednesday still
    fails the ingest step (Airflow retries it), naming the URI."""
    import shutil

    from ingestion.raw import fetch

    settings, inputs = clinics
    folder = Path(inputs.gateway_path)

    class Blob:
        def __init__(self, name):
            self.name = name

        def download_to_filename(self, dest):
            shutil.copy(folder / Path(self.name).name, dest)

    class Client:
        def list_blobs(self, bucket, prefix):
            assert bucket == "clinic-logs"
            return [Blob(f"gateway/{p.name}") for p in sorted(folder.iterdir())
                    if f"gateway/{p.name}".startswith(prefix)]

    monkeypatch.setattr(fetch, "_storage", lambda: type("storage", (), {"Client": Client}))
    bucket = orch.RunInputs(gateway_path="gs://clinic-logs/gateway")
    saturday = date(2026, 11, 7)
    skipped = orch.ingest_gateway_day(saturday, settings, bucket)
    assert skipped["skipped"] is True and "no call on this weekday" in skipped["reason"]
    assert "gs://clinic-logs/gateway" in skipped["reason"]
    with pytest.raises(fetch.NoObjectMatches, match="gateway-2026-11-04"):
        orch.ingest_gateway_day(LOST, settings, bucket)
    loaded = orch.ingest_gateway_day(date(2026, 11, 5), settings, bucket)
    assert loaded.get("rows_loaded", 0) > 0 and not loaded.get("skipped")
