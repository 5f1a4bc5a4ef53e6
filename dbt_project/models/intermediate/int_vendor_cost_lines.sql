{#- One row per vendor x usage day x provider x billed model x token type x batch x
    account / project-or-workspace / region x API key: what the invoice bills, in USD.

    - LLM lines only (provider not null); other cloud services stay in stg_billing__lines.
    - OpenAI and Anthropic send usage (tokens, per API key) and cost (per project/workspace) as
      separate records: they join on the group (vendor, day, scope, model, token type, batch)
      and the group's cost is split over its API keys by tokens, the rounding remainder on the
      largest key, so the cost of a group is kept exactly. A cost with no usage record stays as
      its own row (api_key_id null, no tokens); a usage with no cost keeps billed_cost null.
    - Model: `billed_model` as billed; `catalog_model` the price-book key it resolves to (the
      billed id itself in the provider's catalogue, else its family), null when unknown;
      `model_family` the key the reconciliation joins on (same normalisation as the gateway).
    - Money: billed_cost (the invoice line), effective_cost (after credits), credits, in the
      billed `currency`, as billed; list_cost (the price book's list unit price in force that
      day x billed tokens, USD). Other currencies: `*_usd` = the billed amounts x the day's
      rate from `tokenbook fx load` (stg_fx__rates; the last rate of the 7 days before when
      the day has none); no rate: `*_usd` null and `is_converted` false (listed in
      mart_unconverted_billing), never counted as dollars. `reporting_currency`
      (var `reporting_currency`, default USD) and `*_reporting` convert on to it. -#}
{%- set group_cols = ['vendor', 'usage_date', 'charge_period_start', 'charge_period_end',
    'billing_period', 'account_id', 'scope_id', 'provider', 'billed_model', 'token_type',
    'is_batch', 'region'] -%}
{%- set text = tokenbook.type_text() -%}
with

llm_lines as (

    select
        *,
        coalesce(project_id, workspace_id) as scope_id
    from {{ ref('stg_billing__lines') }}
    where provider is not null

),

usage_rows as (

    select
        {{ tokenbook.billing_group_key('l', group_cols) }} as group_key,
        {%- for c in group_cols %}
        l.{{ c }},
        {%- endfor %}
        l.api_key_id,
        max(l.project_id) as project_id,
        max(l.workspace_id) as workspace_id,
        max(l.service_tier) as service_tier,
        max(l.sku) as sku,
        max(l.unit) as unit,
        max(l.currency) as currency,
        sum(l.quantity) as quantity,
        sum(l.tokens) as tokens,
        sum(l.billed_cost) as billed_cost,
        sum(l.effective_cost) as effective_cost,
        sum(l.credits) as credits,
        max(l.unit_price) as billed_unit_price,
        count(*) as source_lines,
        min(l.source_file) as source_file
    from llm_lines as l
    where l.record_type in ('usage', 'usage_cost')
    group by {{ tokenbook.billing_group_key('l', group_cols) }}, {% for c in group_cols %}l.{{ c }}, {% endfor %}l.api_key_id

),

cost_groups as (

    select
        {{ tokenbook.billing_group_key('l', group_cols) }} as group_key,
        {%- for c in group_cols %}
        l.{{ c }},
        {%- endfor %}
        max(l.project_id) as project_id,
        max(l.workspace_id) as workspace_id,
        max(l.service_tier) as service_tier,
        max(l.sku) as sku,
        max(l.currency) as currency,
        sum(l.billed_cost) as billed_cost,
        sum(l.effective_cost) as effective_cost,
        sum(l.credits) as credits,
        count(*) as source_lines,
        min(l.source_file) as source_file
    from llm_lines as l
    where l.record_type = 'cost'
    group by {{ tokenbook.billing_group_key('l', group_cols) }}{% for c in group_cols %}, l.{{ c }}{% endfor %}

),

usage_with_cost as (

    select
        u.*,
        c.billed_cost as group_billed_cost,
        c.effective_cost as group_effective_cost,
        c.credits as group_credits,
        c.currency as group_currency,
        c.sku as cost_sku,
        coalesce(c.source_lines, 0) as cost_source_lines,
        row_number() over (
            partition by u.group_key
            order by coalesce(u.tokens, 0) desc, coalesce(u.api_key_id, '')
        ) as share_rank,
        {{ tokenbook.alloc_base('c.billed_cost', 'coalesce(u.tokens, 0)', 'u.group_key') }}
            as billed_base,
        {{ tokenbook.alloc_base('c.effective_cost', 'coalesce(u.tokens, 0)', 'u.group_key') }}
            as effective_base,
        {{ tokenbook.alloc_base('c.credits', 'coalesce(u.tokens, 0)', 'u.group_key') }}
            as credits_base
    from usage_rows as u
    left join cost_groups as c
        on u.group_key = c.group_key

),

usage_lines as (

    select
        {%- for c in group_cols %}
        {{ c }},
        {%- endfor %}
        api_key_id,
        project_id,
        workspace_id,
        service_tier,
        coalesce(cost_sku, sku) as sku,
        unit,
        quantity,
        cast(tokens as {{ dbt.type_bigint() }}) as tokens,
        coalesce(billed_cost, {{ tokenbook.alloc_remainder('group_billed_cost', 'billed_base', 'share_rank', 'group_key') }}) as billed_cost,
        coalesce(effective_cost, {{ tokenbook.alloc_remainder('group_effective_cost', 'effective_base', 'share_rank', 'group_key') }}) as effective_cost,
        coalesce(credits, {{ tokenbook.alloc_remainder('group_credits', 'credits_base', 'share_rank', 'group_key') }}) as credits,
        billed_unit_price,
        coalesce(currency, group_currency) as currency,
        source_lines + case when share_rank = 1 then cost_source_lines else 0 end as source_lines,
        source_file
    from usage_with_cost

),

cost_only_lines as (

    select
        {%- for c in group_cols %}
        c.{{ c }},
        {%- endfor %}
        cast(null as {{ text }}) as api_key_id,
        c.project_id,
        c.workspace_id,
        c.service_tier,
        c.sku,
        cast(null as {{ text }}) as unit,
        cast(null as {{ tokenbook.type_money() }}) as quantity,
        cast(null as {{ dbt.type_bigint() }}) as tokens,
        c.billed_cost,
        c.effective_cost,
        c.credits,
        cast(null as {{ tokenbook.type_money() }}) as billed_unit_price,
        c.currency,
        c.source_lines,
        c.source_file
    from cost_groups as c
    where c.group_key not in (select u.group_key from usage_rows as u)

),

vendor_lines as (

    select * from usage_lines
    union all
    select * from cost_only_lines

),

catalogue as (

    select distinct provider, model
    from {{ ref('int_price_book') }}

),

resolved as (

    select
        v.*,
        {{ tokenbook.model_family('v.billed_model') }} as model_family,
        coalesce(exact.model, family.model) as catalog_model
    from vendor_lines as v
    left join catalogue as exact
        on v.provider = exact.provider
        and lower(v.billed_model) = exact.model
    left join catalogue as family
        on v.provider = family.provider
        and {{ tokenbook.model_family('v.billed_model') }} = family.model

),

priced as (

    select
        r.*,
        p.price_id,
        case
            when r.token_type = 'input' and r.is_batch then coalesce(p.batch_input_per_mtok, p.input_per_mtok)
            when r.token_type = 'input' then p.input_per_mtok
            when r.token_type = 'output' and r.is_batch then coalesce(p.batch_output_per_mtok, p.output_per_mtok)
            when r.token_type = 'output' then p.output_per_mtok
            when r.token_type = 'cache_read' and r.is_batch then coalesce(p.batch_cache_read_per_mtok, p.cache_read_per_mtok)
            when r.token_type = 'cache_read' then p.cache_read_per_mtok
            when r.token_type = 'cache_write_5m' and r.is_batch then coalesce(p.batch_cache_write_per_mtok, p.cache_write_5m_per_mtok)
            when r.token_type = 'cache_write_5m' then p.cache_write_5m_per_mtok
            when r.token_type = 'cache_write_1h' then coalesce(p.cache_write_1h_per_mtok, p.cache_write_5m_per_mtok)
        end as list_price_per_mtok
    from resolved as r
    left join {{ ref('int_price_book') }} as p
        on r.provider = p.provider
        and r.catalog_model = p.model
        and cast(r.usage_date as date) >= p.valid_from
        and (p.valid_to is null or cast(r.usage_date as date) < p.valid_to)

),

fx as (

    select * from {{ ref('stg_fx__rates') }}

),

converted as (

    select
        priced.*,
        case
            when priced.tokens is not null and priced.list_price_per_mtok is not null
                then {{ tokenbook.per_million('priced.tokens * priced.list_price_per_mtok') }}
        end as list_cost,
        case
            when coalesce(priced.currency, 'USD') = 'USD' then cast(1 as {{ tokenbook.type_money() }})
            else line_rate.rate_to_usd
        end as fx_rate_to_usd,
        case
            when '{{ var("reporting_currency", "USD") }}' = 'USD' then cast(1 as {{ tokenbook.type_money() }})
            else reporting_rate.rate_to_usd
        end as reporting_rate_to_usd
    from priced
    left join fx as line_rate
        on coalesce(priced.currency, 'USD') = line_rate.currency
        and cast(priced.usage_date as date) >= line_rate.rate_date
        and cast(priced.usage_date as date) < line_rate.valid_to
    left join fx as reporting_rate
        on reporting_rate.currency = '{{ var("reporting_currency", "USD") }}'
        and cast(priced.usage_date as date) >= reporting_rate.rate_date
        and cast(priced.usage_date as date) < reporting_rate.valid_to

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            "vendor", "'|'", "cast(usage_date as " ~ text ~ ")", "'|'",
            "coalesce(account_id, '~')", "'|'", "coalesce(scope_id, '~')", "'|'",
            "coalesce(region, '~')", "'|'", "provider", "'|'", "billed_model", "'|'",
            "token_type", "'|'", "cast(is_batch as " ~ text ~ ")", "'|'",
            "coalesce(api_key_id, '~')", "'|'", "cast(charge_period_start as " ~ text ~ ")"])) }}
            as vendor_line_id,
        vendor,
        cast(usage_date as date) as usage_date,
        {{ tokenbook.month_start('usage_date') }} as usage_month,
        charge_period_start,
        charge_period_end,
        cast(billing_period as date) as billing_period,
        account_id,
        scope_id,
        project_id,
        workspace_id,
        api_key_id,
        region,
        provider,
        billed_model,
        catalog_model,
        model_family,
        catalog_model is not null as is_priced,
        price_id,
        sku,
        token_type,
        is_batch,
        service_tier,
        quantity,
        unit,
        cast(tokens as {{ dbt.type_bigint() }}) as tokens,
        {{ tokenbook.to_money('billed_cost') }} as billed_cost,
        {{ tokenbook.to_money('coalesce(effective_cost, billed_cost)') }} as effective_cost,
        {{ tokenbook.to_money('credits') }} as credits,
        {{ tokenbook.to_money('list_price_per_mtok') }} as list_price_per_mtok,
        list_cost,
        coalesce(currency, 'USD') as currency,
        coalesce(currency, 'USD') = 'USD' as is_usd,
        fx_rate_to_usd is not null as is_converted,
        fx_rate_to_usd,
        -- the list cost (USD) in the billed currency, for FOCUS ListCost
        case
            when coalesce(currency, 'USD') = 'USD' then list_cost
            when fx_rate_to_usd is not null
                then cast(list_cost / fx_rate_to_usd as {{ tokenbook.type_money() }})
        end as list_cost_billed_currency,
        {{ tokenbook.fx_convert('billed_cost', 'fx_rate_to_usd') }} as billed_cost_usd,
        {{ tokenbook.fx_convert('coalesce(effective_cost, billed_cost)', 'fx_rate_to_usd') }}
            as effective_cost_usd,
        {{ tokenbook.fx_convert('credits', 'fx_rate_to_usd') }} as credits_usd,
        cast('{{ var("reporting_currency", "USD") }}' as {{ text }}) as reporting_currency,
        cast({{ tokenbook.fx_convert('billed_cost', 'fx_rate_to_usd') }} / reporting_rate_to_usd
            as {{ tokenbook.type_money() }}) as billed_cost_reporting,
        cast({{ tokenbook.fx_convert('coalesce(effective_cost, billed_cost)', 'fx_rate_to_usd') }}
            / reporting_rate_to_usd as {{ tokenbook.type_money() }}) as effective_cost_reporting,
        cast(source_lines as {{ dbt.type_bigint() }}) as source_lines,
        source_file
    from converted

)

select * from final
