"""The billing loader's guarantees: nothing lost, idempotent partition replace, atomic publish,
load windows, and the `ingest billing` command."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from ingestion.billing.loader import BillingError, ingest_billing

FIX = Path(__file__).parent / "fixtures" / "billing"
DATA_TABLES = ("raw.billing_lines", "raw.quarantine", "raw.pii_redactions")


def table_hash(con, table: str) -> tuple[int, str]:
    return con.execute(
        f"select count(*), coalesce(md5(string_agg(t::VARCHAR, '|' order by t::VARCHAR)), '') "
        f"from {table} as t"
    ).fetchone()


def snapshot(con) -> dict[str, tuple[int, str]]:
    return {t: table_hash(con, t) for t in DATA_TABLES}


def test_rows_read_equal_loaded_plus_quarantined_plus_duplicates():
    con = duckdb.connect()
    for vendor, names in {
        "openai": ["openai_usage_completions_page2.json", "openai_costs_page1.json"],
        "anthropic": ["anthropic_cost_report_page1.json"],
        "gcp": ["gcp_billing_export.jsonl"],
        "aws": ["aws_cur_legacy_bedrock.csv"],
        "azure": ["azure_openai_actual_cost.csv"],
    }.items():
        ingest_billing(con, vendor, [FIX / n for n in names])
    audit = con.execute(
        "select source, sum(rows_read), sum(rows_loaded), sum(rows_quarantined), "
        "sum(rows_duplicate) from raw.load_audit group by 1 order by 1"
    ).fetchall()
    assert [a[0] for a in audit] == [
        "billing_anthropic", "billing_aws", "billing_azure", "billing_gcp", "billing_openai"
    ]  # fmt: skip
    for _, read, loaded, quarantined, dup in audit:
        assert read == loaded + quarantined + dup
    # ... and the audit agrees with what is in the tables.
    landed = dict(
        con.execute("select vendor, count(*) from raw.billing_lines group by 1").fetchall()
    )
    held = dict(con.execute("select source, count(*) from raw.quarantine group by 1").fetchall())
    for source, _, loaded, quarantined, _ in audit:
        assert landed["".join(source.split("billing_", 1))] == loaded
        assert held.get(source, 0) == quarantined


def test_rerun_gives_identical_tables_and_only_audit_grows(tmp_path):
    db = tmp_path / "wh.duckdb"
    files = [FIX / "aws_cur_legacy_bedrock.csv", FIX / "aws_cur2_bedrock.csv"]
    with duckdb.connect(str(db)) as con:
        ingest_billing(con, "aws", files, month=date(2026, 11, 1))
        first = snapshot(con)
    with duckdb.connect(str(db)) as con:
        ingest_billing(con, "aws", files, month=date(2026, 11, 1))
        assert snapshot(con) == first
        assert con.execute("select count(*) from raw.load_audit").fetchone()[0] == 4
        assert first["raw.billing_lines"][0] == 8


@pytest.mark.parametrize(
    ("vendor", "names"),
    [
        ("openai", ["openai_usage_completions_page1.json", "openai_costs_page1.json"]),
        ("anthropic", ["anthropic_usage_messages_page1.json", "anthropic_cost_report_page1.json"]),
        ("gcp", ["gcp_billing_export.jsonl", "gcp_billing_export.csv"]),
        ("azure", ["azure_openai_actual_cost.csv", "azure_ea_sample_excerpt.csv"]),
    ],
)
def test_every_vendor_reruns_identically(tmp_path, vendor, names):
    db = str(tmp_path / "wh.duckdb")
    snaps = []
    for _ in range(2):
        with duckdb.connect(db) as con:
            ingest_billing(con, vendor, [FIX / n for n in names])
            snaps.append(snapshot(con))
    assert snaps[0] == snaps[1] and snaps[0]["raw.billing_lines"][0] > 0


def test_partition_replace_drops_lines_a_restated_export_no_longer_has(tmp_path):
    con = duckdb.connect()
    full = FIX / "aws_cur2_bedrock.csv"
    ingest_billing(con, "aws", [full], month=date(2026, 11, 1))
    assert con.execute("select count(*) from raw.billing_lines").fetchone()[0] == 3
    restated = tmp_path / "cur2.csv"
    restated.write_text("".join(full.read_text().splitlines(keepends=True)[:2]))
    ingest_billing(con, "aws", [restated], month=date(2026, 11, 1))
    assert con.execute("select count(*), min(source_file) from raw.billing_lines").fetchone() == (
        1, str(restated)
    )  # fmt: skip
    # Another vendor's lines on the same load date are untouched.
    ingest_billing(con, "azure", [FIX / "azure_openai_actual_cost.csv"], month=date(2026, 11, 1))
    ingest_billing(con, "aws", [restated], month=date(2026, 11, 1))
    assert con.execute(
        "select vendor, count(*) from raw.billing_lines group by 1 order by 1"
    ).fetchall() == [("aws", 1), ("azure", 4)]


def test_failed_publish_leaves_previous_partition_intact(monkeypatch):
    from ingestion.billing import loader

    con = duckdb.connect()
    files = [FIX / "anthropic_cost_report_page1.json"]
    ingest_billing(con, "anthropic", files, load_date=date(2026, 11, 2))
    before = snapshot(con)
    audit_before = con.execute("select count(*) from raw.load_audit").fetchone()[0]

    def crash():  # the process dies after the deletes, before the inserts
        assert con.execute("select count(*) from raw.billing_lines").fetchone()[0] == 0
        raise KeyboardInterrupt

    monkeypatch.setattr(loader, "_after_delete", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_billing(con, "anthropic", files, load_date=date(2026, 11, 2))
    assert snapshot(con) == before
    assert con.execute("select count(*) from raw.load_audit").fetchone()[0] == audit_before


def test_date_window_quarantines_usage_outside_it():
    con = duckdb.connect()
    (r,) = ingest_billing(
        con,
        "openai",
        [FIX / "openai_usage_completions_page1.json", FIX / "openai_usage_completions_page2.json"],
        load_date=date(2026, 11, 2),
        window_days_before=0,
        window_days_after=1,
    )
    assert r.load_date == date(2026, 11, 2)
    reasons = con.execute(
        "select reason, count(*) from raw.quarantine group by 1 order by 1"
    ).fetchall()
    assert reasons == [
        ("non-numeric quantity", 1),
        ("usage date outside the load window [2026-11-02, 2026-11-03)", 6),
    ]
    assert con.execute("select distinct usage_date from raw.billing_lines").fetchall() == [
        (date(2026, 11, 2),)
    ]


def test_without_flags_each_api_file_loads_on_its_own_day_and_exports_on_their_month():
    con = duckdb.connect()
    results = ingest_billing(
        con,
        "anthropic",
        [FIX / "anthropic_usage_messages_page1.json", FIX / "anthropic_usage_messages_page2.json"],
    )
    assert [r.load_date for r in results] == [date(2026, 11, 2), date(2026, 11, 3)]
    (r,) = ingest_billing(con, "gcp", [FIX / "gcp_billing_export.jsonl"])
    assert r.load_date == date(2026, 11, 1)  # the export's (most common) invoice month


def test_bad_arguments_are_clear_errors():
    con = duckdb.connect()
    with pytest.raises(BillingError, match="unknown billing vendor 'oracle'"):
        ingest_billing(con, "oracle", [FIX / "gcp_billing_export.jsonl"])
    with pytest.raises(BillingError, match="file not found: .*nope.csv"):
        ingest_billing(con, "aws", [FIX / "nope.csv"])
    with pytest.raises(BillingError, match="not both"):
        ingest_billing(
            con, "aws", [FIX / "aws_cur2_bedrock.csv"], load_date=date(2026, 11, 1),
            month=date(2026, 11, 1),
        )  # fmt: skip


def test_broken_json_file_names_the_file(tmp_path):
    bad = tmp_path / "usage.json"
    bad.write_text('{"data": [ {"starting_at": ')
    con = duckdb.connect()
    with pytest.raises(BillingError, match="usage.json"):
        ingest_billing(con, "anthropic", [bad])


def test_ingest_billing_command(tmp_path):
    from tokenbook.commands.ingest_billing import billing

    app = typer.Typer()
    app.command("billing")(billing)
    app.command("noop")(lambda: None)  # keep `billing` a subcommand, as under `tokenbook ingest`
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in ("azure_openai_actual_cost.csv", "azure_ea_sample_excerpt.csv"):
        shutil.copy(FIX / n, drop / n)
    wh = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    runner = CliRunner()
    res = runner.invoke(
        app, ["billing", "--vendor", "azure", "--month", "2026-11", "--warehouse", wh, str(drop)]
    )
    assert res.exit_code == 0, res.output
    assert "azure load 2026-11-01: 2 file(s), 10 lines read, 4 loaded, 6 quarantined" in res.output
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:
        reasons = con.execute("select reason, count(*) from raw.quarantine group by 1 order by 1")
        assert reasons.fetchall() == [
            ("billing period is not 2026-11", 5),
            ("unparseable charge period start; unparseable charge period end", 1),
        ]
    res = runner.invoke(app, ["billing", "--vendor", "aws", "--warehouse", wh, str(drop)])
    assert res.exit_code == 1
    # the file is named for what it is (issue 21), not only for the column it lacks
    assert "azure_ea_sample_excerpt.csv is an Azure cost export" in res.output
    assert "pass --vendor azure" in res.output
    res = runner.invoke(app, ["billing", "--vendor", "x", "--warehouse", wh, str(drop)])
    assert res.exit_code == 2


def test_a_broken_file_among_many_is_named(tmp_path):
    good = tmp_path / "a-good.json"
    good.write_text((FIX / "anthropic_usage_messages_page2.json").read_text())
    bad = tmp_path / "b-bad.json"
    bad.write_text('{"data": [ {"starting_at": ')
    con = duckdb.connect()
    with pytest.raises(BillingError, match="b-bad.json"):
        ingest_billing(con, "anthropic", [good, bad])
    assert (
        con.execute(
            "select count(*) from information_schema.tables where table_name = 'billing_lines'"
        ).fetchone()[0]
        == 0
    )


def test_only_identical_results_are_duplicates(tmp_path):
    page = (FIX / "openai_usage_completions_page1.json").read_text()
    again = tmp_path / "usage-again.json"
    again.write_text(page)  # the same page saved twice: all duplicates
    other = tmp_path / "usage-other-group.json"
    other.write_text(page.replace('"output_tokens": 150000', '"output_tokens": 150001'))
    con = duckdb.connect()
    (r,) = ingest_billing(
        con, "openai", [FIX / "openai_usage_completions_page1.json", again, other],
        load_date=date(2026, 11, 2),
    )  # fmt: skip
    per_file = [(f.rows_read, f.rows_loaded, f.rows_duplicate) for f in r.files]
    # the changed result (gpt-4o: 4 lines) loads again; the unchanged gpt-4o-mini one (3) does not
    assert per_file == [(7, 7, 0), (7, 0, 7), (7, 4, 3)]
