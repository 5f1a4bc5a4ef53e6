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
      prices the WHOLE call at the tier prices (batch: 50% of the tier price)
    - a per-request fee when the map has one
    - the price in force on the call's date (valid_from <= call_date < valid_to)
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

with_price as (

    select
        resolved.*,
        p.price_id,
        p.input_per_mtok,
        p.cache_read_per_mtok,
        p.cache_write_5m_per_mtok,
        p.cache_write_1h_per_mtok,
        p.output_per_mtok,
        p.batch_input_per_mtok,
        p.batch_output_per_mtok,
        p.batch_cache_read_per_mtok,
        p.batch_cache_write_per_mtok,
        p.priority_input_per_mtok,
        p.priority_output_per_mtok,
        p.priority_cache_read_per_mtok,
        p.flex_input_per_mtok,
        p.flex_output_per_mtok,
        p.flex_cache_read_per_mtok,
        p.tier_threshold_tokens,
        p.tier_input_per_mtok,
        p.tier_cache_read_per_mtok,
        p.tier_cache_write_5m_per_mtok,
        p.tier_cache_write_1h_per_mtok,
        p.tier_output_per_mtok,
        p.request_fee_usd
    from resolved
    left join price_book as p
        on resolved.catalog_provider = p.provider
        and resolved.catalog_model = p.model
        and resolved.call_date >= p.valid_from
        and (p.valid_to is null or resolved.call_date < p.valid_to)

),

with_mode as (

    select
        *,
        case
            when is_batch then 'batch'
            when service_tier in ('priority', 'flex') then service_tier
            else 'standard'
        end as pricing_mode,
        coalesce(tier_threshold_tokens is not null and input_tokens > tier_threshold_tokens, false)
            as is_above_tier,
        greatest(input_tokens - cache_read_input_tokens - cache_write_input_tokens, 0)
            as uncached_input_tokens
    from with_price

),

standard_prices as (

    -- the price of each token type outside the context tier, before the service mode
    select
        *,
        input_per_mtok as std_input,
        coalesce(cache_read_per_mtok, input_per_mtok) as std_cache_read,
        case
            when cache_write_ttl = '1h'
                then coalesce(cache_write_1h_per_mtok, cache_write_5m_per_mtok, input_per_mtok)
            else coalesce(cache_write_5m_per_mtok, input_per_mtok)
        end as std_cache_write,
        output_per_mtok as std_output,
        -- the above-tier prices (whole call), falling back to the standard price of a type
        -- the map gives no tier price for
        coalesce(tier_input_per_mtok, input_per_mtok) as tier_input,
        coalesce(tier_cache_read_per_mtok, cache_read_per_mtok, tier_input_per_mtok, input_per_mtok)
            as tier_cache_read,
        case
            when cache_write_ttl = '1h'
                then coalesce(tier_cache_write_1h_per_mtok, cache_write_1h_per_mtok,
                              tier_cache_write_5m_per_mtok, cache_write_5m_per_mtok,
                              tier_input_per_mtok, input_per_mtok)
            else coalesce(tier_cache_write_5m_per_mtok, cache_write_5m_per_mtok,
                          tier_input_per_mtok, input_per_mtok)
        end as tier_cache_write,
        coalesce(tier_output_per_mtok, output_per_mtok) as tier_output
    from with_mode

),

unit_prices as (

    select
        *,
        {%- for kind in ['input', 'cache_read', 'cache_write', 'output'] %}
        {{ tokenbook.to_money(
            "case
                when is_above_tier and pricing_mode = 'batch' then tier_" ~ kind ~ " * " ~ half ~ "
                when is_above_tier then tier_" ~ kind ~ "
                when pricing_mode = 'batch' then " ~ (
                    "coalesce(batch_" ~ kind ~ "_per_mtok, std_" ~ kind ~ " * " ~ half ~ ")"
                    if kind != 'cache_write' else
                    "coalesce(batch_cache_write_per_mtok, std_cache_write * " ~ half ~ ")") ~ "
                when pricing_mode = 'priority' then " ~ (
                    "coalesce(priority_" ~ kind ~ "_per_mtok, std_" ~ kind ~ ")"
                    if kind != 'cache_write' else "std_cache_write") ~ "
                when pricing_mode = 'flex' then " ~ (
                    "coalesce(flex_" ~ kind ~ "_per_mtok, std_" ~ kind ~ ")"
                    if kind != 'cache_write' else "std_cache_write") ~ "
                else std_" ~ kind ~ "
            end") }} as list_{{ kind }}_per_mtok{{ ',' if not loop.last else '' }}
        {%- endfor %}
    from standard_prices

),

with_overrides as (

    select
        unit_prices.*,
        case when by_model.provider is not null then by_model.discount_pct else by_provider.discount_pct end
            as override_discount_pct,
        case when by_model.provider is not null then by_model.input_per_mtok else by_provider.input_per_mtok end
            as override_input_per_mtok,
        case when by_model.provider is not null then by_model.cache_read_per_mtok else by_provider.cache_read_per_mtok end
            as override_cache_read_per_mtok,
        case when by_model.provider is not null then by_model.cache_write_per_mtok else by_provider.cache_write_per_mtok end
            as override_cache_write_per_mtok,
        case when by_model.provider is not null then by_model.output_per_mtok else by_provider.output_per_mtok end
            as override_output_per_mtok
    from unit_prices
    left join overrides as by_model
        on unit_prices.catalog_provider = by_model.provider
        and unit_prices.catalog_model = by_model.model
        and unit_prices.call_date >= by_model.valid_from
        and (by_model.valid_to is null or unit_prices.call_date < by_model.valid_to)
    left join overrides as by_provider
        on unit_prices.catalog_provider = by_provider.provider
        and by_provider.model = '*'
        and unit_prices.call_date >= by_provider.valid_from
        and (by_provider.valid_to is null or unit_prices.call_date < by_provider.valid_to)

),

costed as (

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
        end as list_cost_usd,
        case when price_id is not null then
            {{ tokenbook.per_million(
                "uncached_input_tokens * " ~ tokenbook.effective_price('input') ~ "
                + cache_read_input_tokens * " ~ tokenbook.effective_price('cache_read') ~ "
                + cache_write_input_tokens * " ~ tokenbook.effective_price('cache_write') ~ "
                + output_tokens * " ~ tokenbook.effective_price('output')) }}
            + coalesce(request_fee_usd, 0)
        end as effective_cost_usd
    from with_overrides

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
