"""The demo organisation's configuration folder (demo_data/config/), written by the generator.

These are the demo company's own facts (its features, teams, budgets, Azure discount, deployment
names, policies, quotes, fine-tune candidates, plans, events and retirement notices): they were
the repository's seeds before issue 15 and are kept value for value, so the demo's findings do
not move. A real organisation writes its own folder (`tokenbook init`). Invented for the demo.
"""

from __future__ import annotations

from pathlib import Path

FILES: dict[str, str] = {
    "teams": (
        'team,cost_centre,cost_centre_name,business_unit\n'
        'support-eng,CC-100,Customer Support,Operations\n'
        'knowledge,CC-200,Knowledge Products,Product\n'
        'search,CC-200,Knowledge Products,Product\n'
        'productivity,CC-200,Knowledge Products,Product\n'
        'devex,CC-300,Engineering Productivity,Engineering\n'
        'growth,CC-400,Sales and Marketing,Go-to-market\n'
        'legal-ops,CC-500,Legal,G&A\n'
    ),
    "features": (
        'feature,unit_of_work,outcome_rule,owner_team,budget_per_outcome_usd,quality_bar,value_per_outcome_usd,launched_on\n'
        'support_chat,ticket,a logical request whose final attempt has outcome success (ticket resolved without a human),support-eng,0.0300,0.80,4.50,2025-01-15\n'
        'doc_summarizer,document,a logical request whose final attempt has outcome success (summary accepted),knowledge,0.0200,0.75,1.20,2025-03-01\n'
        'code_review,review,a logical request whose final attempt has outcome success (review comment kept),devex,0.0700,0.85,6.00,2025-02-10\n'
        'search_answers,query,a logical request whose final attempt has outcome success (answer clicked),search,0.0030,0.70,0.15,2024-11-01\n'
        'email_drafter,email,a logical request whose final attempt has outcome success (draft sent),growth,0.0050,0.70,0.60,2025-05-20\n'
        'contract_extractor,contract,a logical request whose final attempt has outcome success (fields validated),legal-ops,0.4000,0.90,12.00,2025-04-01\n'
        'meeting_notes,meeting,a logical request whose final attempt has outcome success (notes shared),productivity,0.0300,0.75,2.00,2026-01-01\n'
    ),
    "budgets": (
        'feature,monthly_budget_usd\n'
        'support_chat,900.00\n'
        'doc_summarizer,250.00\n'
        'code_review,2000.00\n'
        'search_answers,70.00\n'
        'email_drafter,60.00\n'
        'contract_extractor,400.00\n'
        'meeting_notes,200.00\n'
    ),
    "negotiated_prices": (
        'provider,model,valid_from,valid_to,discount_pct,input_per_mtok,cache_read_per_mtok,cache_write_per_mtok,output_per_mtok,note\n'
        'azure_openai,*,2025-01-01,,15,,,,,example: an Azure commitment at 15% off list for every model (replace with your agreements)\n'
    ),
    "model_aliases": (
        'provider,raw_model,match_type,catalog_provider,catalog_model,note\n'
        "azure_openai,prod-gpt4o,exact,azure_openai,gpt-4o,the demo organisation's Azure deployment\n"
        "azure_openai,prod-gpt4o-mini,exact,azure_openai,gpt-4o-mini,the demo organisation's Azure deployment\n"
        "azure_openai,tb-gpt41-mini-prod-eastus,exact,azure_openai,gpt-4.1-mini,the demo organisation's Azure deployment\n"
        "azure_openai,chat-gpt41,exact,azure_openai,gpt-4.1,the demo organisation's Azure deployment\n"
    ),
    "data_policies": (
        'policy_id,scope_type,scope_value,data_class,allowed_provider,allowed_region,note\n'
        'legal-privileged,feature,contract_extractor,privileged-legal,anthropic,*,Contracts stay with the two vendors under the legal DPA (Anthropic direct)\n'
        'legal-privileged,feature,contract_extractor,privileged-legal,bedrock,us-east-1,Anthropic models on Bedrock in US regions\n'
        'legal-privileged,feature,contract_extractor,privileged-legal,bedrock,us-west-2,Anthropic models on Bedrock in US regions\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,openai,*,US data residency in enterprise contracts; OpenAI processes in the US\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,anthropic,*,Anthropic processes in the US\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,vertex_ai,us-central1,Vertex AI only in US regions\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,bedrock,us-east-1,Bedrock only in US regions\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,bedrock,us-west-2,Bedrock only in US regions\n'
        'enterprise-us-residency,customer_segment,enterprise,customer-confidential,azure_openai,eastus,Azure OpenAI only in US regions\n'
    ),
    "commitment_offers": (
        'offer_id,provider,model,discount_pct,term_months,offer_note\n'
        'ant-sonnet-2027,anthropic,claude-sonnet-4-5,10,12,Anthropic committed-spend quote for Claude Sonnet 4.5 (any volume at or above the commitment)\n'
        'aws-bedrock-private-2027,bedrock,*,12,12,AWS private pricing addendum on Bedrock on-demand tokens\n'
        'oai-scale-2027,openai,*,8,12,OpenAI annual commitment quote on API spend\n'
        'az-macc-2027,azure_openai,*,15,12,Azure OpenAI spend under the Microsoft consumption commitment\n'
    ),
    "finetune_candidates": (
        'candidate_id,feature,ft_provider,ft_model,training_cost_usd,labour_cost_per_month_usd,hosting_cost_per_month_usd,ft_input_per_mtok,ft_output_per_mtok,prompt_shrink_pct,passed_eval,eval_note\n'
        'code_review-ft-gpt41mini,code_review,openai,ft:gpt-4.1-mini:acme:code-review,400.00,0.00,0.00,0.80,3.20,40,true,code_review-golden-v1 0.88 vs bar 0.85 on 420 cases; serverless fine-tune billed per token\n'
        'support_chat-llama8b-selfhost,support_chat,self_hosted,acme-support-llama-3.1-8b-ft,2500.00,1500.00,1800.00,0.00,0.00,60,false,support_chat-golden-v1 0.74 vs bar 0.80; one L4 GPU node reserved per month\n'
        'doc_summarizer-ft-flashlite,doc_summarizer,vertex_ai,ft:gemini-2.5-flash-lite:acme:summaries,600.00,0.00,0.00,0.10,0.40,30,true,doc_summarizer-golden-v1 0.78 vs bar 0.75; serverless tuned endpoint billed per token\n'
    ),
    "new_feature_estimates": (
        'feature,launch_date,daily_active_users,calls_per_user,tokens_per_call,usd_per_million_tokens,spread,source\n'
        'meeting_notes,2026-01-01,400,3.0,6000,1.20,2.5,product plan: 400 DAU at launch x 3 meetings/day; ~6k tokens per transcript chunk; blended gpt-4o-mini/haiku price\n'
        'email_drafter,2025-05-20,900,4.0,1500,0.60,2.5,growth plan: 900 DAU x 4 drafts; ~1.5k tokens per draft; mostly gpt-4.1-nano/gemini flash-lite\n'
        'contract_extractor,2025-04-01,60,8.0,12000,3.00,3.0,legal-ops plan: 60 users x 8 contracts/day; ~12k tokens per contract; sonnet-class price\n'
    ),
    "forecast_events": (
        'event_date,event_name,kind,provider,feature,description,source\n'
        '2025-12-25,christmas_2025,holiday,,,US/EU holiday: business traffic low,calendar\n'
        '2026-01-01,new_year_2026,holiday,,,US/EU holiday: business traffic low,calendar\n'
        '2026-01-01,meeting_notes_launch,launch,,meeting_notes,meeting_notes feature launched (features.csv launched_on),dbt_project/seeds/features.csv\n'
        '2026-09-07,us_labor_day_2026,holiday,,,US holiday: business traffic low,calendar\n'
        '2026-11-26,us_thanksgiving_2026,holiday,,,US holiday: business traffic low,calendar\n'
        '2026-11-27,black_friday_2026,holiday,,,US retail peak; support traffic high,calendar\n'
        '2026-12-25,christmas_2026,holiday,,,US/EU holiday: business traffic low,calendar\n'
        '2027-01-01,new_year_2027,holiday,,,US/EU holiday: business traffic low,calendar\n'
    ),
    "retry_caps": (
        'feature,retry_cap,owner_note\n'
        'support_chat,3,gateway retry policy of the support bot (2 retries after the first attempt)\n'
        'doc_summarizer,3,batch-friendly: failures are re-queued rather than retried inline\n'
        'code_review,3,\n'
        'search_answers,2,latency-bound: one retry at most\n'
        'email_drafter,3,\n'
        'contract_extractor,4,long documents time out more; a 4th attempt is allowed\n'
        'meeting_notes,3,\n'
    ),
    "model_retirements": (
        'provider,model,retirement_date,announced_on,fallback_provider,fallback_model,source_note\n'
        'openai,o4-mini,2027-01-15,2026-10-14,openai,gpt-5-mini,OpenAI deprecations page (announcement e-mail to the org owner)\n'
        'vertex_ai,gemini-2.5-pro,2027-01-20,2026-10-20,vertex_ai,gemini-2.5-flash,Vertex AI model versions and lifecycle page\n'
        'azure_openai,gpt-4o,2027-02-10,2026-11-02,azure_openai,gpt-4.1-mini,Azure OpenAI model retirements page (deployment prod-gpt4o)\n'
        'anthropic,claude-sonnet-4-5,2027-09-29,2026-09-29,anthropic,claude-haiku-4-5,Anthropic model deprecations page (retires in more than 90 days)\n'
    ),
}


def write_demo_config(folder: str | Path) -> Path:
    """Write every file of the demo organisation's configuration into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        header = f"# {name}.csv of the demo organisation (invented; see `tokenbook init` for the documented template)\n"
        (folder / f"{name}.csv").write_text(header + text, encoding="utf-8")
    return folder
