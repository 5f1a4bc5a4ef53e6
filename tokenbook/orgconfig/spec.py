"""The organisation's configuration folder: one CSV file per kind of fact.

Each :class:`FileSpec` names its columns (type, required, meaning), its key and its checks.
``tokenbook init`` writes every file from these specs (a documented header and a commented
example), ``tokenbook config check`` validates against them, and the loader creates one typed
warehouse table per file (empty when the file is absent: "not configured").
The examples use an invented company (features ``invoice_parser``, ``field_notes``), never the
demo organisation's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column types: text, date (YYYY-MM-DD), money (exact decimal), number (float), integer, boolean
# (their warehouse types: DUCKDB_TYPES and BIGQUERY_TYPES in load.py).


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    required: bool = False
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name without .csv; the warehouse table is raw.config_<name>
    title: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    example: tuple[tuple[str, ...], ...]
    absent: str  # what tokenbook reports when the file is absent
    extra_checks: tuple[str, ...] = field(default_factory=tuple)

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def table(self) -> str:
        return f"config_{self.name}"

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _t(name: str, doc: str, required: bool = False, allowed: tuple[str, ...] = ()) -> Column:
    return Column(name, "text", doc, required, allowed)


def _money(name: str, doc: str, required: bool = False) -> Column:
    return Column(name, "money", doc, required, minimum=0)


FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "teams",
        "Teams and cost centres",
        "One row per team: the cost centre that pays for its features (chargeback).",
        (
            _t("team", "team name as your gateway tags it (or as features.csv owner_team names it)", True),
            _t("cost_centre", "cost centre code in your chart of accounts", True),
            _t("cost_centre_name", "cost centre name shown to finance"),
            _t("business_unit", "business unit of the cost centre"),
        ),
        ("team",),
        (("claims-eng", "CC-7100", "Claims Handling", "Insurance Services"),),
        "teams and cost centres not configured: calls without a team tag are charged to "
        "(unattributed)",
    ),
    FileSpec(
        "features",
        "Features",
        "One row per product feature: its unit of work, outcome rule, owner team, budget per "
        "outcome, quality bar and value per outcome.",
        (
            _t("feature", "feature name exactly as your gateway tags calls", True),
            _t("unit_of_work", "what one outcome is (a case closed, an invoice read, a pull request reviewed)"),
            _t("outcome_rule", "how an outcome is counted, in words"),
            _t("owner_team", "team that owns the feature (a team of teams.csv)"),
            _money("budget_per_outcome_usd", "most USD one outcome may cost (empty: no budget)"),
            Column("quality_bar", "number", "eval score (0..1) a cheaper model must reach", minimum=0, maximum=1),
            _money("value_per_outcome_usd", "what one outcome is worth to the business, in USD"),
            Column("launched_on", "date", "launch date; its monthly budget applies from that month"),
        ),
        ("feature",),
        (("invoice_parser", "invoice", "final attempt succeeded (fields validated)", "claims-eng",
          "0.0400", "0.85", "2.50", "2026-03-01"),),
        "features not configured: no unit of work, no budget per outcome, no quality bar",
    ),
    FileSpec(
        "budgets",
        "Monthly budgets",
        "One row per feature with a monthly AI budget in USD (a feature of features.csv).",
        (
            _t("feature", "feature of features.csv", True),
            _money("monthly_budget_usd", "monthly budget in USD (>= 0)", True),
        ),
        ("feature",),
        (("invoice_parser", "1200.00"),),
        "budgets not configured: every budget line reads 'not configured'",
    ),
    FileSpec(
        "negotiated_prices",
        "Negotiated prices and discounts",
        "One row per agreement with a provider, effective-dated: a discount in percent off list, "
        "or explicit prices per 1M tokens that replace the list price. model '*' = every model "
        "of the provider; a model-specific row beats '*'. Periods of one provider x model must "
        "not overlap.",
        (
            _t("provider", "canonical provider (openai, anthropic, vertex_ai, gemini, bedrock, azure_openai, mistral, ...)", True),
            _t("model", "price-book model, or * for every model of the provider", True),
            Column("valid_from", "date", "first day the agreement applies", True),
            Column("valid_to", "date", "first day it no longer applies (empty: open-ended)"),
            Column("discount_pct", "money", "percent off list (15 = 15%)", minimum=0, maximum=100),
            _money("input_per_mtok", "negotiated input price, USD per 1M tokens"),
            _money("cache_read_per_mtok", "negotiated cache-read price, USD per 1M tokens"),
            _money("cache_write_per_mtok", "negotiated cache-write price, USD per 1M tokens"),
            _money("output_per_mtok", "negotiated output price, USD per 1M tokens"),
            _t("note", "the contract or quote it comes from"),
        ),
        ("provider", "model", "valid_from"),
        (("azure_openai", "*", "2026-01-01", "2027-01-01", "12", "", "", "", "", "MACC amendment 2026"),),
        "negotiated prices not configured: effective cost = list cost",
        ("non-overlapping periods per provider x model",),
    ),
    FileSpec(
        "model_aliases",
        "Model aliases (your deployment names)",
        "One row per model name your gateway logs that the price book does not know: an Azure "
        "deployment name, a fine-tune alias. match_type exact (the name) or like (a SQL LIKE "
        "pattern with %).",
        (
            _t("provider", "provider as logged (or * for any)", True),
            _t("raw_model", "model name as logged", True),
            _t("match_type", "exact or like", True, ("exact", "like")),
            _t("catalog_provider", "canonical provider of the price-book entry", True),
            _t("catalog_model", "price-book model it is billed as", True),
            _t("note", "why"),
        ),
        ("provider", "raw_model"),
        (("azure_openai", "claims-gpt4o-eu", "exact", "azure_openai", "gpt-4o", "Azure deployment in westeurope"),),
        "no deployment aliases: model names the price book does not know are listed in "
        "mart_unpriced_calls",
    ),
    FileSpec(
        "data_policies",
        "Data policies",
        "One row per data policy x allowed provider x allowed region (* = any region). A policy "
        "covers the calls of one feature or one customer segment; a covered call breaks it when "
        "no row allows its provider and region.",
        (
            _t("policy_id", "policy name", True),
            _t("scope_type", "feature or customer_segment", True, ("feature", "customer_segment")),
            _t("scope_value", "the feature or segment covered", True),
            _t("data_class", "class of data the policy protects"),
            _t("allowed_provider", "a canonical provider allowed", True),
            _t("allowed_region", "a region allowed, or *", True),
            _t("note", "the agreement or clause"),
        ),
        ("policy_id", "scope_type", "scope_value", "allowed_provider", "allowed_region"),
        (("health-records", "feature", "field_notes", "phi", "bedrock", "eu-central-1", "BAA with AWS"),),
        "data policies not configured: no policy violations are checked",
    ),
    FileSpec(
        "commitment_offers",
        "Commitment offers",
        "One row per commitment quote from a vendor: discount in percent on committed spend.",
        (
            _t("offer_id", "quote name", True),
            _t("provider", "canonical provider", True),
            _t("model", "price-book model or * for every model", True),
            Column("discount_pct", "money", "percent off committed spend", True, minimum=0, maximum=100),
            Column("term_months", "integer", "commitment term in months", True, minimum=1),
            _t("offer_note", "where the quote comes from"),
        ),
        ("offer_id",),
        (("oai-2027-quote", "openai", "*", "9", "12", "account team quote of 2026-10-02"),),
        "commitment offers not configured: no commitment is evaluated",
    ),
    FileSpec(
        "finetune_candidates",
        "Fine-tune candidates",
        "One row per fine-tune candidate of a feature: costs, the tuned model's prices and "
        "whether it passed the feature's eval.",
        (
            _t("candidate_id", "candidate name", True),
            _t("feature", "feature it would serve", True),
            _t("ft_provider", "provider of the tuned model (self_hosted when you host it)", True),
            _t("ft_model", "tuned model name"),
            _money("training_cost_usd", "one-off training cost", True),
            _money("labour_cost_per_month_usd", "monthly labour to keep it"),
            _money("hosting_cost_per_month_usd", "monthly hosting cost (self-hosted)"),
            _money("ft_input_per_mtok", "tuned model's input price per 1M tokens"),
            _money("ft_output_per_mtok", "tuned model's output price per 1M tokens"),
            Column("prompt_shrink_pct", "number", "expected shrink of input tokens, percent", minimum=0, maximum=100),
            Column("passed_eval", "boolean", "true when it passed the feature's eval", True),
            _t("eval_note", "the eval it passed or failed"),
        ),
        ("candidate_id",),
        (("invoice_parser-ft-mini", "invoice_parser", "openai", "ft:gpt-4.1-mini:yourorg:invoices",
          "350.00", "0", "0", "0.80", "3.20", "35", "true", "invoices-golden 0.88 vs bar 0.85"),),
        "fine-tune candidates not configured: no fine-tune break-even is computed",
    ),
    FileSpec(
        "new_feature_estimates",
        "New-feature estimates (Fermi forecasts)",
        "One row per feature with too little history to forecast: daily spend = users x calls "
        "per user x tokens per call x USD per 1M tokens / 1e6; spread is the p90/p50 ratio (> 1).",
        (
            _t("feature", "feature name as it will be tagged", True),
            Column("launch_date", "date", "launch date", True),
            Column("daily_active_users", "number", "users a day at launch", True, minimum=0),
            Column("calls_per_user", "number", "LLM calls per user a day", True, minimum=0),
            Column("tokens_per_call", "number", "tokens per call", True, minimum=0),
            Column("usd_per_million_tokens", "number", "blended price per 1M tokens", True, minimum=0),
            Column("spread", "number", "p90/p50 ratio of each factor (> 1)", True, minimum=1),
            _t("source", "the plan it comes from"),
        ),
        ("feature",),
        (("field_notes", "2027-02-01", "250", "5", "3000", "0.80", "2.5", "product plan Q1"),),
        "new-feature estimates not configured: no Fermi forecast is published",
    ),
    FileSpec(
        "forecast_events",
        "Forecast events",
        "Your own known events that move spend: launch and price_change rows are step "
        "regressors for the series they scope (provider and/or feature; empty = every series), "
        "holiday rows are one-day effects. Public vendor price changes ship with tokenbook.",
        (
            Column("event_date", "date", "day of the event", True),
            _t("event_name", "short name", True),
            _t("kind", "launch, price_change, holiday or model_switch", True,
               ("launch", "price_change", "holiday", "model_switch")),
            _t("provider", "provider it concerns (empty = all)"),
            _t("feature", "feature it concerns (empty = all)"),
            _t("description", "what happens"),
            _t("source", "where you know it from"),
            _t("model", "model_switch: the model calls move away from"),
            _t("to_model", "model_switch: the model they move to (priced from the price book)"),
            Column("spend_ratio", "number", "planned change of spend from the date (0.8 = -20%)",
                   minimum=0),
        ),
        ("event_date", "event_name"),
        (("2026-12-24", "office_closure_2026", "holiday", "", "", "company closed", "HR calendar",
          "", "", ""),),
        "forecast events not configured: only public price changes are used",
    ),
    FileSpec(
        "retry_caps",
        "Retry caps",
        "One row per feature: the most attempts (first included) one logical request may take.",
        (
            _t("feature", "feature", True),
            Column("retry_cap", "integer", "attempts allowed (>= 1)", True, minimum=1),
            _t("owner_note", "where the policy is set"),
        ),
        ("feature",),
        (("invoice_parser", "3", "gateway retry policy"),),
        "retry caps not configured: every feature uses the default_retry_cap lever setting",
    ),
    FileSpec(
        "lever_settings",
        "Lever settings",
        "Optional overrides of the lever thresholds (see dbt_project/seeds/levers_settings_default.csv "
        "for the settings and their defaults): one row per setting you change.",
        (
            _t("setting", "a setting of levers_settings_default.csv", True),
            Column("value", "number", "its value", True),
        ),
        ("setting",),
        (("drift_threshold", "1.8"),),
        "lever settings not configured: tokenbook's documented defaults apply",
    ),
    FileSpec(
        "model_retirements",
        "Model retirement notices",
        "Retirement notices your organisation received (e-mails, account notices) beyond the "
        "vendors' public deprecation pages that ship with tokenbook, with the fallback your "
        "platform team approved.",
        (
            _t("provider", "canonical provider", True),
            _t("model", "price-book model", True),
            Column("retirement_date", "date", "retirement date", True),
            Column("announced_on", "date", "when it was announced"),
            _t("fallback_provider", "approved fallback provider"),
            _t("fallback_model", "approved fallback model"),
            _t("source_note", "the notice"),
        ),
        ("provider", "model"),
        (("azure_openai", "gpt-4o", "2027-03-01", "2026-11-15", "azure_openai", "gpt-4.1",
          "Azure notice for deployment claims-gpt4o-eu"),),
        "no retirement notices of your own: only the vendors' published dates are used",
    ),
)

BY_NAME: dict[str, FileSpec] = {f.name: f for f in FILES}
