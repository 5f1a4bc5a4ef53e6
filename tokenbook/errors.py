"""What a user can cause, told in one sentence with its exit code.

:func:`explain` maps an exception (and its causes) to ``(exit code, sentence)``, or None for a
bug. The CLI's error handler (``tokenbook/cli.py``) and the commands that report a refused
input themselves use it, so every command says the same thing about the same mistake.
:func:`describe_failure` is the line ``tokenbook run`` prints for a step that failed.
"""

from __future__ import annotations

from core.warehouse import WarehouseError, is_lock_error, lock_message
from tokenbook import exitcodes

BIGQUERY_CREDENTIALS = (
    "no BigQuery credentials: set TOKENBOOK_BQ_KEYFILE to a service-account key file, or run "
    "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS); "
    "nothing was read or written"
)


def _chain(exc: BaseException):
    """The exception and its causes, outermost first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C: Python's KeyboardInterrupt, or DuckDB's translation of the
    SIGINT that arrived while a statement ran (``RuntimeError: Query interrupted``, or
    ``duckdb.InterruptException``), which would otherwise read as a bug (exit 70)."""
    for e in _chain(exc):
        if isinstance(e, KeyboardInterrupt) or type(e).__name__ == "InterruptException":
            return True
        if type(e) is RuntimeError and str(e).strip() == "Query interrupted":
            return True
    return False


def explain(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, sentence) for an error a user can cause, or None for a bug."""
    chain = list(_chain(exc))
    names = {type(e).__name__ for e in chain}
    if names & {"DefaultCredentialsError", "RefreshError"} or any(
        "cannot create a BigQuery client" in str(e) for e in chain
    ):
        return exitcodes.CONFIG_INVALID, BIGQUERY_CREDENTIALS
    for e in chain:  # a setting to fix (the development PII key outside the demo, a
        # quality_thresholds.csv that cannot be read or cannot work)
        if type(e).__name__ in ("DevKeyRefused", "ThresholdsError"):
            return exitcodes.CONFIG_INVALID, str(e)
    for e in chain:  # our own sentence first (it says how long ingest waited)
        if isinstance(e, WarehouseError):
            return exitcodes.INPUT_REFUSED, str(e)
    for e in chain:
        if is_lock_error(e):
            return exitcodes.INPUT_REFUSED, lock_message(_locked_path(e), e)
    refused = {
        "ReaderError", "IngestError", "LoadRefused", "BillingError", "BillingFileError",
        "BillingLoadRefused", "EvalsError", "EvalsFileError", "EvalsLoadRefused", "SniffError",
        "BigQueryLoadError", "NothingLoaded",
    }  # fmt: skip
    for e in chain:
        if isinstance(e, WarehouseError) or type(e).__name__ in refused:
            return exitcodes.INPUT_REFUSED, str(e)
    for e in chain:  # a path the user gave that cannot be read or written
        if isinstance(e, OSError) and getattr(e, "filename", None):
            return exitcodes.INPUT_REFUSED, f"{e.strerror or e}: {e.filename}"
    for e in chain:
        if type(e).__name__ in ("BadGzipFile", "error") and "compress" in str(e).lower():
            return exitcodes.INPUT_REFUSED, f"a compressed input file is damaged: {e}"
    return None


def describe_failure(exc: BaseException) -> str:
    """One line for a person: what failed and, where we know it, what to do."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    hints = {
        "DbtError": "see the dbt log above; `tokenbook transform` reruns just this step",
        "QualityGateFailed": "the loaded data does not look like its history; "
        "see raw.validation_results, or rerun `tokenbook check --date D`",
        "ReaderError": "check the file named above exists and is readable",
    }
    hint = hints.get(name)
    return f"{text}" + (f" ({hint})" if hint else "")


def _locked_path(exc: BaseException) -> str:
    text = str(exc)
    start = text.find('file "')
    return text[start + 6 : text.find('"', start + 6)] if start >= 0 else "(the warehouse)"
