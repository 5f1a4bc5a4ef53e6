"""Remote input files, downloaded so a loader reads them as local files.

``fetch_gcs(uri, dest_dir)`` downloads ``gs://`` inputs: one object, a prefix ending in ``/``
(every object under it) or a ``*`` pattern, one request per object (never per record). The
gateway load (``ingest gateway gs://...``) calls it for every ``gs://`` argument and records
``gs://bucket/object`` as the rows' ``source_file``. A failure raises ``BigQueryLoadError``
(what the ingest commands report as a refused input, exit 1), naming the URI.

A new kind of remote input (``s3://``, ``https://``) goes here, beside ``fetch_gcs``, with the
same contract: a list of local files in name order, or an error naming what matched nothing.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from ingestion.raw.sinks.bigquery import BigQueryLoadError


class NoObjectMatches(BigQueryLoadError):
    """Nothing in the bucket matches the URI (a delivery not landed, or a quiet day's)."""


def _storage():
    try:
        from google.cloud import storage
    except ImportError as exc:  # not a dependency of every install
        raise BigQueryLoadError(
            "reading gs:// inputs needs the google-cloud-storage package: "
            "pip install google-cloud-storage (it comes with dbt-bigquery)"
        ) from exc
    return storage


def fetch_gcs(uri: str, dest_dir: Path, client=None) -> list[Path]:
    """Download ``gs://bucket/path`` (one object), ``gs://bucket/prefix/`` (every object under
    it) or ``gs://bucket/prefix/*.jsonl.gz`` (a pattern) into ``dest_dir``; returns the local
    files in name order. Raises NoObjectMatches (a BigQueryLoadError) when nothing matches."""
    if not uri.startswith("gs://"):
        raise BigQueryLoadError(f"not a gs:// URI: {uri}")
    bucket_name, _, key = uri[len("gs://") :].partition("/")
    if not bucket_name:
        raise BigQueryLoadError(f"gs:// URI without a bucket: {uri}")
    if client is None:
        client = _storage().Client()
    pattern = key if any(c in key for c in "*?[") else None
    prefix = key.split("*")[0].split("?")[0].split("[")[0] if pattern else key
    blobs = sorted(client.list_blobs(bucket_name, prefix=prefix), key=lambda b: b.name)
    if pattern:
        blobs = [b for b in blobs if fnmatch.fnmatchcase(b.name, pattern)]
    elif key and not key.endswith("/"):
        blobs = [b for b in blobs if b.name == key]
    blobs = [b for b in blobs if not b.name.endswith("/")]
    if not blobs:
        raise NoObjectMatches(f"no object matches {uri}")
    dest_dir = Path(dest_dir)
    out = []
    for blob in blobs:  # one download per file, not per record
        local = dest_dir / bucket_name / blob.name
        local.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(local))
        out.append(local)
    return out
