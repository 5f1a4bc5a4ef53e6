"""Run configuration and the model version stamped on every published row."""

from __future__ import annotations

from dataclasses import dataclass, field

FORECAST_CODE_VERSION = "tb-fc-1"

# Series levels and the keys that identify a series within a level.
LEVELS: dict[str, tuple[str, ...]] = {
    "total": (),
    "provider": ("provider",),
    "provider_model": ("provider", "model"),
    "feature": ("feature",),
    "feature_segment": ("feature", "customer_segment"),
}
KEY_COLUMNS = ("provider", "model", "feature", "customer_segment")
METRICS: dict[str, str] = {"spend": "usd", "tokens": "tokens", "calls": "calls"}
# Anomalies are scored on spend for these levels.
ANOMALY_LEVELS = ("total", "provider", "feature")


def model_version(method: str, spec: str | None = None) -> str:
    """A version string naming the code, the library and the variant that made a number."""
    if method == "prophet":
        import prophet

        return f"{FORECAST_CODE_VERSION}/prophet-{prophet.__version__}/{spec or 'additive'}"
    return f"{FORECAST_CODE_VERSION}/{method}"


@dataclass(frozen=True)
class ForecastConfig:
    """Knobs of one run. Defaults suit 120-365 days of daily history."""

    horizon_months: int = 3
    # The organisation's configuration folder (events, Fermi estimates, budgets); None: the
    # one the settings resolve (TOKENBOOK_CONFIG_DIR, else ./config when it exists).
    config_dir: str | None = None
    interval_level: float = 0.8  # p10..p90
    anomaly_level: float = 0.99
    n_samples: int = 1000  # predictive sample paths per series
    backtest_cutoffs: int = 4  # early half calibrates, later half is held out
    # Backtests only need daily quantiles and 14-day sums, not month sums over 3 months:
    # fewer sample paths there (the final forecast keeps n_samples).
    backtest_samples: int = 300
    # tokens / calls ride along with spend: one calibration + one held-out cutoff each.
    cheap_metrics: tuple[str, ...] = ("tokens", "calls")
    cheap_cutoffs: int = 2
    # The second spec is not fitted when the first one's 14-day sum error on the comparison
    # cutoff is within this share of its own band half-width (0 always compares both).
    spec_skip_tolerance: float = 0.25
    backtest_horizon_days: int = 14
    backtest_period_days: int = 7
    min_prophet_days: int = 28  # shorter series get the fallback
    new_feature_days: int = 30  # features younger than this use the Fermi estimate
    specs: tuple[str, ...] = ("additive", "log")  # chosen per series by backtest MAE
    levels: tuple[str, ...] = tuple(LEVELS)
    metrics: tuple[str, ...] = tuple(METRICS)
    anomaly_min_train_days: int = 28
    anomaly_lookback_days: int | None = None  # None: output every day that has enough training
    # Materiality: a flag needs |actual - expected| >= this share of the total's trailing
    # 28-day mean daily spend (0 disables).
    anomaly_min_impact_share: float = 0.01
    # Monthly competition (forecasting/monthly.py): next month's sum backtested at up to
    # monthly_origins origins (month ends when >= monthly_min_month_ends exist, else weekly with
    # a 30-day window); fewer than monthly_min_origins -> "too short", the fallback publishes.
    monthly_metrics: tuple[str, ...] = ("spend",)
    monthly_origins: int = 3  # each is a Prophet fit per spend series (the bench's budget)
    monthly_min_origins: int = 3
    monthly_min_month_ends: int = 4
    monthly_min_train_days: int = 28
    # A method other than the run-rate is published only when its median absolute % error is
    # at least this share lower than the run-rate's and it is closer at 3/4 of the origins.
    monthly_margin: float = 0.1
    # Conformal scores of one level and horizon are pooled with the other levels below this.
    monthly_min_pool: int = 20
    # Log half-width of the band when no backtest exists anywhere (x/ 1.42): wide on purpose.
    too_short_log_halfwidth: float = 0.35
    workers: int = 2
    seed: int = 7
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("interval_level", "anomaly_level"):
            v = getattr(self, name)
            if not 0.5 <= v < 1:
                raise ValueError(f"{name}={v} must lie in [0.5, 1): it is a central interval level")
        if self.backtest_cutoffs < 2 or self.cheap_cutoffs < 2:
            raise ValueError(
                "backtest_cutoffs must be >= 2: early cutoffs calibrate, later ones are held out"
            )
        unknown = set(self.levels) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown series levels {sorted(unknown)}; choose from {list(LEVELS)}")
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {list(METRICS)}")
