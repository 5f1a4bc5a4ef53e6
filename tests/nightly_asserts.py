"""Shared by the quiet-day tests: what a nightly run whose gateway file never came must do."""

from __future__ import annotations

from datetime import date

import pytest

from tokenbook import orchestration as orch


def night_fails_for_a_lost_file(day: date, settings, inputs) -> None:
    """No file for ``day``: ingest raises MissingInput, the check fails freshness, and the
    gate fails for want of a load."""
    with pytest.raises(orch.MissingInput, match=f"no gateway file for {day}"):
        orch.ingest_gateway_day(day, settings, inputs)
    with pytest.raises(orch.QualityGateFailed, match="gateway_freshness: rows_loaded = 0"):
        orch.check_data_quality(day, settings)
    with pytest.raises(orch.QualityGateFailed, match="no gateway load recorded"):
        orch.check_quality(day, settings)


def night_passes_on_a_quiet_day(day: date, settings, inputs, reason: str) -> None:
    """No file for a quiet ``day``: ingest is skipped with ``reason`` (the DAG marks the task
    skipped), the suites still run and store results, and the gate passes it as quiet."""
    loaded = orch.ingest_gateway_day(day, settings, inputs)
    assert loaded["skipped"] is True
    assert reason in loaded["reason"], loaded["reason"]
    assert orch.check_data_quality(day, settings)["expectations"] > 0
    gate = orch.check_quality(day, settings)
    assert gate["quiet_day"] is True and gate["expectations"] > 0
