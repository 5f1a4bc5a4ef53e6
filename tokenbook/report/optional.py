"""Report sections on marts that other parts are still adding (reconciliation, savings
levers): their queries are made from the columns the table actually has, so a mart with a
renamed or missing column drops its section with a reason instead of failing the report.
To add a lever, append a :class:`Lever` to :data:`LEVERS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenbook.report.sql import Query

TOP_LEVER_ROWS = 5


def _first(columns: set[str], *candidates: str) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _month_filter(columns: set[str]) -> str | None:
    """A predicate selecting the report month's rows of a table with some month/period column."""
    grain = _first(columns, "grain", "period", "period_grain")
    day = _first(columns, "month_start", "period_start", "month", "charge_period_start",
                 "usage_month", "usage_date", "call_date", "day", "date")
    if day is None:
        return None
    if grain:
        return f"{grain} = 'month' and {day} = {{month}}"
    if day in ("month_start", "month", "usage_month"):
        return f"{day} = {{month}}"
    return f"{day} between {{month}} and {{month_end}}"


@dataclass(frozen=True)
class ReconColumns:
    provider: str
    gateway: str
    invoice: str
    variance: str | None
    gap: str | None
    detail: str | None
    flagged: str | None
    model: str | None


def reconciliation_columns(columns: set[str]) -> ReconColumns | None:
    provider = _first(columns, "provider")
    # mart_reconciliation compares the invoice's billed cost with the ledger's list cost
    gateway = _first(columns, "gateway_list_cost_usd", "gateway_cost_usd", "ledger_cost_usd",
                     "gateway_effective_cost_usd")
    invoice = _first(columns, "invoice_billed_cost_usd", "invoice_cost_usd", "billed_cost_usd",
                     "vendor_cost_usd")
    if not (provider and gateway and invoice):
        return None
    return ReconColumns(
        provider=provider,
        gateway=gateway,
        invoice=invoice,
        variance=_first(columns, "cost_variance_usd", "variance_usd"),
        gap=_first(columns, "gap_class", "gap_classification", "classification"),
        detail=_first(columns, "gap_detail", "gap_reason"),
        flagged=_first(columns, "is_flagged", "flagged", "is_over_threshold"),
        model=_first(columns, "model", "catalog_model"),
    )


def reconciliation_queries(columns: set[str]) -> tuple[Query, Query] | None:
    """Gateway vs invoice for the month: per provider x model (largest variance first) and the
    month's total; ``None`` when the mart lacks a provider, both costs or a month column."""
    rc = reconciliation_columns(columns)
    where = _month_filter(columns)
    if rc is None or where is None:
        return None
    keys = [rc.provider] + ([rc.model] if rc.model else [])
    variance = f"sum({rc.variance})" if rc.variance else f"sum({rc.invoice}) - sum({rc.gateway})"
    sums = (f"sum({rc.gateway}) as gateway_cost_usd,\n"
            f"           sum({rc.invoice}) as invoice_cost_usd,\n"
            f"           {variance} as variance_usd,\n"
            f"           ({variance}) / nullif(sum({rc.gateway}), 0) as variance_pct")
    extra = []
    if rc.gap:
        extra.append(f"max({rc.gap}) as gap_class")
    if rc.detail:
        extra.append(f"max({rc.detail}) as gap_detail")
    if rc.flagged:
        extra.append(f"max(case when {rc.flagged} then 1 else 0 end) as flagged")
    extra_sql = "".join(f",\n           {e}" for e in extra)
    rows = f"""
    select {', '.join(f'{k} as {k}' for k in keys)},
           {sums}{extra_sql}
    from {{mart_reconciliation}}
    where {where}
    group by {', '.join(keys)}
    order by abs({variance}) desc, {', '.join(keys)}
    """
    flagged = (f",\n           sum(case when {rc.flagged} then 1 else 0 end) as flagged_lines"
               if rc.flagged else "")
    total = f"""
    select {sums}{flagged}
    from {{mart_reconciliation}}
    where {where}
    """
    return (Query("reconciliation", rows, ("mart_reconciliation",)),
            Query("reconciliation_total", total, ("mart_reconciliation",)))


CHARGEBACK_RECONCILED = Query(
    "chargeback_reconciled",
    """
    select cost_centre, team,
           sum(gateway_effective_cost_usd) as gateway_effective_cost_usd,
           sum(reconciled_cost_usd) as reconciled_cost_usd,
           sum(reconciled_cost_usd) - sum(gateway_effective_cost_usd) as difference_usd
    from {mart_chargeback_reconciled}
    where month_start = {month}
    group by cost_centre, team
    order by reconciled_cost_usd desc, cost_centre, team
    """,
    ("mart_chargeback_reconciled",),
)
CHARGEBACK_RECONCILED_COLUMNS = {"month_start", "cost_centre", "team",
                                 "gateway_effective_cost_usd", "reconciled_cost_usd"}


