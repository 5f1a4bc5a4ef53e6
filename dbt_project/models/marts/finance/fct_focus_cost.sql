{#- FOCUS 1.2 Cost and Usage rows built from the invoices: one row per invoice line
    (int_vendor_cost_lines: vendor x day x model x token type x scope x API key) x allocation
    bucket (feature x customer segment x team x cost centre).

    Allocation: an invoice line is split by the gateway's usage shares (tokens of the line's
    token type) for the same provider x model x day; when the gateway logged none that day,
    by the provider x model x month shares; else (and always for usage of API keys the gateway
    never logged) the whole line is '(unattributed)'. Amounts are split in decimals and the
    rounding remainder goes to the largest share, so allocated totals equal billed totals
    exactly (tests/finance/assert_focus_allocated_equals_billed.sql).

    Money: BilledCost and EffectiveCost from the invoice (USD), ListCost = the price book's list
    unit price x billed quantity (BilledCost where the book has no price), ContractedCost =
    BilledCost (the invoice is the contract). Quantities: ConsumedQuantity in Tokens,
    PricingQuantity in '1000000 Tokens' (prices are per million tokens). -#}
{%- set money = tokenbook.type_money() -%}
{%- set text = tokenbook.type_text() -%}
with

invoice_lines as (

    select
        lines.*,
        lines.api_key_id is not null
            and lines.api_key_id not in (
                select distinct api_key_id from {{ ref('fct_llm_calls') }}
                where api_key_id is not null
            ) as is_unlogged_key
    from {{ ref('int_vendor_cost_lines') }} as lines
    where lines.billed_cost is not null

),

token_types as (

    select distinct token_type from invoice_lines

),

call_usage as (

    select
        calls.call_date,
        {{ tokenbook.month_start('calls.call_date') }} as call_month,
        calls.provider,
        {{ tokenbook.model_family('coalesce(calls.catalog_model, calls.model)') }} as model,
        token_types.token_type,
        coalesce(calls.feature, '(unattributed)') as feature,
        coalesce(calls.customer_segment, '(unattributed)') as customer_segment,
        coalesce(calls.team, '(unattributed)') as team,
        coalesce(calls.cost_centre, '(unattributed)') as cost_centre,
        {{ tokenbook.gateway_tokens_of_type('token_types.token_type') }} as weight
    from {{ ref('fct_llm_calls') }} as calls
    cross join token_types

),

daily_shares as (

    select call_date, provider, model, token_type, feature, customer_segment, team, cost_centre,
        sum(weight) as weight
    from call_usage
    group by call_date, provider, model, token_type, feature, customer_segment, team, cost_centre
    having sum(weight) > 0

),

monthly_shares as (

    select call_month, provider, model, token_type, feature, customer_segment, team,
        cost_centre, sum(weight) as weight
    from call_usage
    group by call_month, provider, model, token_type, feature, customer_segment, team,
        cost_centre
    having sum(weight) > 0

),

by_day as (

    select
        l.vendor_line_id,
        cast('day' as {{ text }}) as allocation_basis,
        s.feature, s.customer_segment, s.team, s.cost_centre, s.weight
    from invoice_lines as l
    inner join daily_shares as s
        on l.usage_date = s.call_date
        and l.provider = s.provider
        and l.model_family = s.model
        and l.token_type = s.token_type
    where not l.is_unlogged_key

),

by_month as (

    select
        l.vendor_line_id,
        cast('month' as {{ text }}) as allocation_basis,
        s.feature, s.customer_segment, s.team, s.cost_centre, s.weight
    from invoice_lines as l
    inner join monthly_shares as s
        on l.usage_month = s.call_month
        and l.provider = s.provider
        and l.model_family = s.model
        and l.token_type = s.token_type
    where not l.is_unlogged_key
        and l.vendor_line_id not in (select vendor_line_id from by_day)

),

unattributed as (

    select
        l.vendor_line_id,
        cast(case when l.is_unlogged_key then 'unlogged_api_key' else 'unattributed' end
            as {{ text }}) as allocation_basis,
        cast('(unattributed)' as {{ text }}) as feature,
        cast('(unattributed)' as {{ text }}) as customer_segment,
        cast('(unattributed)' as {{ text }}) as team,
        cast('(unattributed)' as {{ text }}) as cost_centre,
        cast(1 as {{ dbt.type_bigint() }}) as weight
    from invoice_lines as l
    where l.vendor_line_id not in (select vendor_line_id from by_day)
        and l.vendor_line_id not in (select vendor_line_id from by_month)

),

buckets as (

    select * from by_day
    union all
    select * from by_month
    union all
    select * from unattributed

),

