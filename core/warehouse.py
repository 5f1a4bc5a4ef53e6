"""The warehouse: its URL parsed once, and every connection to it.

``Warehouse.from_settings(settings)`` is how the rest of the code gets one: it parses the URL
and keeps the BigQuery location and key file, so a DuckDB connection (``connect()``) and a
BigQuery client (``bigquery_client()``) are built the same way everywhere.

``duckdb:///relative/path.duckdb`` (relative to the working directory: three slashes),
``duckdb:////absolute/path.duckdb`` (four slashes), or ``bigquery://PROJECT/DATASET_PREFIX``.
``Warehouse.location`` is what was actually opened (the absolute file), for messages.

Layers map to DuckDB schemas ``raw``, ``staging``, ``marts`` in one file, and to
BigQuery datasets ``<prefix>_raw``, ``<prefix>_staging``, ``<prefix>_marts``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

LAYERS = ("raw", "staging", "intermediate", "marts")


class WarehouseError(ValueError):
    """A warehouse URL that cannot be used; the message says what to write instead."""


class WarehouseLocked(WarehouseError):
    """Another process holds the DuckDB file (DuckDB allows one writer process)."""


_PID = re.compile(r"\(PID (\d+)\)")


def lock_message(path, exc: BaseException, waited: float = 0.0) -> str:
    """One sentence for a DuckDB "Could not set lock" error: who holds the file (the PID when
    DuckDB's message gives it) and what to do."""
    m = _PID.search(str(exc))
    who = f"another process (PID {m[1]})" if m else "another process"
    wait = f" (waited {waited:.1f} s)" if waited else ""
    return (
        f"the warehouse {Path(path).resolve()} is in use by {who}, probably another tokenbook "
        f"command writing it{wait}. Wait for it to finish and run again; ingest waits up to "
        "TOKENBOOK_LOCK_WAIT_SECONDS (setting lock_wait_seconds) for the lock."
    )


def is_lock_error(exc: BaseException) -> bool:
    return "Could not set lock on file" in str(exc)


class BigQueryClientError(WarehouseError):
    """No BigQuery client could be built (no credentials, a missing key file)."""


@dataclass(frozen=True)
class Warehouse:
    kind: Literal["duckdb", "bigquery"]
    path: Path | None = None  # duckdb file
    project: str | None = None  # bigquery project
    prefix: str | None = None  # bigquery dataset prefix
    # BigQuery: where datasets live and jobs run, and the service-account key file (None:
    # Application Default Credentials). From the settings; not part of the URL.
    bq_location: str = "US"
    bq_keyfile: str | None = None

    @classmethod
    def from_settings(cls, settings) -> Warehouse:
        """The warehouse of ``core.settings.Settings``: its URL parsed, its BigQuery location
        and key file kept for :meth:`bigquery_client`."""
        wh = parse_warehouse(settings.warehouse)
        return replace(wh, bq_location=settings.bq_location, bq_keyfile=settings.bq_keyfile)

    @property
    def is_bigquery(self) -> bool:
        return self.kind == "bigquery"

    def connect(self, read_only: bool = False, wait_seconds: float = 0.0):
        """A DuckDB connection to the file (see :func:`connect_duckdb`)."""
        return connect_duckdb(self, read_only=read_only, wait_seconds=wait_seconds)

    def bigquery_client(self):
        """A BigQuery client for the project, in the configured location, with the key file
        when one is set (else Application Default Credentials)."""
        if self.kind != "bigquery":
            raise WarehouseError(f"{self.url} is not a BigQuery warehouse")
        return make_bigquery_client(str(self.project), self.bq_location, self.bq_keyfile)

    @property
    def location(self) -> str:
        """What is opened, for messages: the DuckDB file's absolute path, or the BigQuery
        project and dataset prefix."""
        if self.kind == "duckdb":
            return str(Path(self.path).resolve())
        return f"BigQuery project {self.project}, datasets {self.prefix}_*"

    @property
    def url(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb:///{self.path}"
        return f"bigquery://{self.project}/{self.prefix}"

    def schema(self, layer: str) -> str:
        """Schema (DuckDB) or dataset (BigQuery) name of a layer."""
        if layer not in LAYERS:
            raise WarehouseError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        return layer if self.kind == "duckdb" else f"{self.prefix}_{layer}"

    def table(self, layer: str, name: str) -> str:
        """Fully qualified table name, quoted for the warehouse's dialect."""
        if self.kind == "duckdb":
            return f"{self.schema(layer)}.{name}"
        return f"`{self.project}.{self.schema(layer)}.{name}`"


def parse_warehouse(url: str) -> Warehouse:
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        if not rest.startswith("/") or rest == "/":
            raise WarehouseError(
                f"bad DuckDB URL {url!r}: write duckdb:///relative/file.duckdb "
                "or duckdb:////absolute/file.duckdb"
            )
        path = Path(rest[1:])
        return Warehouse(kind="duckdb", path=path)
    if url.startswith("bigquery://"):
        parts = url[len("bigquery://") :].strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise WarehouseError(
                f"bad BigQuery URL {url!r}: write bigquery://PROJECT/DATASET_PREFIX, "
                "e.g. bigquery://my-gcp-project/tokenbook"
            )
        return Warehouse(kind="bigquery", project=parts[0], prefix=parts[1])
    raise WarehouseError(
        f"unknown warehouse {url!r}: use duckdb:///warehouse/tokenbook.duckdb (the default) "
        "or bigquery://PROJECT/DATASET_PREFIX"
    )


def connect_duckdb(wh: Warehouse, read_only: bool = False, wait_seconds: float = 0.0):
    """Open the DuckDB file (creating its folder) with the layer schemas present.

    When another process holds the file, retry for up to ``wait_seconds`` (ingest passes the
    ``lock_wait_seconds`` setting), then raise :class:`WarehouseLocked` saying who holds it."""
    import duckdb

    from core import interrupts

    if wh.kind != "duckdb":
        raise WarehouseError(f"{wh.url} is not a DuckDB warehouse")
    assert wh.path is not None
    if wh.path.is_dir():
        raise WarehouseError(
            f"the warehouse {wh.path.resolve()} is a folder: name a file in it, e.g. "
            f"duckdb:///{wh.path / 'tokenbook.duckdb'}"
        )
    if read_only and not wh.path.exists():
        raise WarehouseError(
            f"no warehouse at {wh.path.resolve()}: nothing was loaded into it yet; run "
            "`tokenbook ingest gateway FILES` and `tokenbook transform` first (or point "
            "--warehouse / TOKENBOOK_WAREHOUSE at your warehouse)"
        )
    if not read_only:
        try:
            wh.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a folder should be, no permission, ...
            raise WarehouseError(
                f"cannot create the folder {wh.path.parent} of the warehouse: "
                f"{exc.strerror or exc}" + (f" ({exc.filename} is a file)"
                                            if isinstance(exc, FileExistsError | NotADirectoryError)
                                            else "")
                + "; point --warehouse / TOKENBOOK_WAREHOUSE at a folder you can write"
            ) from exc
    start = time.monotonic()
    while True:
        try:
            con = interrupts.track(duckdb.connect(str(wh.path), read_only=read_only))
            break
        except duckdb.IOException as exc:
            waited = time.monotonic() - start
            if "not a valid DuckDB database file" in str(exc):
                raise WarehouseError(
                    f"the warehouse {wh.path.resolve()} is not a DuckDB database file: point "
                    "--warehouse / TOKENBOOK_WAREHOUSE at a .duckdb file (a new name starts an "
                    "empty warehouse); the file was left as it is"
                ) from exc
            if not is_lock_error(exc):  # permission denied, a read-only disk, ...
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise WarehouseError(
                    f"cannot open the warehouse {wh.path.resolve()}: {first}; check the path "
                    "and that you may " + ("read" if read_only else "write") + " it"
                ) from exc
            if waited >= wait_seconds:
                raise WarehouseLocked(lock_message(wh.path, exc, waited)) from exc
            time.sleep(min(0.5, max(0.05, wait_seconds - waited)))
    if not read_only:
        for layer in LAYERS:
            con.execute(f"create schema if not exists {layer}")
    return con


def make_bigquery_client(project: str, location: str, keyfile: str | None = None):
    """A BigQuery client: the service-account key file if given, else Application Default
    Credentials. Raises :class:`BigQueryClientError` saying what to do when neither works."""
    from google.cloud import bigquery

    try:
        if keyfile:
            from google.oauth2 import service_account

            creds = service_account.Credentials.from_service_account_file(keyfile)
            return bigquery.Client(project=project, location=location, credentials=creds)
        return bigquery.Client(project=project, location=location)
    except FileNotFoundError as exc:
        raise BigQueryClientError(f"BigQuery key file not found: {keyfile}") from exc
    except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
        raise BigQueryClientError(
            f"cannot create a BigQuery client for project {project!r}: {exc}. Set "
            "TOKENBOOK_BQ_KEYFILE to a service-account key file, or run "
            "`gcloud auth application-default login`."
        ) from exc
