"""Settings: flags, then environment variables, then defaults.

Every setting has one environment variable ``TOKENBOOK_<NAME>``. Commands pass the flags
they were given as keyword overrides; ``None`` means "not given on the command line".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_WAREHOUSE = "duckdb:///warehouse/tokenbook.duckdb"
DEFAULT_CONFIG_DIR = "config"
# A fixed development key: fine for the demo and the tests, never for real data (anyone can
# read it here, so its pseudonyms can be reversed by hashing candidate ids). Every path that
# pseudonymises refuses it unless `allow_dev_key` is set (the demo and the tests set it).
DEV_PII_KEY = "tokenbook-dev-key-change-me"

DEV_KEY_REFUSED = (
    "refusing to pseudonymise customer ids with the development PII key: it is public (in the "
    "tokenbook repository), so its pseudonyms can be reversed by hashing candidate ids. Set "
    "TOKENBOOK_PII_KEY to a secret of your own (e.g. `export TOKENBOOK_PII_KEY=\"$(openssl rand "
    "-hex 32)\"`, kept in your secret manager), or TOKENBOOK_PII_KEY_FILE to a file holding it; "
    "under Airflow set either in the workers' environment. Keep the key: a new key gives every "
    "customer a new pseudonym (README, 'Changing the PII key'). Only the demo and the tests "
    "use the development key, and say so with TOKENBOOK_ALLOW_DEV_KEY=1."
)


class DevKeyRefused(ValueError):
    """A pseudonymising path was asked to run with the development PII key."""


@dataclass(frozen=True)
class Settings:
    warehouse: str = DEFAULT_WAREHOUSE
    pii_key: str = DEV_PII_KEY
    # A file holding the key (one line), read when TOKENBOOK_PII_KEY is not given.
    pii_key_file: str | None = None
    # Opt-in to the development key: the demo and the tests only (TOKENBOOK_ALLOW_DEV_KEY=1).
    allow_dev_key: bool = False
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
    # How long an ingest waits for another process's lock on the DuckDB warehouse file.
    lock_wait_seconds: float = 30.0
    # The organisation's configuration folder (tokenbook init / config check); None: ./config
    # under the working directory when it exists, else nothing configured.
    config_dir: str | None = None
    # Currency billing lines are also converted to (ISO 4217) with the rates of `tokenbook fx
    # load`; the ledger and the reconciliation stay in USD.
    reporting_currency: str = "USD"

    @property
    def is_dev_key(self) -> bool:
        return self.pii_key == DEV_PII_KEY and not self.pii_key_file

    def require_pii_key(self) -> str:
        """The pseudonymisation key: ``pii_key`` when given, else the content of
        ``pii_key_file`` (read here, on use: loading the settings -- the DAG file does it at
        parse time -- never reads a secret), else :class:`DevKeyRefused` unless the development
        key was explicitly allowed. A key file that cannot be read raises ValueError."""
        if self.pii_key == DEV_PII_KEY and self.pii_key_file:
            return _read_key_file(self.pii_key_file)
        if self.is_dev_key and not self.allow_dev_key:
            raise DevKeyRefused(DEV_KEY_REFUSED)
        return self.pii_key

    @property
    def resolved_config_dir(self) -> Path | None:
        """The configuration folder in use: ``config_dir`` (flag / TOKENBOOK_CONFIG_DIR), else
        ``./config`` when it exists, else None (nothing configured)."""
        if self.config_dir:
            return Path(self.config_dir)
        default = Path.cwd() / DEFAULT_CONFIG_DIR
        return default if default.is_dir() else None


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_flag(value: str, name: str, advice: str = "write 1 or 0 (or true/false)") -> bool:
    """A yes/no environment variable ``name``: 1/true/yes/on or 0/false/no/off, any case; any
    other text is a ValueError naming the variable and ``advice`` (never quietly false)."""
    text = value.strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{name}={value!r} is not a yes/no value: {advice}")


def _coerce(value: str, like: object, name: str = "") -> object:
    """``value`` (an environment variable ``name``) as the type of the default ``like``; a
    ValueError naming the variable when it is not one (never quietly the default)."""
    text = value.strip()
    if isinstance(like, bool):
        return parse_flag(value, name)
    try:
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError as exc:
        kind = "a whole number" if isinstance(like, int) else "a number"
        raise ValueError(f"{name}={value!r} is not {kind}: write e.g. {name}={like} "
                         "(no unit, no % sign)") from exc
    return value


def load_settings(**overrides: object) -> Settings:
    """Build settings: explicit overrides (flags) > TOKENBOOK_* env vars > defaults."""
    base = Settings()
    values: dict[str, object] = {}
    for f in fields(Settings):
        name = f"TOKENBOOK_{f.name.upper()}"
        env = os.environ.get(name)
        if env is not None and env != "":
            values[f.name] = _coerce(env, getattr(base, f.name), name)
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(base, **values)


def _read_key_file(path: str) -> str:
    try:
        key = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"TOKENBOOK_PII_KEY_FILE {path}: cannot read the key ({exc})") from exc
    if not key:
        raise ValueError(f"TOKENBOOK_PII_KEY_FILE {path} is empty")
    return key


def project_root() -> Path:
    """The repository root (where dbt_project/ lives)."""
    return Path(__file__).resolve().parent.parent