shared as (

    select
        l.*,
        b.allocation_basis,
        b.feature,
        b.customer_segment,
        b.team,
        b.cost_centre,
        b.weight,
        {{ tokenbook.marts_ratio('b.weight', 'sum(b.weight) over (partition by l.vendor_line_id)') }}
            as allocation_share,
        row_number() over (
            partition by l.vendor_line_id
            order by b.weight desc, b.feature, b.customer_segment, b.team, b.cost_centre
        ) as share_rank,
        {{ tokenbook.alloc_base('l.billed_cost', 'b.weight', 'l.vendor_line_id') }} as billed_base,
        {{ tokenbook.alloc_base('l.effective_cost', 'b.weight', 'l.vendor_line_id') }} as effective_base,
        {{ tokenbook.alloc_base('coalesce(l.list_cost_billed_currency, l.billed_cost)', 'b.weight', 'l.vendor_line_id') }} as list_base,
        {{ tokenbook.alloc_base('l.billed_cost_usd', 'b.weight', 'l.vendor_line_id') }} as billed_usd_base,
        {{ tokenbook.alloc_base('l.effective_cost_usd', 'b.weight', 'l.vendor_line_id') }} as effective_usd_base,
        {{ tokenbook.alloc_base('coalesce(l.list_cost, l.billed_cost_usd)', 'b.weight', 'l.vendor_line_id') }} as list_usd_base,
        {{ tokenbook.alloc_base('coalesce(l.tokens, 0)', 'b.weight', 'l.vendor_line_id') }} as tokens_base
    from invoice_lines as l
    inner join buckets as b
        on l.vendor_line_id = b.vendor_line_id

),

allocated as (

    select
        shared.*,
        {{ tokenbook.alloc_remainder('billed_cost', 'billed_base', 'share_rank', 'vendor_line_id') }} as allocated_billed_cost,
        {{ tokenbook.alloc_remainder('effective_cost', 'effective_base', 'share_rank', 'vendor_line_id') }} as allocated_effective_cost,
        {{ tokenbook.alloc_remainder('coalesce(list_cost_billed_currency, billed_cost)', 'list_base', 'share_rank', 'vendor_line_id') }} as allocated_list_cost,
        {{ tokenbook.alloc_remainder('billed_cost_usd', 'billed_usd_base', 'share_rank', 'vendor_line_id') }} as allocated_billed_cost_usd,
        {{ tokenbook.alloc_remainder('effective_cost_usd', 'effective_usd_base', 'share_rank', 'vendor_line_id') }} as allocated_effective_cost_usd,
        {{ tokenbook.alloc_remainder('coalesce(list_cost, billed_cost_usd)', 'list_usd_base', 'share_rank', 'vendor_line_id') }} as allocated_list_cost_usd,
        {{ tokenbook.alloc_remainder('coalesce(tokens, 0)', 'tokens_base', 'share_rank', 'vendor_line_id') }} as allocated_tokens
    from shared

),

