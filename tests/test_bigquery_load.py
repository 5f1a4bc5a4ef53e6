"""BigQuery load path, offline: the BigQuery client is patched (it cannot be reached here);
DuckDB really writes the Parquet files, and we check what the client would be sent."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from ingestion import bigquery as bq
from ingestion.gateway import schema
from tokenbook.settings import load_settings


class FakeJob:
    def __init__(self, error: Exception | None = None):
        self._error = error
        self.errors = [{"reason": "invalid", "message": "bad row"}] if error else None

    def result(self):
        if self._error:
            raise self._error
        return self


class FakeClient:
    """Records datasets and load jobs; keeps a copy of every Parquet file it is sent."""

    def __init__(self, fail_on: str | None = None):
        self.datasets: list[tuple[str, str | None, bool]] = []
        self.loads: list[dict] = []
        self.fail_on = fail_on

    def create_dataset(self, ds, exists_ok=False):
        self.datasets.append((f"{ds.project}.{ds.dataset_id}", ds.location, exists_ok))
        return ds

    def load_table_from_file(self, fh, destination, job_config=None, location=None, **kw):
        table = pq.read_table(pa.BufferReader(fh.read()))
        self.loads.append(
            {"destination": destination, "config": job_config, "location": location, "table": table}
        )
        if self.fail_on and destination.startswith(self.fail_on):
            return FakeJob(gexc.BadRequest("Provided Schema does not match Table"))
        return FakeJob()


def _stage(con, name: str, columns, rows: list[tuple]) -> str:
    con.execute(schema.duckdb_ddl(name, columns).replace("create table", "create temp table"))
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"insert into {name} values ({marks})", rows)
    return name


def _call(load_date: date, rid: str, feature: str | None) -> tuple:
    values = {name: None for name, _, _ in schema.GATEWAY_CALLS_COLUMNS}
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
    return tuple(values[name] for name, _, _ in schema.GATEWAY_CALLS_COLUMNS)


@pytest.fixture
def staged():
    """Two load dates of staged tables in DuckDB (3 + 2 calls, 1 + 0 quarantined)."""
    con = duckdb.connect()
    out = {}
    for d, n_calls, n_bad in ((date(2026, 11, 2), 3, 1), (date(2026, 11, 3), 2, 0)):
        tag = d.strftime("%Y%m%d")
        calls = [_call(d, f"req-{tag}-{i}", "support_chat" if i else None) for i in range(n_calls)]
        bad = [(d, "gateway", "f.jsonl", 7, "not JSON", "[REDACTED:email] oops")] * n_bad
        pii = [(d, "gateway", "f.jsonl", "metadata", "email", 2)]
        out[d] = schema.PartitionTables(
            gateway_calls=_stage(con, f"stg_calls_{tag}", schema.GATEWAY_CALLS_COLUMNS, calls),
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
    sink = bq.BigQuerySink("acme-finops", "tokenbook", location="EU", client=client)
    for d in (date(2026, 11, 2), date(2026, 11, 3)):
        sink.replace_partition(con, d, out[d])
    sink.append_audit(con, out["audit"])
    return sink


def test_one_truncating_load_job_per_table_per_date(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    assert [(ld["destination"], ld["config"].write_disposition) for ld in client.loads] == [
        ("acme-finops.tokenbook_raw.gateway_calls$20261102", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.quarantine$20261102", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.pii_redactions$20261102", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.gateway_calls$20261103", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.quarantine$20261103", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.pii_redactions$20261103", "WRITE_TRUNCATE"),
        ("acme-finops.tokenbook_raw.load_audit", "WRITE_APPEND"),
    ]
    assert {ld["location"] for ld in client.loads} == {"EU"}
    # the dataset is created once, in the configured location, tolerating an existing one
    assert client.datasets == [("acme-finops.tokenbook_raw", "EU", True)]


def test_parquet_files_hold_the_staged_rows_with_warehouse_types(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    counts = [ld["table"].num_rows for ld in client.loads]
    assert counts == [3, 1, 1, 2, 0, 1, 1]
    calls = client.loads[0]["table"]
    assert calls.column_names == [c for c, _, _ in schema.GATEWAY_CALLS_COLUMNS]
    types = dict(zip(calls.column_names, calls.schema.types, strict=True))
    assert types["call_ts"] == pa.timestamp("us", tz="UTC")
    assert types["gateway_cost_usd"] == pa.decimal128(38, 9)
    assert types["load_date"] == pa.date32() and types["input_tokens"] == pa.int64()
    assert str(types["metadata"]).startswith("extension<arrow.json")
    row = calls.to_pylist()[1]
    assert str(row["gateway_cost_usd"]) == "0.004872500"
    assert row["call_ts"].isoformat() == "2026-11-02T09:00:01.120000+00:00"
    assert json.loads(row["metadata"]) == {"ticket": "T-1"}
    # an empty partition is still loaded: WRITE_TRUNCATE empties it on a rerun
    assert client.loads[4]["table"].column_names == [c for c, _, _ in schema.QUARANTINE_COLUMNS]


def test_load_job_config_fields_and_api_payload(staged):
    con, out = staged
    client = FakeClient()
    _publish(con, out, client)
    cfg = client.loads[0]["config"]
    assert cfg.source_format == bigquery.SourceFormat.PARQUET
    assert cfg.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert cfg.create_disposition == bigquery.CreateDisposition.CREATE_IF_NEEDED
    assert cfg.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert cfg.time_partitioning.field is None  # ingestion-time partitioning
    assert cfg.clustering_fields == ["feature"]
    api = cfg.to_api_repr()
    expected_fields = [
        {"name": n, "type": t, "mode": "NULLABLE"} for n, _, t in schema.GATEWAY_CALLS_COLUMNS
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
    quarantine = client.loads[1]["config"].to_api_repr()["load"]
    assert "clustering" not in quarantine and quarantine["timePartitioning"] == {"type": "DAY"}
    audit = client.loads[-1]["config"].to_api_repr()["load"]
    assert audit["writeDisposition"] == "WRITE_APPEND"
    assert [f["name"] for f in audit["schema"]["fields"]] == [
        c for c, _, _ in schema.LOAD_AUDIT_COLUMNS
    ]


def test_bigquery_error_names_table_and_date(staged):
    con, out = staged
    client = FakeClient(fail_on="acme-finops.tokenbook_raw.quarantine$20261102")
    sink = bq.BigQuerySink("acme-finops", "tokenbook", client=client)
    with pytest.raises(bq.BigQueryLoadError, match=r"quarantine for 2026-11-02") as err:
        sink.replace_partition(con, date(2026, 11, 2), out[date(2026, 11, 2)])
    assert "Provided Schema does not match" in str(err.value)
    assert isinstance(err.value.__cause__, gexc.BadRequest)


def test_patched_client_is_created_from_settings(staged, monkeypatch):
    con, out = staged
    monkeypatch.setenv("TOKENBOOK_WAREHOUSE", "bigquery://acme-finops/tokenbook")
    monkeypatch.setenv("TOKENBOOK_BQ_LOCATION", "europe-west4")
    settings = load_settings()
    fake = FakeClient()
    with mock.patch("google.cloud.bigquery.Client", return_value=fake) as client_cls:
        sink = bq.BigQuerySink.from_settings(settings)
        sink.replace_partition(con, date(2026, 11, 3), out[date(2026, 11, 3)])
    client_cls.assert_called_once_with(project="acme-finops", location="europe-west4")
    assert [ld["destination"].rsplit(".", 1)[1] for ld in fake.loads] == [
        "gateway_calls$20261103",
        "quarantine$20261103",
        "pii_redactions$20261103",
    ]
    assert fake.datasets == [("acme-finops.tokenbook_raw", "europe-west4", True)]


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
    got = bq.fetch_gcs("gs://acme-logs/logs/gateway-*.jsonl.gz", tmp_path, client=store)
    assert [p.name for p in got] == ["gateway-2026-11-02.jsonl.gz", "gateway-2026-11-03.jsonl.gz"]
    assert got[0].read_bytes() == b"logs/gateway-2026-11-02.jsonl.gz"
    assert store.calls == [("acme-logs", "logs/gateway-")]
    one = bq.fetch_gcs("gs://acme-logs/logs/readme.txt", tmp_path, client=store)
    assert [p.name for p in one] == ["readme.txt"]
    folder = bq.fetch_gcs("gs://acme-logs/logs/", tmp_path, client=store)
    assert len(folder) == 3
    with pytest.raises(bq.BigQueryLoadError, match="no object matches"):
        bq.fetch_gcs("gs://acme-logs/nothing/*.jsonl", tmp_path, client=store)
    with pytest.raises(bq.BigQueryLoadError, match="not a gs:// URI"):
        bq.fetch_gcs("s3://x/y", tmp_path, client=store)


def test_fetch_gcs_without_the_storage_package_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_storage(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "google.cloud" and fromlist and "storage" in fromlist:
            raise ImportError("No module named 'google.cloud.storage'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_storage)
    with pytest.raises(bq.BigQueryLoadError, match="pip install google-cloud-storage"):
        bq.fetch_gcs("gs://acme-logs/logs/x.jsonl", tmp_path)
