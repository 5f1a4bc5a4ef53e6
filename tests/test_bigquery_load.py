"""BigQuery load path, offline: the BigQuery client is patched (it cannot be reached here);
DuckDB really writes the Parquet files, and we check what the client would be sent."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from google.api_core import exceptions as gexc
from google.cloud import bigquery
from sqlglot import exp

from core.settings import load_settings
from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS, PartitionTables
from ingestion.raw import fetch, schema
from ingestion.raw.sinks import bigquery as bq
from tests.bigquery_fakes import FakeClient


def _stage(con, name: str, columns, rows: list[tuple]) -> str:
    con.execute(schema.duckdb_ddl(name, columns).replace("create table", "create temp table"))
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"insert into {name} values ({marks})", rows)
    return name


def _call(load_date: date, rid: str, feature: str | None) -> tuple:
    values = {name: None for name, _, _ in GATEWAY_CALLS_COLUMNS}
    values.update(
        load_date=load_date,
        request_id=rid,
        call_ts=f"{load_date.isoformat()} 09:00:01.120",
        provider="openai",
        model="gpt-4o",
        input_tokens=2300,
        output_tokens=312,
        cache_read_input_tokens=1024,
        feature=feature,
        gateway_cost_usd="0.004872500",
        metadata='{"ticket": "T-1"}',
        extra='{"call_type": "acompletion"}',
        source_format="native",
        source_file="gateway-2026-11-02.jsonl",
        source_line=1,
    )
    return tuple(values[name] for name, _, _ in GATEWAY_CALLS_COLUMNS)


@pytest.fixture
def staged():
    """Two load dates of staged tables in DuckDB (3 + 2 calls, 1 + 0 quarantined)."""
    con = duckdb.connect()
    out = {}
    for d, n_calls, n_bad in ((date(2026, 11, 2), 3, 1), (date(2026, 11, 3), 2, 0)):
        tag = d.strftime("%Y%m%d")
        calls = [_call(d, f"req-{tag}-{i}", "lead_scoring" if i else None) for i in range(n_calls)]
        bad = [(d, "gateway", "f.jsonl", 7, "not JSON", "[REDACTED:email] oops")] * n_bad
        pii = [(d, "gateway", "f.jsonl", "metadata", "email", 2)]
        out[d] = PartitionTables(
            gateway_calls=_stage(con, f"stg_calls_{tag}", GATEWAY_CALLS_COLUMNS, calls),
            quarantine=_stage(con, f"stg_quarantine_{tag}", schema.QUARANTINE_COLUMNS, bad),
            pii_redactions=_stage(con, f"stg_pii_{tag}", schema.PII_REDACTIONS_COLUMNS, pii),
        )
    audit = [
        (
            "load-1",
            "gateway",
            "f.jsonl",
            date(2026, 11, 2),
            5,
            3,
            1,
            1,
            "2026-11-02 10:00:00",
            "2026-11-02 10:00:05",
            "loaded",
        ),
    ]
    out["audit"] = _stage(con, "stg_audit", schema.LOAD_AUDIT_COLUMNS, audit)
    yield con, out
    con.close()


def _publish(con, out, client) -> bq.BigQuerySink:
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", location="EU", client=client)
    for d in (date(2026, 11, 2), date(2026, 11, 3)):
        sink.replace_partition(con, d, out[d])
    sink.append_audit(con, out["audit"])
    return sink


RAW = "orbit-finops.tokenbook_raw"
STAGE = re.compile(
    r"orbit-finops\.tokenbook_raw\._tb_stage_(quarantine|pii_redactions)_(\d{8})_\w+$"
)


def _kinds(client) -> list[tuple[str, str]]:
    """The client's events with staging-table names reduced to ``stage:<table>_<YYYYMMDD>``."""
    out = []
    for kind, target in client.events:
        m = STAGE.match(target)
        out.append((kind, f"stage:{m[1]}_{m[2]}" if m else target))
    return out


