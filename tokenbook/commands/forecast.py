"""`tokenbook forecast`: monthly forecasts, backtests and anomaly flags (owner: forecasting)."""

from __future__ import annotations


def forecast() -> None:
    """Fit forecasts and score anomalies (not built yet)."""
    raise NotImplementedError("forecast is being built")
