"""Settings: flags, then environment variables, then defaults.

Every setting has one environment variable ``TOKENBOOK_<NAME>``. Commands pass the flags
they were given as keyword overrides; ``None`` means "not given on the command line".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_WAREHOUSE = "duckdb:///warehouse/tokenbook.duckdb"
# A fixed development key: fine for the demo, never for production. `tokenbook` warns
# when a non-duckdb warehouse runs with it.
DEV_PII_KEY = "tokenbook-dev-key-change-me"


@dataclass(frozen=True)
class Settings:
    warehouse: str = DEFAULT_WAREHOUSE
    pii_key: str = DEV_PII_KEY
    # Ingestion window around the run's logical date: [date - before, date + after).
    window_days_before: int = 7
    window_days_after: int = 1
    # Where dbt writes target/ and logs/ (kept out of the source tree in tests).
    dbt_target_path: str | None = None
    # BigQuery: location of datasets and jobs, and the service-account key file if any.
    bq_location: str = "US"
    bq_keyfile: str | None = None
    # Reconciliation: variance above this share is flagged.
    variance_threshold: float = 0.02
    # Anomaly interval level.
    anomaly_level: float = 0.99
    # Currency billing lines are also converted to (ISO 4217) with the rates of `tokenbook fx
    # load`; the ledger and the reconciliation stay in USD.
    reporting_currency: str = "USD"

    @property
    def is_dev_key(self) -> bool:
        return self.pii_key == DEV_PII_KEY


def _coerce(value: str, like: object) -> object:
    if isinstance(like, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return value


def load_settings(**overrides: object) -> Settings:
    """Build settings: explicit overrides (flags) > TOKENBOOK_* env vars > defaults."""
    base = Settings()
    values: dict[str, object] = {}
    for f in fields(Settings):
        env = os.environ.get(f"TOKENBOOK_{f.name.upper()}")
        if env is not None and env != "":
            values[f.name] = _coerce(env, getattr(base, f.name))
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(base, **values)


def project_root() -> Path:
    """The repository root (where dbt_project/ lives)."""
    return Path(__file__).resolve().parent.parent