def test_gateway_calls_partition_load_and_staged_shared_tables(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    day = []
    for d in ("20261102", "20261103"):
        day += [
            ("load", f"stage:quarantine_{d}"),
            ("expire", f"stage:quarantine_{d}"),
            ("load", f"stage:pii_redactions_{d}"),
            ("expire", f"stage:pii_redactions_{d}"),
            ("load", f"{RAW}.gateway_calls${d}"),
            ("query", ""),
            ("drop", f"stage:quarantine_{d}"),
            ("drop", f"stage:pii_redactions_{d}"),
        ]
    assert _kinds(client) == [*day, ("load", f"{RAW}.load_audit")]
    # only gateway_calls is written as a partition; the shared tables never are
    assert [ld["destination"] for ld in client.loads if "$" in ld["destination"]] == [
        f"{RAW}.gateway_calls$20261102",
        f"{RAW}.gateway_calls$20261103",
    ]
    assert {ld["config"].write_disposition for ld in client.loads[:-1]} == {"WRITE_TRUNCATE"}
    assert (
        {ld["location"] for ld in client.loads} == {"EU"} == {q["location"] for q in client.queries}
    )
    # every staging table got an expiry and was dropped (tolerating an already-gone one)
    staging = [ld["destination"] for ld in client.loads if STAGE.match(ld["destination"])]
    assert len(staging) == len(set(staging)) == 4
    assert sorted(client.expiries) == sorted(staging)
    assert sorted(client.deleted) == sorted((t, True) for t in staging)
    # the dataset is created once, in the configured location, tolerating an existing one
    assert client.datasets == [("orbit-finops.tokenbook_raw", "EU", True)]


def test_replace_partitions_publishes_each_date_of_staged_tables_holding_several(staged):
    """What the pipeline calls: one staged table per raw table holding every load date; each
    date's rows go to that date's partition and transaction, as replace_partition does."""
    con, out = staged
    days = (date(2026, 11, 2), date(2026, 11, 3))
    merged = {}
    for field in ("gateway_calls", "quarantine", "pii_redactions"):
        union = " union all ".join(f"select * from {getattr(out[d], field)}" for d in days)
        con.execute(f"create temp table all_{field} as {union}")
        merged[field] = f"all_{field}"
    seen = []
    client = FakeClient()
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", location="EU", client=client)
    sink.replace_partitions(con, [days[1], days[0], days[1]], PartitionTables(**merged),
                            progress=lambda k, n, label: seen.append((k, n, label)))
    assert seen == [(0, 2, "2026-11-02"), (1, 2, "2026-11-03")]
    one_by_one = FakeClient()
    _publish(con, out, one_by_one)
    assert _kinds(client) == _kinds(one_by_one)[:-1]  # the same jobs, the audit aside
    for a, b in zip(client.loads, one_by_one.loads, strict=False):
        # (Parquet's nullability flags may differ: the job's schema, NULLABLE, decides)
        assert [(f.name, f.type) for f in a["table"].schema] == [
            (f.name, f.type) for f in b["table"].schema], a["destination"]
        assert sorted(map(repr, a["table"].to_pylist())) == sorted(
            map(repr, b["table"].to_pylist())), a["destination"]
    assert [ld["table"].num_rows for ld in client.loads] == [1, 1, 3, 0, 1, 2]
    assert sink.calls_table is None  # published rows are not readable through DuckDB


def test_validation_results_replace_one_partition_per_load_date(staged):
    con, _ = staged
    between = "expect_column_values_to_be_between"
    rows = [
        (date(2026, 11, 2), "tokenbook_check", "daily_metrics", between, "volume_ratio",
         '{"max_value": 2.0, "min_value": 0.5}', True, 3, 0, "0.98", "gateway_volume", 0.5,
         2.0, "calls against the same weekday's median", "load-1"),
        (date(2026, 11, 2), "tokenbook_check", "daily_metrics", between, "quarantine_share",
         '{"max_value": 0.05}', False, 1, 1, "0.25", "gateway_load", None, 0.05,
         "raw.quarantine", "load-1"),
        (date(2026, 11, 3), "tokenbook_check", "daily_metrics", between, "volume_ratio",
         '{"max_value": 2.0, "min_value": 0.5}', None, 2, None, "not evaluable: no history",
         "gateway_volume", 0.5, 2.0, "calls against the same weekday's median", "load-2"),
    ]
    staged_results = _stage(con, "stg_validation", schema.VALIDATION_RESULTS_COLUMNS, rows)
    client = FakeClient()
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", location="EU", client=client)
    sink.replace_validation_results(con, [date(2026, 11, 3), date(2026, 11, 2)], staged_results)
    assert [ld["destination"] for ld in client.loads] == [
        f"{RAW}.validation_results$20261102", f"{RAW}.validation_results$20261103"]
    for ld, n in zip(client.loads, (2, 1), strict=True):
        api = ld["config"].to_api_repr()["load"]
        assert api["writeDisposition"] == "WRITE_TRUNCATE"
        assert api["timePartitioning"] == {"type": "DAY"} and "clustering" not in api
        assert api["schemaUpdateOptions"] == ["ALLOW_FIELD_ADDITION"]  # older tables grow
        assert api["schema"]["fields"] == [
            {"name": c, "type": t, "mode": "NULLABLE"}
            for c, _, t in schema.VALIDATION_RESULTS_COLUMNS
        ]
        assert ld["table"].num_rows == n
        assert ld["table"].column_names == [c for c, _, _ in schema.VALIDATION_RESULTS_COLUMNS]
    assert client.loads[0]["table"].column("success").to_pylist() == [True, False]


def test_staging_load_job_config(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    for ld, columns in ((client.loads[0], schema.QUARANTINE_COLUMNS),
                        (client.loads[1], schema.PII_REDACTIONS_COLUMNS)):  # fmt: skip
        assert STAGE.match(ld["destination"])
        api = ld["config"].to_api_repr()["load"]
        assert api["writeDisposition"] == "WRITE_TRUNCATE"
        assert api["createDisposition"] == "CREATE_IF_NEEDED"
        assert api["sourceFormat"] == "PARQUET"
        assert "timePartitioning" not in api and "clustering" not in api
        assert api["schema"]["fields"] == [
            {"name": n, "type": t, "mode": "NULLABLE"} for n, _, t in columns
        ]


def _statements(sql: str) -> list[exp.Expression]:
    return [e for e in sqlglot.parse(sql, read="bigquery") if e is not None]


def test_transaction_replaces_only_this_sources_rows_of_the_date(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    assert len(client.queries) == 2  # one transaction per load date
    query = client.queries[0]
    stmts = _statements(query["sql"])
    kinds = [type(e).__name__ for e in stmts]
    assert kinds == [
        "Create", "Create", "Transaction", "Delete", "Insert", "Delete", "Insert", "Commit",
    ]  # fmt: skip
    staging = {
        m[1]: ld["destination"].rsplit(".", 1)[1]
        for ld in client.loads[:2]
        if (m := STAGE.match(ld["destination"]))
    }
    for (delete, insert), table, columns in (
        (stmts[3:5], "quarantine", schema.QUARANTINE_COLUMNS),
        (stmts[5:7], "pii_redactions", schema.PII_REDACTIONS_COLUMNS),
    ):
        assert delete.this.name == table and delete.this.db == "tokenbook_raw"
        where = delete.args["where"].this
        assert isinstance(where, exp.And)
        conds = {c.sql("bigquery") for c in where.flatten()}
        assert conds == {"load_date = @load_date", "source = @source"}
        assert insert.this.this.name == table
        names = [c.name for c in insert.this.expressions]
        assert names == ["_PARTITIONTIME", *(c for c, _, _ in columns)]
        select = insert.expression
        assert select.args["from_"].this.name == staging[table]
        assert select.expressions[0].sql("bigquery") == "TIMESTAMP(@load_date)"
    # the target tables get ingestion-time partitions, like the partition loads create them
    create = stmts[0]
    assert create.args.get("exists") and create.this.this.name == "quarantine"
    assert "PARTITION BY _PARTITIONDATE" in create.sql("bigquery")
    # never a statement touching gateway_calls or a whole partition
    assert "gateway_calls" not in query["sql"] and "$" not in query["sql"]
    params = {p.name: (p.type_, p.value) for p in query["config"].query_parameters}
    assert params == {"load_date": ("DATE", date(2026, 11, 2)), "source": ("STRING", "gateway")}
    second = {p.name: p.value for p in client.queries[1]["config"].query_parameters}
    assert second["load_date"] == date(2026, 11, 3)


def test_parquet_files_hold_the_staged_rows_with_warehouse_types(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    counts = [ld["table"].num_rows for ld in client.loads]
    # per date: quarantine stage, pii stage, gateway_calls; then the audit
    assert counts == [1, 1, 3, 0, 1, 2, 1]
    calls = client.loads[2]["table"]
    assert calls.column_names == [c for c, _, _ in GATEWAY_CALLS_COLUMNS]
    types = dict(zip(calls.column_names, calls.schema.types, strict=True))
    assert types["call_ts"] == pa.timestamp("us", tz="UTC")
    assert types["gateway_cost_usd"] == pa.decimal128(38, 9)
    assert types["load_date"] == pa.date32() and types["input_tokens"] == pa.int64()
    assert str(types["metadata"]).startswith("extension<arrow.json")
    row = calls.to_pylist()[1]
    assert str(row["gateway_cost_usd"]) == "0.004872500"
    assert row["call_ts"].isoformat() == "2026-11-02T09:00:01.120000+00:00"
    assert json.loads(row["metadata"]) == {"ticket": "T-1"}
    # an empty quarantine is still staged and published: the delete empties it on a rerun
    assert client.loads[3]["table"].column_names == [c for c, _, _ in schema.QUARANTINE_COLUMNS]
    assert client.loads[0]["table"].to_pylist()[0]["source"] == "gateway"


def test_load_job_config_fields_and_api_payload(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    cfg = client.loads[2]["config"]
    assert client.loads[2]["destination"] == f"{RAW}.gateway_calls$20261102"
    assert cfg.source_format == bigquery.SourceFormat.PARQUET
    assert cfg.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert cfg.create_disposition == bigquery.CreateDisposition.CREATE_IF_NEEDED
    assert cfg.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert cfg.time_partitioning.field is None  # ingestion-time partitioning
    assert cfg.clustering_fields == ["feature"]
    api = cfg.to_api_repr()
    expected_fields = [
        {"name": n, "type": t, "mode": "NULLABLE"} for n, _, t in GATEWAY_CALLS_COLUMNS
    ]
    assert api == {
        "load": {
            "sourceFormat": "PARQUET",
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_IF_NEEDED",
            "timePartitioning": {"type": "DAY"},
            "clustering": {"fields": ["feature"]},
            "schema": {"fields": expected_fields},
        }
    }
    by_field = {f["name"]: f["type"] for f in api["load"]["schema"]["fields"]}
    assert (by_field["gateway_cost_usd"], by_field["metadata"], by_field["call_ts"]) == (
        "NUMERIC",
        "JSON",
        "TIMESTAMP",
    )
    audit = client.loads[-1]["config"].to_api_repr()["load"]
    assert client.loads[-1]["destination"] == f"{RAW}.load_audit"
    assert audit["writeDisposition"] == "WRITE_APPEND"
    assert [f["name"] for f in audit["schema"]["fields"]] == [
        c for c, _, _ in schema.LOAD_AUDIT_COLUMNS
    ]


def test_bigquery_error_names_table_and_date_and_drops_staging(staged):
    con, out = staged
    client = FakeClient(fail_on=f"{RAW}._tb_stage_pii_redactions_20261102")
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", client=client)
    with pytest.raises(bq.BigQueryLoadError, match=r"pii_redactions for 2026-11-02") as err:
        sink.replace_partition(con, date(2026, 11, 2), out[date(2026, 11, 2)])
    assert "Provided Schema does not match" in str(err.value)
    assert isinstance(err.value.__cause__, gexc.BadRequest)
    # nothing was published: no gateway_calls load, no transaction; both staging tables dropped
    assert not client.queries
    assert not [ld for ld in client.loads if "gateway_calls" in ld["destination"]]
    assert [k for k in _kinds(client) if k[0] == "drop"] == [
        ("drop", "stage:quarantine_20261102"),
        ("drop", "stage:pii_redactions_20261102"),
    ]


def test_failed_transaction_is_reported_and_staging_dropped(staged):
    con, out = staged
    client = FakeClient(fail_query=True)
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", client=client, source="gateway")
    with pytest.raises(bq.BigQueryLoadError, match=r"2026-11-03.*rolled back") as err:
        sink.replace_partition(con, date(2026, 11, 3), out[date(2026, 11, 3)])
    assert "concurrent update" in str(err.value)
    assert len(client.deleted) == 2 and _kinds(client)[-2:] == [
        ("drop", "stage:quarantine_20261103"),
        ("drop", "stage:pii_redactions_20261103"),
    ]


def test_staged_rows_of_another_source_or_date_are_refused(staged):
    con, out = staged
    client = FakeClient()
    # the staged 2026-11-02 rows are source 'gateway': an evals sink must not publish them
    sink = bq.BigQuerySink("orbit-finops", "tokenbook", client=client, source="evals")
    with pytest.raises(bq.BigQueryLoadError, match=r"not source='evals'"):
        sink.replace_partition(con, date(2026, 11, 2), out[date(2026, 11, 2)])
    gateway = bq.BigQuerySink("orbit-finops", "tokenbook", client=client)
    with pytest.raises(bq.BigQueryLoadError, match=r"for 2026-11-04 are not"):
        gateway.replace_partition(con, date(2026, 11, 4), out[date(2026, 11, 2)])
    assert client.loads == [] and client.queries == []


def test_patched_client_is_created_from_settings(staged, monkeypatch):
    con, out = staged
    monkeypatch.setenv("TOKENBOOK_WAREHOUSE", "bigquery://orbit-finops/tokenbook")
    monkeypatch.setenv("TOKENBOOK_BQ_LOCATION", "europe-west4")
    settings = load_settings()
    fake = FakeClient()
    with mock.patch("google.cloud.bigquery.Client", return_value=fake) as client_cls:
        sink = bq.BigQuerySink.from_settings(settings)
        sink.replace_partition(con, date(2026, 11, 3), out[date(2026, 11, 3)])
    client_cls.assert_called_once_with(project="orbit-finops", location="europe-west4")
    assert sink.source == "gateway"
    assert bq.BigQuerySink.from_settings(settings, client=fake, source="evals").source == "evals"
    assert [k for k in _kinds(fake) if k[0] in ("load", "query")] == [
        ("load", "stage:quarantine_20261103"),
        ("load", "stage:pii_redactions_20261103"),
        ("load", f"{RAW}.gateway_calls$20261103"),
        ("query", ""),
    ]
    assert fake.queries[0]["location"] == "europe-west4"
    assert fake.datasets == [("orbit-finops.tokenbook_raw", "europe-west4", True)]


def test_keyfile_credentials_and_clear_errors(tmp_path):
    creds = object()
    with (
        mock.patch(
            "google.oauth2.service_account.Credentials.from_service_account_file",
            return_value=creds,
        ) as from_file,
        mock.patch("google.cloud.bigquery.Client") as client_cls,
    ):
        bq.make_client("p", "US", keyfile="/secrets/sa.json")
    from_file.assert_called_once_with("/secrets/sa.json")
    client_cls.assert_called_once_with(project="p", location="US", credentials=creds)
    with pytest.raises(bq.BigQueryLoadError, match="key file not found"):
        bq.make_client("p", "US", keyfile=str(tmp_path / "missing.json"))
    with pytest.raises(bq.BigQueryLoadError, match="not BigQuery"):
        bq.BigQuerySink.from_settings(load_settings(warehouse="duckdb:///x.duckdb"))


class FakeBlob:
    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def download_to_filename(self, filename: str) -> None:
        Path(filename).write_bytes(self.data)


class FakeStorage:
    def __init__(self, names: list[str]):
        self.blobs = [FakeBlob(n, n.encode()) for n in names]
        self.calls: list[tuple[str, str]] = []

    def list_blobs(self, bucket, prefix=""):
        self.calls.append((bucket, prefix))
        return [b for b in self.blobs if b.name.startswith(prefix)]


def test_fetch_gcs_object_prefix_and_pattern(tmp_path):
    names = [
        "logs/gateway-2026-11-02.jsonl.gz",
        "logs/gateway-2026-11-03.jsonl.gz",
        "logs/readme.txt",
        "logs/",
        "other/x.jsonl",
    ]
    store = FakeStorage(names)
    got = fetch.fetch_gcs("gs://orbit-logs/logs/gateway-*.jsonl.gz", tmp_path, client=store)
    assert [p.name for p in got] == ["gateway-2026-11-02.jsonl.gz", "gateway-2026-11-03.jsonl.gz"]
    assert got[0].read_bytes() == b"logs/gateway-2026-11-02.jsonl.gz"
    assert store.calls == [("orbit-logs", "logs/gateway-")]
    one = fetch.fetch_gcs("gs://orbit-logs/logs/readme.txt", tmp_path, client=store)
    assert [p.name for p in one] == ["readme.txt"]
    folder = fetch.fetch_gcs("gs://orbit-logs/logs/", tmp_path, client=store)
    assert len(folder) == 3
    with pytest.raises(bq.BigQueryLoadError, match="no object matches"):
        fetch.fetch_gcs("gs://orbit-logs/nothing/*.jsonl", tmp_path, client=store)
    with pytest.raises(bq.BigQueryLoadError, match="not a gs:// URI"):
        fetch.fetch_gcs("s3://x/y", tmp_path, client=store)


def test_fetch_gcs_without_the_storage_package_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_storage(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "google.cloud" and fromlist and "storage" in fromlist:
            raise ImportError("No module named 'google.cloud.storage'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_storage)
    with pytest.raises(bq.BigQueryLoadError, match="pip install google-cloud-storage"):
        fetch.fetch_gcs("gs://orbit-logs/logs/x.jsonl", tmp_path)


def test_shrink_guard_counts_the_partition_before_any_load_job(tmp_path, monkeypatch):
    """Issue 21 on BigQuery: one query job counts the load date's partition (pruned on
    _PARTITIONDATE) before any WRITE_TRUNCATE; a load offering under 10% of it is refused,
    nothing but the audit row (status refused) is sent; more than 10% loads as before."""
    from ingestion.gateway.pipeline import LoadRefused, ingest_gateway
    from ingestion.raw import guard

    day = date(2026, 11, 10)
    f = tmp_path / "day.jsonl"
    f.write_text("".join(
        json.dumps({"request_id": f"b{i}", "timestamp": "2026-11-10T08:00:00Z",
                    "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 50,
                    "output_tokens": 9, "feature": "route_planner"}) + "\n"
        for i in range(5)))
    settings = load_settings(warehouse="bigquery://orbit-finops/tb", pii_key="k")

    client = FakeClient(held={day: 1000})
    monkeypatch.setattr(bigquery, "Client", lambda **_: client)
    with pytest.raises(LoadRefused, match="gateway 2026-11-10 holds 1,000 rows and the load "
                                          "offers 5") as refused:
        ingest_gateway([str(f)], settings, date=day)
    assert refused.value.shrinks == [guard.Shrink("gateway 2026-11-10", 1000, 5)]
    (count,) = client.counts
    assert count["sql"] == (
        "SELECT _PARTITIONDATE AS load_date, COUNT(*) AS row_count FROM "
        "`orbit-finops.tb_raw.gateway_calls` WHERE _PARTITIONDATE IN UNNEST(@load_dates) "
        "GROUP BY load_date")
    assert isinstance(sqlglot.parse_one(count["sql"], read="bigquery"), exp.Select)
    (param,) = count["config"].query_parameters
    assert param.to_api_repr() == {
        "name": "load_dates", "parameterType": {"type": "ARRAY", "arrayType": {"type": "DATE"}},
        "parameterValue": {"arrayValues": [{"value": "2026-11-10"}]}}
    # the count came first; the only load job is the audit's, which says refused
    assert client.events[0] == ("count", "")
    assert [ld["destination"] for ld in client.loads] == ["orbit-finops.tb_raw.load_audit"]
    audit = client.loads[0]["table"].to_pylist()
    assert [(a["rows_read"], a["rows_loaded"], a["status"]) for a in audit] == [(5, 5, "refused")]
    assert client.queries == []  # no publish transaction

    client = FakeClient(held={day: 40})  # 5 of 40 keeps 12.5%: an honest restatement
    monkeypatch.setattr(bigquery, "Client", lambda **_: client)
    ingest_gateway([str(f)], settings, date=day)
    assert client.events[0] == ("count", "")
    assert "orbit-finops.tb_raw.gateway_calls$20261110" in [ld["destination"] for ld in client.loads]
