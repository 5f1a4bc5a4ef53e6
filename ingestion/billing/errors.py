"""The errors of a billing load, shared by the loader, the vendor parsers and the extracts."""

from __future__ import annotations

from ingestion.raw import guard


class BillingError(Exception):
    """A billing load that cannot run (bad arguments, nothing to load)."""


class BillingFileError(BillingError):
    """A file that cannot be read as a whole; the message names the file (and column)."""


class BillingLoadRefused(guard.LoadRefused, BillingError):
    """The load would shrink a loaded (vendor, date) partition or holds no valid line:
    nothing was published, the files are in raw.load_audit with status ``refused``."""