final as (

    select
        {{ dbt.hash(dbt.concat(['vendor_line_id', "'|'", 'feature', "'|'", 'customer_segment',
            "'|'", 'team', "'|'", 'cost_centre'])) }} as focus_line_id,
        cast(allocated_billed_cost as {{ money }}) as billed_cost,
        cast(allocated_effective_cost as {{ money }}) as effective_cost,
        cast(allocated_list_cost as {{ money }}) as list_cost,
        cast(allocated_billed_cost as {{ money }}) as contracted_cost,
        cast(currency as {{ text }}) as billing_currency,
        cast(charge_period_start as {{ dbt.type_timestamp() }}) as charge_period_start,
        cast(charge_period_end as {{ dbt.type_timestamp() }}) as charge_period_end,
        cast(billing_period as {{ dbt.type_timestamp() }}) as billing_period_start,
        cast({{ dbt.dateadd('month', 1, 'billing_period') }} as {{ dbt.type_timestamp() }})
            as billing_period_end,
        cast('Usage' as {{ text }}) as charge_category,
        cast(null as {{ text }}) as charge_class,
        cast({{ dbt.concat(["coalesce(catalog_model, billed_model)", "' '",
            "replace(token_type, '_', ' ')", "' tokens'",
            "case when is_batch then ' (batch)' else '' end"]) }} as {{ text }})
            as charge_description,
        cast('Usage-Based' as {{ text }}) as charge_frequency,
        cast('Standard' as {{ text }}) as pricing_category,
        cast('AI and Machine Learning' as {{ text }}) as service_category,
        cast('Generative AI' as {{ text }}) as service_subcategory,
        cast(case vendor
            when 'openai' then 'OpenAI API' when 'anthropic' then 'Claude API'
            when 'gcp' then 'Vertex AI' when 'aws' then 'Amazon Bedrock'
            when 'azure' then 'Azure OpenAI Service' else vendor end as {{ text }})
            as service_name,
        cast(case vendor
            when 'openai' then 'OpenAI' when 'anthropic' then 'Anthropic'
            when 'gcp' then 'Google Cloud' when 'aws' then 'Amazon Web Services'
            when 'azure' then 'Microsoft' else vendor end as {{ text }}) as provider_name,
        cast(case
            when model_family like 'claude%' then 'Anthropic'
            when model_family like 'gemini%' or model_family like 'gemma%' then 'Google'
            when model_family like 'gpt%' or model_family like 'o1%' or model_family like 'o3%'
                or model_family like 'o4%' then 'OpenAI'
            when model_family like 'llama%' then 'Meta'
            when model_family like 'mistral%' then 'Mistral AI'
            when model_family like 'nova%' or model_family like 'titan%' then 'Amazon'
            else case vendor
                when 'openai' then 'OpenAI' when 'anthropic' then 'Anthropic'
                when 'gcp' then 'Google Cloud' when 'aws' then 'Amazon Web Services'
                when 'azure' then 'Microsoft' else vendor end
        end as {{ text }}) as publisher_name,
        cast(case vendor
            when 'openai' then 'OpenAI' when 'anthropic' then 'Anthropic'
            when 'gcp' then 'Google Cloud' when 'aws' then 'Amazon Web Services'
            when 'azure' then 'Microsoft' else vendor end as {{ text }}) as invoice_issuer_name,
        cast({{ dbt.concat(["provider", "'/'", "coalesce(catalog_model, billed_model)", "'/'",
            "token_type", "case when is_batch then '/batch' else '' end"]) }} as {{ text }})
            as sku_id,
        cast({{ dbt.concat(["coalesce(price_id, " ~ dbt.concat(["provider", "'/'", "billed_model", "'@unpriced'"]) ~ ")",
            "'/'", "token_type", "case when is_batch then '/batch' else '' end"]) }} as {{ text }})
            as sku_price_id,
        cast(token_type as {{ text }}) as sku_meter,
        {{ tokenbook.per_million('allocated_tokens') }} as pricing_quantity,
        cast('1000000 Tokens' as {{ text }}) as pricing_unit,
        cast(list_price_per_mtok as {{ money }}) as list_unit_price,
        cast(allocated_tokens as {{ money }}) as consumed_quantity,
        cast('Tokens' as {{ text }}) as consumed_unit,
        -- provisional invoice: one per vendor x billing account x billing month
        cast({{ dbt.concat(["vendor", "'-'", "coalesce(account_id, 'organization')", "'-'",
            "cast(billing_period as " ~ text ~ ")"]) }} as {{ text }}) as invoice_id,
        cast(region as {{ text }}) as region_id,
        cast(region as {{ text }}) as region_name,
        cast(coalesce(api_key_id, scope_id) as {{ text }}) as resource_id,
        cast(scope_id as {{ text }}) as sub_account_id,
        cast(scope_id as {{ text }}) as sub_account_name,
        cast(coalesce(account_id, {{ dbt.concat(["vendor", "'-organization'"]) }}) as {{ text }})
            as billing_account_id,
        cast(coalesce(account_id, {{ dbt.concat(["vendor", "' organization'"]) }}) as {{ text }})
            as billing_account_name,
        {{ tokenbook.focus_tags_json('feature', 'customer_segment', 'team') }} as tags,
        cast(vendor as {{ text }}) as x_vendor,
        cast(vendor_line_id as {{ text }}) as x_vendor_line_id,
        cast(usage_date as date) as x_usage_date,
        cast(provider as {{ text }}) as x_provider,
        cast(model_family as {{ text }}) as x_model,
        cast(billed_model as {{ text }}) as x_billed_model,
        cast(catalog_model as {{ text }}) as x_catalog_model,
        cast(token_type as {{ text }}) as x_token_type,
        is_batch as x_is_batch,
        cast(api_key_id as {{ text }}) as x_api_key_id,
        cast(feature as {{ text }}) as x_feature,
        cast(customer_segment as {{ text }}) as x_customer_segment,
        cast(team as {{ text }}) as x_team,
        cast(cost_centre as {{ text }}) as x_cost_centre,
        cast(allocation_basis as {{ text }}) as x_allocation_basis,
        allocation_share as x_allocation_share,
        cast(tokens as {{ dbt.type_bigint() }}) as x_line_tokens,
        cast(billed_cost as {{ money }}) as x_line_billed_cost,
        -- converted with the day's rate (tokenbook fx load); null when no rate was loaded
        cast(fx_rate_to_usd as {{ money }}) as x_fx_rate_to_usd,
        cast(allocated_billed_cost_usd as {{ money }}) as x_billed_cost_usd,
        cast(allocated_effective_cost_usd as {{ money }}) as x_effective_cost_usd,
        cast(allocated_list_cost_usd as {{ money }}) as x_list_cost_usd
    from allocated

)

select * from final
