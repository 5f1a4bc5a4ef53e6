{#- One row per raw call record (call attempt x load; fct_llm_calls keeps the latest load),
    with its canonical provider, catalogue model, the price row in force on its date, list
    and effective cost, and attribution (feature / segment / team / cost centre).

    Pricing rules (USD per 1M tokens in the price book; see dbt_project/README.md):
    - uncached input = input - cache read - cache write, at the input price
    - cache read at the cache-read price; cache write at the 5-minute or, when
      cache_write_ttl = '1h', the 1-hour write price (a price the map lacks falls back to the
      input price: the vendor then bills those tokens as plain input)
    - output (reasoning included) at the output price
    - batch calls at the batch prices, or 50% of the standard price where the map has none
    - priority / flex service tiers at their prices where the map has them, else standard
    - input above the model's context tier (input_tokens > threshold, cache tokens included)
      prices the WHOLE call at the tier prices of its mode (batch / priority / flex tier
      prices where the map has them; else batch = 50% of the tier price, others = tier price)
    - a per-request fee when the map has one
    - the price in force on the call's date (valid_from <= call_date < valid_to); a call dated
      before the first version of its model's price takes the earliest version, marked
      price_basis = 'earliest_known' (else 'in_force')
    - calls with billed tokens are costed whatever their status (failed calls included)
    - an unresolved model or a date with no price in force: null cost, is_priced = false
    Effective cost applies price_overrides (model-specific beats '*'): explicit prices replace
    list prices, otherwise list x (1 - discount_pct / 100). -#}
{%- set half = "cast(0.5 as " ~ tokenbook.type_money() ~ ")" -%}
with

calls as (

    select * from {{ ref('stg_gateway__calls') }}

),

resolution as (

    select * from {{ ref('int_model_resolution') }}

),

price_book as (

    select * from {{ ref('int_price_book') }}

),

overrides as (

    select
        lower(provider) as provider,
        lower(model) as model,
        valid_from,
        valid_to,
        discount_pct,
        input_per_mtok,
        cache_read_per_mtok,
        cache_write_per_mtok,
        output_per_mtok
    from {{ ref('price_overrides') }}

),

features as (

    select feature, owner_team, cost_centre from {{ ref('features') }}

),

teams as (

    select team, cost_centre from {{ ref('teams') }}

),

resolved as (

    select
        calls.*,
        resolution.provider,
        resolution.catalog_provider,
        resolution.catalog_model,
        resolution.resolution_rule
    from calls
    left join resolution
        on coalesce(calls.provider_raw, '') = coalesce(resolution.provider_raw, '')
        and coalesce(calls.model, '') = coalesce(resolution.model_raw, '')

),

prices as (

    -- Each price row resolved into the unit price of every token kind in every service mode,
    -- once per price row (hundreds of rows), so the per-call work is column picks and one
    -- multiply-add per token kind. A price the map lacks falls back as documented above.
    select
        price_id,
        provider,
        model,
        valid_from,
        coalesce(applies_from, valid_from) as applies_from,
        valid_to,
        tier_threshold_tokens,
        request_fee_usd,
        std_input,
        std_cache_read,
        std_cache_write_5m,
        std_cache_write_1h,
        std_output,
        coalesce(batch_input_per_mtok, {{ tokenbook.to_money('std_input * ' ~ half) }}) as batch_input,
        coalesce(batch_cache_read_per_mtok, {{ tokenbook.to_money('std_cache_read * ' ~ half) }}) as batch_cache_read,
        coalesce(batch_cache_write_per_mtok, {{ tokenbook.to_money('std_cache_write_5m * ' ~ half) }}) as batch_cache_write_5m,
        {{ tokenbook.to_money('std_cache_write_1h * ' ~ half) }} as batch_cache_write_1h,
        coalesce(batch_output_per_mtok, {{ tokenbook.to_money('std_output * ' ~ half) }}) as batch_output,
        coalesce(priority_input_per_mtok, std_input) as priority_input,
        coalesce(priority_cache_read_per_mtok, std_cache_read) as priority_cache_read,
        coalesce(priority_output_per_mtok, std_output) as priority_output,
        coalesce(flex_input_per_mtok, std_input) as flex_input,
        coalesce(flex_cache_read_per_mtok, std_cache_read) as flex_cache_read,
        coalesce(flex_output_per_mtok, std_output) as flex_output,
        tier_input,
        tier_cache_read,
        tier_cache_write_5m,
        tier_cache_write_1h,
        tier_output,
        coalesce(tier_batch_input_per_mtok, {{ tokenbook.to_money('tier_input * ' ~ half) }}) as tier_batch_input,
        {{ tokenbook.to_money('tier_cache_read * ' ~ half) }} as tier_batch_cache_read,
        {{ tokenbook.to_money('tier_cache_write_5m * ' ~ half) }} as tier_batch_cache_write_5m,
        {{ tokenbook.to_money('tier_cache_write_1h * ' ~ half) }} as tier_batch_cache_write_1h,
        coalesce(tier_batch_output_per_mtok, {{ tokenbook.to_money('tier_output * ' ~ half) }}) as tier_batch_output,
        coalesce(tier_priority_input_per_mtok, tier_input) as tier_priority_input,
        coalesce(tier_priority_cache_read_per_mtok, tier_cache_read) as tier_priority_cache_read,
        coalesce(tier_priority_output_per_mtok, tier_output) as tier_priority_output,
        coalesce(tier_flex_input_per_mtok, tier_input) as tier_flex_input,
        tier_cache_read as tier_flex_cache_read,
        coalesce(tier_flex_output_per_mtok, tier_output) as tier_flex_output
    from (
        select
            *,
            input_per_mtok as std_input,
            coalesce(cache_read_per_mtok, input_per_mtok) as std_cache_read,
            coalesce(cache_write_5m_per_mtok, input_per_mtok) as std_cache_write_5m,
            coalesce(cache_write_1h_per_mtok, cache_write_5m_per_mtok, input_per_mtok)
                as std_cache_write_1h,
            output_per_mtok as std_output,
            coalesce(tier_input_per_mtok, input_per_mtok) as tier_input,
            coalesce(tier_cache_read_per_mtok, cache_read_per_mtok, tier_input_per_mtok,
                     input_per_mtok) as tier_cache_read,
            coalesce(tier_cache_write_5m_per_mtok, cache_write_5m_per_mtok, tier_input_per_mtok,
                     input_per_mtok) as tier_cache_write_5m,
            coalesce(tier_cache_write_1h_per_mtok, cache_write_1h_per_mtok,
                     tier_cache_write_5m_per_mtok, cache_write_5m_per_mtok, tier_input_per_mtok,
                     input_per_mtok) as tier_cache_write_1h,
            coalesce(tier_output_per_mtok, output_per_mtok) as tier_output
        from price_book
    ) as book

),

negotiated as (

    -- the multiplier of each override computed once: 15 (% off) -> 0.85
    select
        *,
        {{ tokenbook.pct_remaining('coalesce(discount_pct, 0)') }} as remaining_share
    from overrides

),

with_price as (

    select
        resolved.*,
        p.price_id,
        p.tier_threshold_tokens,
        p.request_fee_usd,
        case
            when resolved.is_batch then 'batch'
            when resolved.service_tier in ('priority', 'flex') then resolved.service_tier
            else 'standard'
        end as pricing_mode,
        coalesce(p.tier_threshold_tokens is not null
                 and resolved.input_tokens > p.tier_threshold_tokens, false) as is_above_tier,
        greatest(resolved.input_tokens - resolved.cache_read_input_tokens
                 - resolved.cache_write_input_tokens, 0) as uncached_input_tokens,
        {%- set modes = [('batch', 'batch_'), ('priority', 'priority_'), ('flex', 'flex_')] %}
        {%- for kind in ['input', 'cache_read', 'cache_write', 'output'] %}
        {%- set col = "case when resolved.cache_write_ttl = '1h' then p.{m}cache_write_1h else p.{m}cache_write_5m end" if kind == 'cache_write' else 'p.{m}' ~ kind %}
        case
            when p.tier_threshold_tokens is not null and resolved.input_tokens > p.tier_threshold_tokens
                then case
                    when resolved.is_batch then {{ col | replace('{m}', 'tier_batch_') }}
                    {%- if kind != 'cache_write' %}
                    when resolved.service_tier = 'priority' then {{ col | replace('{m}', 'tier_priority_') }}
                    when resolved.service_tier = 'flex' then {{ col | replace('{m}', 'tier_flex_') }}
                    {%- endif %}
                    else {{ col | replace('{m}', 'tier_') }}
                end
            when resolved.is_batch then {{ col | replace('{m}', 'batch_') }}
            {%- if kind != 'cache_write' %}
            when resolved.service_tier = 'priority' then {{ col | replace('{m}', 'priority_') }}
            when resolved.service_tier = 'flex' then {{ col | replace('{m}', 'flex_') }}
            {%- endif %}
            else {{ col | replace('{m}', 'std_') }}
        end as list_{{ kind }}_per_mtok,
        {%- endfor %}
        p.valid_from as price_valid_from,
        case
            when p.price_id is null then null
            when resolved.call_date < p.valid_from then 'earliest_known'
            else 'in_force'
        end as price_basis
    from resolved
    left join prices as p
        on resolved.catalog_provider = p.provider
        and resolved.catalog_model = p.model
        and resolved.call_date >= p.applies_from
        and (p.valid_to is null or resolved.call_date < p.valid_to)

),

with_overrides as (

    select
        with_price.*,
        coalesce(by_model.provider, by_provider.provider) is not null as has_override,
        case when by_model.provider is not null then by_model.remaining_share else by_provider.remaining_share end
            as override_remaining_share,
        case when by_model.provider is not null then by_model.input_per_mtok else by_provider.input_per_mtok end
            as override_input_per_mtok,
        case when by_model.provider is not null then by_model.cache_read_per_mtok else by_provider.cache_read_per_mtok end
            as override_cache_read_per_mtok,
        case when by_model.provider is not null then by_model.cache_write_per_mtok else by_provider.cache_write_per_mtok end
            as override_cache_write_per_mtok,
        case when by_model.provider is not null then by_model.output_per_mtok else by_provider.output_per_mtok end
            as override_output_per_mtok
    from with_price
    left join negotiated as by_model
        on with_price.catalog_provider = by_model.provider
        and with_price.catalog_model = by_model.model
        and with_price.call_date >= by_model.valid_from
        and (by_model.valid_to is null or with_price.call_date < by_model.valid_to)
    left join negotiated as by_provider
        on with_price.catalog_provider = by_provider.provider
        and by_provider.model = '*'
        and with_price.call_date >= by_provider.valid_from
        and (by_provider.valid_to is null or with_price.call_date < by_provider.valid_to)

),

list_costed as (

    select
        *,
        price_id is not null as is_priced,
        case when price_id is not null then
            {{ tokenbook.per_million(
                "uncached_input_tokens * list_input_per_mtok
                + cache_read_input_tokens * list_cache_read_per_mtok
                + cache_write_input_tokens * list_cache_write_per_mtok
                + output_tokens * list_output_per_mtok") }}
            + coalesce(request_fee_usd, 0)
        end as list_cost_usd
    from with_overrides

),

costed as (

    select
        *,
        case
            when price_id is null then null
            when not has_override then list_cost_usd
            else
                {{ tokenbook.per_million(
                    "uncached_input_tokens * " ~ tokenbook.effective_price('input') ~ "
                    + cache_read_input_tokens * " ~ tokenbook.effective_price('cache_read') ~ "
                    + cache_write_input_tokens * " ~ tokenbook.effective_price('cache_write') ~ "
                    + output_tokens * " ~ tokenbook.effective_price('output')) }}
                + coalesce(request_fee_usd, 0)
        end as effective_cost_usd
    from list_costed

),

attributed as (

    select
        costed.*,
        coalesce(costed.team, features.owner_team) as team_resolved,
        features.cost_centre as feature_cost_centre
    from costed
    left join features
        on costed.feature = features.feature

),

final as (

    select
        attributed.call_id,
        attributed.trace_id,
        attributed.attempt,
        attributed.called_at,
        attributed.call_date,
        {{ tokenbook.week_start('attributed.call_date') }} as call_week,
        {{ tokenbook.month_start('attributed.call_date') }} as call_month,
        coalesce(attributed.provider, attributed.provider_raw) as provider,
        attributed.provider_raw,
        attributed.model,
        attributed.catalog_model,
        attributed.resolution_rule,
        attributed.price_id,
        cast(attributed.price_basis as {{ tokenbook.type_text() }}) as price_basis,
        coalesce(attributed.feature, '(unattributed)') as feature,
        coalesce(attributed.customer_segment, '(unattributed)') as customer_segment,
        coalesce(attributed.team_resolved, '(unattributed)') as team,
        coalesce(teams.cost_centre, attributed.feature_cost_centre, '(unattributed)') as cost_centre,
        attributed.customer_id,
        attributed.environment,
        attributed.request_class,
        attributed.api_key_id,
        attributed.project_id,
        attributed.input_tokens,
        attributed.uncached_input_tokens,
        attributed.cache_read_input_tokens,
        attributed.cache_write_input_tokens,
        attributed.cache_write_ttl,
        attributed.output_tokens,
        attributed.reasoning_tokens,
        attributed.is_batch,
        attributed.service_tier,
        attributed.pricing_mode,
        attributed.is_above_tier,
        attributed.status,
        attributed.status not in ('ok', 'success') as is_error,
        attributed.outcome,
        attributed.quality_score,
        attributed.latency_ms,
        attributed.prompt_template_id,
        attributed.prompt_prefix_hash,
        attributed.is_priced,
        attributed.list_cost_usd,
        attributed.effective_cost_usd,
        cast('USD' as {{ tokenbook.type_text() }}) as currency,
        attributed.gateway_cost_usd,
        attributed.load_date,
        attributed.source_format,
        attributed.source_line
    from attributed
    left join teams
        on attributed.team_resolved = teams.team

)

select * from final
