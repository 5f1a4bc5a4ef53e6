"""The report's SQL machinery: a :class:`Query` is SQL over the marts with ``{table}``
placeholders (``{fct_llm_calls}``, ``{mart_chargeback}``, ...) and date placeholders
(``{month}``, ``{prev_month}``, ...) that :func:`render_sql` fills from a :class:`Period`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

# How many ISO weeks of trend the feature section shows, ending with the report month.
TREND_WEEKS = 8
# Days of actual daily spend drawn before the forecast in the fan chart.
FAN_HISTORY_DAYS = 90


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """The dates every query is written against (all derived from the data, never the clock)."""

    month: date  # first day of the report month
    data_end: date  # latest call date in the ledger
    forecast_as_of: date | None  # latest forecast run, if any
    anomaly_as_of: date | None

    @property
    def prev_month(self) -> date:
        return (self.month - timedelta(days=1)).replace(day=1)

    @property
    def next_month(self) -> date:
        return (self.month + timedelta(days=32)).replace(day=1)

    @property
    def month_end(self) -> date:
        return self.next_month - timedelta(days=1)

    @property
    def trend_from(self) -> date:
        """Monday of the first of the TREND_WEEKS weeks ending with the month's last week."""
        last_monday = self.month_end - timedelta(days=self.month_end.weekday())
        return last_monday - timedelta(weeks=TREND_WEEKS - 1)

    @property
    def last_week(self) -> date:
        return self.month_end - timedelta(days=self.month_end.weekday())

    @property
    def fan_to(self) -> date:
        """Last day of the month after the data's last month: the fan chart's horizon."""
        first = (self.data_end.replace(day=1) + timedelta(days=32)).replace(day=1)
        return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)

    @property
    def fan_from(self) -> date:
        return self.data_end - timedelta(days=FAN_HISTORY_DAYS - 1)

    def literals(self) -> dict[str, str]:
        def lit(d: date | None) -> str:
            return "null" if d is None else f"date '{d.isoformat()}'"

        return {
            "month": lit(self.month),
            "prev_month": lit(self.prev_month),
            "next_month": lit(self.next_month),
            "month_end": lit(self.month_end),
            "trend_from": lit(self.trend_from),
            "last_week": lit(self.last_week),
            "data_end": lit(self.data_end),
            "fan_from": lit(self.fan_from),
            "fan_to": lit(self.fan_to),
            "forecast_as_of": lit(self.forecast_as_of),
            "anomaly_as_of": lit(self.anomaly_as_of),
        }


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_sql(query: Query, period: Period, table_name) -> str:
    """Fill the placeholders: dates from ``period``; any other name is a marts table,
    qualified by ``table_name(name)`` (e.g. ``Warehouse.table('marts', name)`` partially)."""
    dates = period.literals()

    def fill(m: re.Match) -> str:
        key = m.group(1)
        return dates[key] if key in dates else table_name(key)

    return _PLACEHOLDER.sub(fill, query.sql)
