"""Prophet forecasts with calibrated intervals, monthly p10/p50/p90 from sample paths, and
anomaly flags (see forecasting/README.md).

Entry points: ``forecasting.pipeline.forecast_frame`` (pure, one long frame in),
``forecasting.job.forecast_warehouse`` and ``forecasting.job.score_day_warehouse`` (read
``fct_llm_calls``, write the four forecast tables). Heavy imports (prophet) happen inside.
"""