@dataclass(frozen=True)
class Lever:
    """A savings lever: a mart with a dollar column, and the columns that say what to do.

    ``rate``: the dollar column is already a monthly rate on every (weekly) row, so the report
    takes the month's last week instead of summing the weeks. ``flagged_only``: keep the rows
    the mart flags (``is_flagged``) when it has that column."""

    table: str
    title: str
    what: str
    dollars: tuple[str, ...]  # candidate dollar columns, first present wins
    dollars_label: str = "Dollars"
    labels: tuple[str, ...] = ("feature", "prompt_template_id", "provider", "model")
    rate: bool = False
    flagged_only: bool = False


LEVERS: tuple[Lever, ...] = (
    Lever("mart_routing_opportunities", "Route to a cheaper model that passes the bar",
          "Per feature and request class: the cheapest model that passed the feature's quality "
          "bar, and what moving to it saves a month at current volume (latest routing window).",
          ("monthly_saving_usd", "monthly_savings_usd", "savings_usd", "saving_usd"),
          "Saving a month",
          labels=("feature", "request_class", "current_top_model", "cheapest_passing_model")),
    Lever("mart_prompt_drift", "Trim prompts that grew",
          "Flagged prompt templates whose input tokens per call grew against the baseline: "
          "the monthly dollars the growth adds (the month's last week).",
          ("monthly_added_cost_usd", "monthly_growth_cost_usd", "added_cost_usd"),
          "Added a month", labels=("feature", "prompt_template_id"), rate=True,
          flagged_only=True),
    Lever("mart_retry_waste", "Cut retry waste",
          "Spend on attempts after the first (retries and fallbacks) in the weeks of the month.",
          ("retry_cost_usd", "retry_waste_usd", "waste_usd", "wasted_cost_usd"),
          "Retry spend", labels=("feature", "provider", "model")),
    Lever("mart_commit_readiness", "Commit to a provider discount",
          "Per provider and dominant model: the saving a month of the offered commitment "
          "discount at the recommended level, and whether the usage is ready for it.",
          ("saving_per_month_usd", "monthly_saving_usd", "savings_usd"), "Saving a month",
          labels=("provider", "dominant_model", "readiness")),
    Lever("mart_finetune_breakeven", "Fine-tune a smaller model",
          "Fine-tuning candidates: the net saving a month at the current volume after the "
          "fixed costs, and the verdict (never 'go' without a passing eval).",
          ("net_saving_per_month_current_usd", "monthly_saving_usd", "savings_usd"),
          "Saving a month", labels=("feature", "ft_model", "verdict")),
    Lever("mart_cache_efficiency", "Turn on prompt caching where it would hit",
          "Calls that could have read a cached prefix but did not (ISO weeks starting in the "
          "month), at the price difference of each call.",
          ("missed_cache_savings_usd",), "Could save", labels=("feature", "provider", "model")),
)


def lever_query(lever: Lever, columns: set[str]) -> Query | None:
    """Top rows of a lever's mart by its dollar column: the report month's rows where the table
    has a month or week column, else its latest snapshot (``as_of_date``), else all rows."""
    dollars = _first(columns, *lever.dollars)
    if dollars is None:
        return None
    table = "{" + lever.table + "}"
    labels = [c for c in lever.labels if c in columns][:4]
    where = _month_filter(columns)
    week = _first(columns, "week_start", "call_week")
    snapshot = _first(columns, "as_of_date", "as_of")
    if where is None and week and lever.rate:
        where = (f"{week} = (select max({week}) from {table} "
                 f"where {week} between {{month}} and {{month_end}})")
    elif where is None and week:
        where = f"{week} between {{month}} and {{month_end}}"
    elif where is None and snapshot:
        where = f"{snapshot} = (select max({snapshot}) from {table})"
    if lever.flagged_only and "is_flagged" in columns:
        where = f"({where or '1 = 1'}) and is_flagged"
    label_sql = ", ".join(f"{c} as {c}" for c in labels)
    group = f"group by {', '.join(labels)}" if labels else ""
    sql = f"""
    select {label_sql + ', ' if labels else ''}sum({dollars}) as dollars_usd
    from {table}
    where {where or '1 = 1'}
    {group}
    having sum({dollars}) > 0
    order by dollars_usd desc{', ' + ', '.join(labels) if labels else ''}
    limit {TOP_LEVER_ROWS}
    """
    return Query(f"lever__{lever.table}", sql, (lever.table,))


@dataclass
class Catalogue:
    """The marts tables present, with their columns (lower-case)."""

    tables: dict[str, set[str]] = field(default_factory=dict)

    def has(self, *names: str) -> bool:
        return all(n in self.tables for n in names)
