"""Prophet forecasts with calibrated intervals, monthly p10/p50/p90 from sample paths, and
anomaly flags (see forecasting/README.md).

Entry points: ``forecasting.pipeline.forecast_frame`` (pure, one long frame in),
``forecasting.job.forecast_warehouse`` and ``forecasting.job.score_day_warehouse`` (read
``fct_llm_calls``, write the four forecast tables). Heavy imports (prophet) happen inside.
"""

import logging as _logging

# prophet/plot.py logs "ERROR:prophet.plot:Importing plotly failed" on import (plotly is not
# needed: charts use matplotlib). Silence it before anything imports prophet; forked workers
# inherit the setting.
for _name in ("prophet.plot", "prophet"):
    _logging.getLogger(_name).setLevel(_logging.CRITICAL)
