"""The fixed cast of the demo organisation: features, teams, segments, models and how
gateways write their names.

Names here are contracts (docs/contracts.md): features, segments and teams match
dbt_project/seeds/features.csv and teams.csv (a test pins that). Prices are copied from the
LiteLLM price map snapshot (model_prices_and_context_window.json, MIT) for the catalogue keys
below; they only feed the gateway's own ``cost_usd`` estimate, never the warehouse pricing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEGMENTS: tuple[str, ...] = ("enterprise", "mid_market", "smb", "free_tier")

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "vertex_ai", "bedrock", "azure_openai")

# team -> cost centre (dbt_project/seeds/teams.csv)
TEAM_COST_CENTRE: dict[str, str] = {
    "support-eng": "CC-100",
    "knowledge": "CC-200",
    "search": "CC-200",
    "productivity": "CC-200",
    "devex": "CC-300",
    "growth": "CC-400",
    "legal-ops": "CC-500",
}


@dataclass(frozen=True)
class Model:
    """One model as served by one provider (a price-book entry)."""

    key: str  # short id used inside the generator
    provider: str  # canonical provider that serves and bills the call
    catalog_model: str  # model of the (provider, model) key in dbt_project/seeds/price_book_default.csv
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float
    cache_style: str  # explicit (writes + reads) | auto (reads only) | none
    reasoning: bool
    # How gateways log it: (provider as written, model as written, weight).
    logged_as: tuple[tuple[str, str, float], ...]
    speed_ms_per_token: float = 12.0


MODELS: tuple[Model, ...] = (
    Model("gpt-4o-mini", "openai", "gpt-4o-mini", 0.15, 0.60, 0.075, "auto", False,
          (("openai", "gpt-4o-mini", 0.80), ("openai", "openai/gpt-4o-mini", 0.12),
           ("openai", "gpt-4o-mini-2024-07-18", 0.08)), 8.0),
    Model("gpt-4.1", "openai", "gpt-4.1", 2.00, 8.00, 0.50, "auto", False,
          (("openai", "gpt-4.1", 0.85), ("openai", "gpt-4.1-2025-04-14", 0.15)), 14.0),
    Model("gpt-4.1-nano", "openai", "gpt-4.1-nano", 0.10, 0.40, 0.025, "auto", False,
          (("openai", "gpt-4.1-nano", 1.0),), 6.0),
    Model("o4-mini", "openai", "o4-mini", 1.10, 4.40, 0.275, "auto", True,
          (("openai", "o4-mini", 0.85), ("openai", "o4-mini-2025-04-16", 0.15)), 10.0),
    Model("gpt-5-mini", "openai", "gpt-5-mini", 0.25, 2.00, 0.025, "auto", True,
          (("openai", "gpt-5-mini", 0.75), ("openai", "openai/gpt-5-mini", 0.25)), 10.0),
    Model("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", 3.00, 15.00, 0.30, "explicit",
          False,
          (("anthropic", "claude-sonnet-4-5-20250929", 0.70), ("anthropic", "claude-sonnet-4-5", 0.20),
           ("anthropic", "anthropic/claude-sonnet-4-5", 0.10)), 16.0),
    Model("claude-haiku-4-5", "anthropic", "claude-haiku-4-5", 1.00, 5.00, 0.10, "explicit", False,
          (("anthropic", "claude-haiku-4-5-20251001", 0.60), ("anthropic", "claude-haiku-4-5", 0.40)),
          9.0),
    Model("gemini-2.5-flash", "vertex_ai", "gemini-2.5-flash", 0.30, 2.50, 0.03, "auto", True,
          (("vertex_ai", "gemini-2.5-flash", 0.60), ("google", "gemini-2.5-flash", 0.25),
           ("vertex_ai", "vertex_ai/gemini-2.5-flash", 0.15)), 7.0),
    Model("gemini-2.5-flash-lite", "vertex_ai", "gemini-2.5-flash-lite", 0.10, 0.40, 0.01, "auto",
          False,
          (("vertex_ai", "gemini-2.5-flash-lite", 0.75), ("google", "gemini-2.5-flash-lite", 0.25)),
          5.0),
    Model("gemini-2.5-pro", "vertex_ai", "gemini-2.5-pro", 1.25, 10.00, 0.125, "auto", True,
          (("vertex_ai", "gemini-2.5-pro", 0.70), ("google", "vertex_ai/gemini-2.5-pro", 0.30)),
          15.0),
    Model("bedrock-claude-sonnet-4-5", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
          3.30, 16.50, 0.33, "explicit", False,
          (("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0.70),
           ("aws_bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0.20),
           ("bedrock", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0.10)), 17.0),
    Model("bedrock-claude-haiku-4-5", "bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0",
          1.00, 5.00, 0.10, "explicit", False,
          (("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", 0.75),
           ("aws_bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", 0.25)), 9.0),
    Model("azure-gpt-4.1-mini", "azure_openai", "gpt-4.1-mini", 0.40, 1.60, 0.10, "auto",
          False,
          (("azure_openai", "gpt-4.1-mini", 0.55), ("azure", "azure/gpt-4.1-mini", 0.25),
           # an Azure deployment name, as Azure-fronting gateways log it
           ("azure_openai", "tb-gpt41-mini-prod-eastus", 0.20)), 9.0),
    Model("azure-gpt-4o", "azure_openai", "gpt-4o", 2.50, 10.00, 1.25, "auto", False,
          (("azure_openai", "gpt-4o", 0.60), ("azure", "azure/gpt-4o", 0.25),
           ("azure_openai", "prod-gpt4o", 0.15)), 12.0),
    # A self-hosted fine-tune: no price anywhere (must stay unpriced, never cost 0).
    Model("self-hosted-ft", "self_hosted", "", 0.0, 0.0, 0.0, "none", False,
          (("self_hosted", "acme-support-llama-3.1-8b-ft", 1.0),), 6.0),
)

MODEL_INDEX: dict[str, int] = {m.key: i for i, m in enumerate(MODELS)}

# Where a gateway sends a request after two failures on a degraded provider (another provider).
FALLBACK: dict[str, str] = {
    "gpt-4o-mini": "azure-gpt-4.1-mini",
    "gpt-4.1": "azure-gpt-4o",
    "gpt-4.1-nano": "azure-gpt-4.1-mini",
    "o4-mini": "azure-gpt-4.1-mini",
    "gpt-5-mini": "azure-gpt-4.1-mini",
    "claude-sonnet-4-5": "bedrock-claude-sonnet-4-5",
    "claude-haiku-4-5": "bedrock-claude-haiku-4-5",
    "gemini-2.5-flash": "gpt-4o-mini",
    "gemini-2.5-flash-lite": "gpt-4o-mini",
    "gemini-2.5-pro": "gpt-4.1",
    "bedrock-claude-sonnet-4-5": "claude-sonnet-4-5",
    "bedrock-claude-haiku-4-5": "claude-haiku-4-5",
    "azure-gpt-4.1-mini": "gpt-4o-mini",
    "azure-gpt-4o": "gpt-4.1",
    "self-hosted-ft": "gpt-4o-mini",
}
UNPRICEABLE_MODEL = "self-hosted-ft"


@dataclass(frozen=True)
class Feature:
    name: str
    unit_of_work: str
    team: str
    share: float  # share of logical requests before events and growth
    weekend: float  # weekend volume relative to a weekday
    input_median: float
    input_sigma: float
    output_median: float
    prefix_tokens: int  # stable prompt prefix (system prompt, schema, KB header)
    cache_ttl: str | None  # explicit caching TTL used on Anthropic-style models; None = no cache_control
    batch_share: float
    complex_share: float
    standard_models: tuple[tuple[str, float], ...]
    complex_model: str
    switch_to: str  # cheaper model a model_switch moves the feature to (not already serving it)
    segment_mix: tuple[float, float, float, float]
    success: float  # P(outcome success | final attempt ok)
    templates: tuple[str, ...]  # prompt_template_id values, first is the main one
    previews: tuple[str, ...] = field(default=())


FEATURES: tuple[Feature, ...] = (
    Feature("support_chat", "ticket", "support-eng", 0.28, 0.55, 14000, 0.55, 320, 2400, "5m",
            0.0, 0.15,
            (("claude-haiku-4-5", 0.58), ("gpt-4o-mini", 0.38), ("self-hosted-ft", 0.012),
             ("azure-gpt-4o", 0.028)),
            "claude-sonnet-4-5", "gemini-2.5-flash", (0.35, 0.30, 0.20, 0.15), 0.78,
            ("support_chat.answer", "support_chat.triage"),
            ("Customer asks why the invoice total changed after the plan upgrade",
             "User cannot reset password, tried twice, asks for help",
             "Refund request for a duplicate charge on the annual plan",
             "How do I export my workspace data to CSV?")),
    Feature("doc_summarizer", "document", "knowledge", 0.13, 0.45, 9000, 0.70, 650, 1400, "5m",
            0.45, 0.10,
            (("gemini-2.5-flash", 0.60), ("azure-gpt-4.1-mini", 0.40)),
            "gemini-2.5-pro", "gemini-2.5-flash-lite", (0.40, 0.30, 0.20, 0.10), 0.82,
            ("doc_summarizer.summary", "doc_summarizer.bullets"),
            ("Summarise the attached quarterly business review for the leadership team",
             "Give five bullet points on the onboarding guide",
             "Summarise the policy document and list open questions")),
    Feature("code_review", "review", "devex", 0.11, 0.25, 7000, 0.60, 3000, 3200, "1h",
            0.0, 0.20,
            (("bedrock-claude-haiku-4-5", 0.60), ("o4-mini", 0.40)),
            "bedrock-claude-sonnet-4-5", "gpt-5-mini", (0.50, 0.30, 0.15, 0.05), 0.74,
            ("code_review.diff", "code_review.security"),
            ("Review this pull request diff for the billing service refactor",
             "Check the migration script for missing indexes",
             "Look for injection risks in the new search endpoint")),
    Feature("search_answers", "query", "search", 0.26, 0.70, 900, 0.45, 140, 350, None,
            0.0, 0.08,
            (("gpt-4o-mini", 0.50), ("gemini-2.5-flash", 0.50)),
            "gpt-4.1", "gemini-2.5-flash-lite", (0.20, 0.25, 0.25, 0.30), 0.70,
            ("search_answers.answer",),
            ("what is the retention policy for audit logs",
             "how to rotate workspace tokens",
             "pricing for the team plan")),
    Feature("email_drafter", "email", "growth", 0.11, 0.40, 1100, 0.45, 380, 520, None,
            0.0, 0.10,
            (("azure-gpt-4.1-mini", 0.70), ("claude-haiku-4-5", 0.30)),
            "gpt-4.1", "gpt-4.1-nano", (0.15, 0.30, 0.35, 0.20), 0.80,
            ("email_drafter.followup", "email_drafter.cold"),
            ("Draft a follow-up after the product demo, friendly tone",
             "Write a renewal reminder for a customer on the team plan",
             "Reply to a partner asking for the integration timeline")),
    Feature("contract_extractor", "contract", "legal-ops", 0.04, 0.20, 42000, 0.55, 1600, 6000,
            None, 0.0, 0.12,
            (("claude-sonnet-4-5", 0.60), ("gpt-4.1", 0.40)),
            "gemini-2.5-pro", "gemini-2.5-flash", (0.70, 0.25, 0.05, 0.0), 0.86,
            ("contract_extractor.fields", "contract_extractor.clauses"),
            ("Extract parties, term, renewal and liability cap from the MSA",
             "List the termination clauses of the supplier agreement",
             "Extract payment terms from the order form")),
    Feature("meeting_notes", "meeting", "productivity", 0.07, 0.30, 12000, 0.50, 900, 1500, "5m",
            0.10, 0.08,
            (("gpt-5-mini", 0.70), ("claude-haiku-4-5", 0.30)),
            "gpt-4.1", "gpt-4o-mini", (0.30, 0.30, 0.25, 0.15), 0.83,
            ("meeting_notes.notes", "meeting_notes.actions"),
            ("Write notes and action items from the weekly product sync transcript",
             "Summarise decisions from the customer kickoff call",
             "List owners and due dates from the planning meeting")),
)

FEATURE_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(FEATURES)}

# Customers per segment (pool sizes); free-tier users are sometimes identified by email.
CUSTOMER_POOL: dict[str, int] = {"enterprise": 30, "mid_market": 140, "smb": 600, "free_tier": 3000}
FREE_TIER_EMAIL_SHARE = 0.04


def teams_manifest() -> dict[str, dict[str, str]]:
    """feature -> {team, cost_centre}."""
    return {
        f.name: {"team": f.team, "cost_centre": TEAM_COST_CENTRE[f.team]} for f in FEATURES
    }
