"""Data-quality suites over loaded partitions, compared with their own history (``tokenbook check``).

This is a step of its own, after ingestion and before dbt: ``ingest`` never imports Great
Expectations. For each checked date D it answers "does D look like the days before it?":

1. profile (warehouse SQL, in ``quality_sql.py`` with the metrics and the model resolution; one
   aggregate per raw table over ``[first - history_days, last]``):
   per load date the calls, calls without ``feature`` / ``customer_segment``, non-null counts
   per column, tokens and gateway cost; the keys of ``extra`` (fields the load kept that are
   not native: see ``gateway/native.py``'s line pass) per date; (provider, model) pairs per
   date; the latest load's audit per date; billing lines per vendor and usage date; gateway
   cost per call date. On BigQuery these queries run there and only the small aggregates come
   back into a local DuckDB; on DuckDB they run in the warehouse.
2. metrics (DuckDB SQL over the profiles): one row per checked date with each metric as a
   ratio or a difference against the history, so that every threshold is a constant
   (``quality_thresholds.py``). A metric without enough history is NULL: *not evaluable*.
3. Great Expectations: one suite per concern (see :data:`CHECKS`), each expectation a
   ``ExpectColumnValuesToBeBetween`` on one metric column, all run by one checkpoint over
   the frame (one row per date); the unexpected row indices say which dates failed.
4. results: one row per (date, suite, expectation) in ``raw.validation_results`` with the
   observed value, the bounds and what to look at; a rerun of a date replaces all its rows
   (DuckDB: one transaction; BigQuery: one WRITE_TRUNCATE load job per date partition).

A result whose metric is NULL has ``success`` NULL and says why in ``observed_value``
("not evaluable: ..."): it does not fail the gate, and it is never a silent pass.
The gate (``ingestion/quality_gate.py``) fails on a failed expectation, and on a suite that should
have run for a date but has no result row.

The pipeline's own invariants (rows read = loaded + quarantined + duplicates, ids unique
within a load) are not expectations here: the load enforces them and records them in
raw.load_audit, and dbt tests the keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb

from core.warehouse import Warehouse, connect_duckdb
from ingestion.billing.schema import BILLING_LINES_COLUMNS
from ingestion.quality_sql import (  # noqa: F401 - re-exported: the check's SQL
    NULL_RATE_COLUMNS,
    PRESENCE_COLUMNS,
    PRICE_BOOK_QUERIES,
    RESOLUTION_SQL,
    _metrics_sql,
    profile_queries,
)
from ingestion.quality_thresholds import load_thresholds, validate
from ingestion.raw.schema import VALIDATION_RESULTS_COLUMNS, duckdb_ddl
from ingestion.raw.sinks.bigquery import BigQuerySink
from ingestion.raw.sinks.duckdb import DuckDBSink, ensure_raw_tables

RESULTS_TABLE = "_tb_validation"
CHECKPOINT = "tokenbook_check"

@dataclass(frozen=True)
class Check:
    """One expectation: ``metric`` between ``low`` and ``high`` (threshold names, numbers or
    None for no bound)."""

    suite: str
    metric: str
    low: str | float | None
    high: str | float | None
    look_at: str


CHECKS: tuple[Check, ...] = (
    Check("gateway_freshness", "rows_loaded", 1, None,
          "no gateway record was loaded for this date: did the export run and land where "
          "the nightly looks (TOKENBOOK_GATEWAY_PATH)? raw.load_audit lists what was loaded"),
    Check("gateway_volume", "volume_ratio", "volume_ratio_min", "volume_ratio_max",
          "calls against the same weekday's median: an exporter that died or ran twice, a "
          "partial file; compare raw.load_audit rows_read with the days before"),
    Check("gateway_attribution", "missing_feature_increase", None,
          "missing_feature_increase_max",
          "more calls than usual arrive without `feature`: a release that stopped tagging, "
          "a renamed tag (see gateway_schema); group raw.gateway_calls by source_file"),
    Check("gateway_attribution", "missing_segment_increase", None,
          "missing_segment_increase_max",
          "more calls than usual arrive without `customer_segment`: a release that stopped "
          "tagging, a renamed tag (see gateway_schema)"),
    Check("gateway_pricing", "unpriced_share_increase", None, "unpriced_share_increase_max",
          "calls whose (provider, model) the price book cannot resolve (observed names the "
          "date's, most calls first): map your deployment name to a priced model in "
          "model_aliases.csv of the configuration folder, or load a price book that has it "
          "(`tokenbook prices load`), then `tokenbook transform`; marts.mart_unpriced_calls "
          "lists them"),
    Check("gateway_load", "quarantine_share", None, "quarantine_share_max",
          "records rejected by the load: raw.quarantine has each with its reason"),
    Check("gateway_load", "duplicate_share", None, "duplicate_share_max",
          "repeated request_id within the load: a file delivered twice, or a gateway that "
          "re-sends; raw.load_audit rows_duplicate per file"),
    Check("gateway_load", "redelivered_share", None, "redelivered_share_max",
          "records whose request_id an earlier load date already brought (observed names "
          "it): an exporter that re-sent an earlier day's file with this one, or export windows "
          "that overlap; staging keeps one copy, but this date's volume and shares count them. "
          "raw.gateway_calls of this date, grouped by source_file, says which file"),
    *(
        Check("gateway_nulls", f"null_rate_increase__{c}", None, "null_rate_increase_max",
              f"`{c}` is null more often than usual: a field no longer sent or renamed")
        for c in NULL_RATE_COLUMNS
    ),
    Check("gateway_schema", "new_fields", None, "new_fields_max",
          "fields never seen in the history arrived (kept in raw.gateway_calls.extra): a "
          "field renamed upstream, or a new one to map; observed lists them"),
    Check("gateway_schema", "vanished_fields", None, "vanished_fields_max",
          "fields sent on most days of the history are absent: observed lists them"),
    Check("gateway_unit_cost", "tokens_per_call_ratio", "tokens_per_call_ratio_min",
          "tokens_per_call_ratio_max",
          "tokens per call against their median: a prompt change, a runaway loop, or token "
          "counts in another unit"),
    Check("gateway_unit_cost", "cost_per_call_ratio", "cost_per_call_ratio_min",
          "cost_per_call_ratio_max",
          "the gateway's cost per call against its median: a model switch or a price change"),
    Check("billing_coverage", "billing_vendors_missing", None, "billing_vendors_missing_max",
          "a vendor that bills most days, and on this weekday, has no line for this usage "
          "date: its export or API pull failed; observed lists the vendors"),
    Check("billing_totals", "billing_ratio_change", None, "billing_ratio_change_max",
          "billed cost against the gateway's cost for the day moved from its usual ratio: "
          "unlogged traffic, a missing gateway, or a billing restatement"),
)
GATEWAY_SUITES: tuple[str, ...] = tuple(
    dict.fromkeys(c.suite for c in CHECKS if c.suite.startswith("gateway_"))
)
BILLING_SUITES: tuple[str, ...] = tuple(
    dict.fromkeys(c.suite for c in CHECKS if c.suite.startswith("billing_"))
)


@dataclass(frozen=True)
class Outcome:
    load_date: date
    suite: str
    expectation: str
    column_name: str
    parameters: str
    success: bool | None  # None: not evaluable
    element_count: int | None
    unexpected_count: int | None
    observed_value: str | None
    min_value: float | None
    max_value: float | None
    look_at: str
    load_id: str | None = None  # the date's latest gateway load, as the check read it


@dataclass
class CheckResult:
    dates: list[date]
    outcomes: list[Outcome] = field(default_factory=list)
    suites_expected: dict[date, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures() and not self.missing_suites()

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is False]

    def not_evaluable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is None]

    def missing_suites(self) -> list[tuple[date, str]]:
        ran = {(o.load_date, o.suite) for o in self.outcomes}
        return [(d, s) for d, suites in sorted(self.suites_expected.items())
                for s in suites if (d, s) not in ran]

    def failure_lines(self) -> list[str]:
        lines = [describe(o) for o in self.failures()]
        lines += [f"{d}: suite {s} has no results (it should have run): rerun "
                  f"`tokenbook check --date {d}`" for d, s in self.missing_suites()]
        return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def describe(o: Outcome) -> str:
    """One line for a person: date, suite, metric, observed, expected range, what to look at."""
    if o.min_value is not None and o.max_value is not None:
        bounds = f"[{_fmt(o.min_value)}, {_fmt(o.max_value)}]"
    elif o.min_value is not None:
        bounds = f">= {_fmt(o.min_value)}"
    else:
        bounds = f"<= {_fmt(o.max_value)}"
    return (f"{o.load_date} {o.suite}: {o.column_name} = {o.observed_value}, expected "
            f"{bounds}; look at: {o.look_at}")


# --------------------------------------------------------------------------- GX


class _Suites:
    """GX context, one suite per concern, one checkpoint over all of them."""

    def __init__(self, thresholds: dict[str, float]) -> None:
        for name in ("great_expectations", "great_expectations.core", "py.warnings"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from ingestion.gx_import import import_gx

        gx = import_gx()
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.ctx = ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = ctx.data_sources.add_pandas("tokenbook_partitions").add_dataframe_asset(
            "daily_metrics").add_batch_definition_whole_dataframe("dates")
        self.by_suite: dict[str, list[Check]] = {}
        for c in CHECKS:
            self.by_suite.setdefault(c.suite, []).append(c)
        validations = []
        for suite, checks in self.by_suite.items():
            exps = [
                gxe.ExpectColumnValuesToBeBetween(
                    column=c.metric, min_value=_bound(c.low, thresholds),
                    max_value=_bound(c.high, thresholds))
                for c in checks
            ]
            s = ctx.suites.add(gx.ExpectationSuite(name=suite, expectations=exps))
            validations.append(ctx.validation_definitions.add(
                gx.ValidationDefinition(name=suite, data=batch, suite=s)))
        self.checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name=CHECKPOINT, validation_definitions=validations,
            result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True,
                           "return_unexpected_index_query": False}))

    def run(self, frame) -> dict[tuple[str, str], tuple[bool, set[int]]]:
        """(suite, metric) -> (GX's verdict, row positions GX found outside the bounds)."""
        result = self.checkpoint.run(batch_parameters={"dataframe": frame})
        out = {}
        for vr in result.run_results.values():
            suite = vr.suite_name
            for r in vr.results:
                column = r.expectation_config.kwargs["column"]
                rows = set((r.result or {}).get("unexpected_index_list") or [])
                out[(suite, column)] = (bool(r.success), rows)
        return out


def _bound(value: str | float | None, thresholds: dict[str, float]) -> float | None:
    if value is None:
        return None
    return thresholds[value] if isinstance(value, str) else float(value)


# --------------------------------------------------------------------------- the run


def _tables_exist(con, names: list[str]) -> bool:
    for name in names:
        schema, _, table = name.rpartition(".")
        row = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?", [schema, table]).fetchall()[0]
        if not row[0]:
            return False
    return True


def profile_duckdb(con, lo: date, hi: date, schema: str = "raw",
                   staging: str = "staging", checked_from: date | None = None) -> bool:
    """Profile tables in TEMP tables of the warehouse connection ``con``; returns whether the
    price book (dbt's staging.int_price_book and alias seeds) is there to resolve models."""
    ensure_raw_tables(con, schema)
    con.execute(duckdb_ddl(f"{schema}.billing_lines", BILLING_LINES_COLUMNS))
    tables = {n: f"{schema}.{n}" for n in ("gateway_calls", "load_audit", "billing_lines")}
    for name, sql in profile_queries(tables, lo, hi, checked_from=checked_from).items():
        con.execute(f"create or replace temp table {name} as {sql}")
    book = {"int_price_book": f"{staging}.int_price_book",
            "model_aliases": f"{staging}.model_aliases",
            "provider_aliases": f"{staging}.provider_aliases"}
    if not _tables_exist(con, list(book.values())):
        return False
    for name, sql in PRICE_BOOK_QUERIES.items():
        con.execute(f"create or replace temp table {name} as {sql.format(**book)}")
    return True


def _load_arrow(con, name: str, arrow) -> None:
    """TEMP table ``name`` on the local DuckDB ``con`` from an Arrow table."""
    con.register(f"{name}_arrow", arrow)
    con.execute(f"create or replace temp table {name} as select * from {name}_arrow").fetchall()
    con.unregister(f"{name}_arrow")


class NothingLoaded(RuntimeError):
    """``tokenbook check`` on a BigQuery warehouse where no load has created the raw tables:
    the user's order of commands, not a bug (exit 1 with what to run)."""


def profile_bigquery(client, wh, con, lo: date, hi: date, checked_from: date | None = None
                     ) -> bool:
    """The same profile tables, computed by BigQuery and loaded into the local DuckDB ``con``
    (aggregates only: a few rows per date). Returns whether the price book is there."""
    from google.api_core.exceptions import NotFound

    tables = {n: wh.table("raw", n) for n in ("gateway_calls", "load_audit", "billing_lines")}
    for name, sql in profile_queries(tables, lo, hi, bigquery=True,
                                     checked_from=checked_from).items():
        try:
            arrow = client.query(sql).result().to_arrow()
        except NotFound as exc:
            raise NothingLoaded(
                f"nothing to check in {wh.location}: {name} cannot be read ({exc}); load the "
                "dates first with `tokenbook ingest gateway`"
            ) from exc
        _load_arrow(con, name, arrow)
    book = {"int_price_book": wh.table("staging", "int_price_book"),
            "model_aliases": wh.table("staging", "model_aliases"),
            "provider_aliases": wh.table("staging", "provider_aliases")}
    for name, sql in PRICE_BOOK_QUERIES.items():
        try:
            arrow = client.query(sql.format(**book)).result().to_arrow()
        except NotFound:
            return False
        _load_arrow(con, name, arrow)
    return True


def evaluate(con, dates: Iterable[date], thresholds: dict[str, float], priced: bool
             ) -> CheckResult:
    """Metrics from the profile tables on ``con``, the GX suites over them, the outcomes."""
    dates = sorted(set(dates))
    result = CheckResult(dates=dates)
    if not dates:
        return result
    if priced:
        con.execute(f"create or replace temp table _q_resolved as {RESOLUTION_SQL}")
    else:
        result.notes.append(
            "the price book (dbt's int_price_book) is not in the warehouse yet: the unpriced "
            "share is not evaluable until `tokenbook transform` has run once")
    frame = con.sql(_metrics_sql(dates, thresholds, priced)).df()
    billing = bool(con.execute("select count(*) from _q_bill").fetchall()[0][0])
    if not billing:  # a gateway-only organisation: said, so a stopped billing pull is seen
        result.notes.append(
            f"no billing line with a usage date in the {int(thresholds['history_days'])} days "
            f"before {dates[0]} or on the dates checked: the billing suites "
            f"({', '.join(BILLING_SUITES)}) did not run, the gateway was checked alone; load "
            "the vendors' exports with `tokenbook ingest billing` to check them too")
    for i, d in enumerate(dates):
        result.suites_expected[d] = GATEWAY_SUITES + (BILLING_SUITES if billing else ())
        if bool(frame.at[i, "declared_closed"]):  # said, not only counted as not evaluable
            result.notes.append(
                f"{d} is a {d:%A}, a declared closed day of this organisation (closed_weekdays "
                "in quality_thresholds.csv): nothing was loaded and none was expected, the "
                "gateway suites are not evaluable for it")
    metrics = [c.metric for c in CHECKS]
    frame = frame.reset_index(drop=True)
    gx_frame = frame[metrics].astype("float64")
    verdicts = _Suites(thresholds).run(gx_frame)
    for c in CHECKS:
        if c.suite in BILLING_SUITES and not billing:
            continue
        ok, bad_rows = verdicts[(c.suite, c.metric)]
        low, high = _bound(c.low, thresholds), _bound(c.high, thresholds)
        params = json.dumps({"column": c.metric, "min_value": low, "max_value": high},
                            sort_keys=True)
        for i, d in enumerate(dates):
            value = gx_frame.at[i, c.metric]
            evaluable = bool(value == value)  # NaN (NULL) is not evaluable
            success = (i not in bad_rows) if evaluable else None
            result.outcomes.append(Outcome(
                load_date=d, suite=c.suite, expectation="expect_column_values_to_be_between",
                column_name=c.metric, parameters=params, success=success,
                element_count=int(frame.at[i, "calls"]),
                unexpected_count=None if success is None else int(not success),
                observed_value=_observed(frame, gx_frame, i, c, evaluable, thresholds,
                                         priced),
                min_value=low, max_value=high, look_at=c.look_at,
                load_id=_text(frame.at[i, "load_id"])))
        if not ok and not bad_rows:
            raise RuntimeError(f"GX failed {c.suite}.{c.metric} without naming a date")
    return result


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _observed(frame, values, i: int, c: Check, evaluable: bool, t: dict[str, float],
              priced: bool) -> str:
    if not evaluable:
        if c.metric == "unpriced_share_increase" and not priced:
            return "not evaluable: the price book is not in the warehouse before the first dbt run"
        if c.metric in {"quarantine_share", "duplicate_share"}:
            return "not evaluable: no gateway load recorded for this date"
        h, m = int(t["history_days"]), int(t["min_history_days"])
        if c.metric in {"rows_loaded", "volume_ratio"} and bool(frame.at[i, "declared_closed"]):
            return (f"not evaluable: {frame.at[i, 'load_date']:%A} is a declared closed day of "
                    "this organisation (closed_weekdays), nothing loaded on this date")
        if c.metric == "rows_loaded":
            weeks = int(frame.at[i, "weeks_known"])
            return (f"not evaluable: no load on this weekday in any of the {weeks} weeks "
                    "before (a quiet day of this organisation), none on this date either")
        if c.metric == "billing_vendors_missing":
            return ("not evaluable: no vendor billed on 4+ of the 7 days before and on this "
                    "weekday in most weeks of the history")
        if c.metric == "volume_ratio":
            n = int(frame.at[i, "weekday_n"])
            return (f"not evaluable: {n} day{'s' * (n != 1)} of the same weekday in the {h} "
                    f"days before ({m} needed)")
        if c.metric == "billing_ratio_change":
            n = int(frame.at[i, "billing_n"])
            if n >= m:  # the history is there: this date has no bill or no gateway cost
                return ("not evaluable: no bill or no gateway cost (cost_usd) on this date to "
                        "compare")
            return (f"not evaluable: {n} day{'s' * (n != 1)} with both bills and gateway cost "
                    f"in the {h} days before ({m} needed)")
        if not int(frame.at[i, "calls"]):
            return "not evaluable: no call loaded for this date"
        if c.metric == "cost_per_call_ratio":
            return ("not evaluable: no gateway cost (cost_usd) on this date or in "
                    f"{m} days of its history")
        n = int(frame.at[i, "history_n"])
        return (f"not evaluable: {n} comparable day{'s' * (n != 1)} in the {h} days before "
                f"({m} needed)")
    value = float(values.at[i, c.metric])
    text = f"{value:.4g}"
    detail = f"{c.metric}_text"
    if detail in frame.columns:
        names = frame.at[i, detail]
        if hasattr(names, "__len__") and not isinstance(names, str) and len(names):
            text += " (" + ", ".join(str(n) for n in names) + ")"
    return text


def store_results(con, result: CheckResult) -> None:
    """TEMP table ``_tb_validation`` (columns of raw.validation_results) from ``result``."""
    import pyarrow as pa

    cols = ", ".join(f"{n} {t}" for n, t, _ in VALIDATION_RESULTS_COLUMNS)
    con.execute(f"create or replace temp table {RESULTS_TABLE} ({cols})")
    if not result.outcomes:
        return
    types = {"DATE": pa.date32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_(),
             "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    # every column is the Outcome field of its name, but the two constants of this checkpoint
    fixed = {"checkpoint": CHECKPOINT, "data_asset": "daily_metrics"}
    count = len(result.outcomes)
    table = pa.table({
        name: pa.array([fixed[name]] * count if name in fixed
                       else [getattr(o, name) for o in result.outcomes], type=types[ddb_type])
        for name, ddb_type, _ in VALIDATION_RESULTS_COLUMNS
    })
    con.from_arrow(table).insert_into(RESULTS_TABLE)


def migrate_results_table(con, schema: str = "raw") -> None:
    """Add the columns this version stores to an older raw.validation_results (DuckDB)."""
    for name, ddb, _ in VALIDATION_RESULTS_COLUMNS:
        con.execute(f"alter table {schema}.validation_results add column if not exists "
                    f"{name} {ddb}")


def check_dates(settings, dates: Iterable[date], thresholds: dict[str, float] | None = None,
                client=None) -> CheckResult:
    """Profile, evaluate and store the results of ``dates`` in the configured warehouse
    (``tokenbook check``). Raises ThresholdsError for an invalid thresholds file."""
    dates = sorted(set(dates))
    if not dates:
        raise ValueError("no date to check")
    if thresholds is None:
        t = load_thresholds(folder=settings.resolved_config_dir)
    else:
        t = thresholds
        validate(t)
    lo, hi = dates[0] - timedelta(days=int(t["history_days"])), dates[-1]
    wh = Warehouse.from_settings(settings)
    if not wh.is_bigquery:
        con = connect_duckdb(wh)
        try:
            priced = profile_duckdb(con, lo, hi, checked_from=dates[0])
            result = evaluate(con, dates, t, priced)
            store_results(con, result)
            migrate_results_table(con)
            DuckDBSink().replace_validation_results(con, dates, RESULTS_TABLE)
        finally:
            con.close()
        return result
    sink = BigQuerySink.from_settings(settings, client=client)
    con = duckdb.connect()
    try:
        priced = profile_bigquery(sink.client, wh, con, lo, hi, checked_from=dates[0])
        result = evaluate(con, dates, t, priced)
        store_results(con, result)
        sink.replace_validation_results(con, dates, RESULTS_TABLE)
    finally:
        con.close()
    return result
