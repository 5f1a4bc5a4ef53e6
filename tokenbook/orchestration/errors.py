"""What a step raises when it cannot run for its date; the message says what to do."""

from __future__ import annotations

from ingestion.quality_thresholds import ThresholdsError
from ingestion.raw.guard import LoadRefused
from tokenbook.orgconfig import ConfigInvalid


class OrchestrationError(RuntimeError):
    """A step cannot run for its date; the message says what is missing and what to do."""


class MissingInput(OrchestrationError):
    """The date's input files are not where the settings say."""


class StepUnavailable(OrchestrationError):
    """The code a step calls is not part of this installation (a module or function absent).

    The DAG fails such a task with this message (a broken installation is never skipped).
    """


class QualityGateFailed(OrchestrationError):
    """The loaded partition violated a data-quality expectation; the models must not build."""


# Failures a retry cannot fix (the same input is refused again, the same data fails the same
# expectations, the same thresholds file is invalid again): the DAG fails the task at once.
NOT_RETRYABLE: tuple[type[Exception], ...] = (
    LoadRefused,
    ConfigInvalid,
    ThresholdsError,
    QualityGateFailed,
)
