{#- One row per call (fct_llm_calls' call_id): whether it could hit the prompt cache, whether it
    did, and the dollars the cache saved or could still save. mart_cache_efficiency sums it by
    feature x provider x model x ISO week; the semantic model call_cache re-aggregates it at
    any grain. model is the price-book model (catalog_model), or the logged model when it is
    unresolved.

    Definitions (the docs blocks `marts_could_hit`, `marts_cache_hit_rate`):
    - a call "could hit" the prompt cache when an earlier call (by called_at, then call_id) of
      the same feature x provider x model carried the same prompt_prefix_hash, at any time
      before it (not only in the same week);
    - cache hit rate = could-hit calls that read from the cache / could-hit calls;
    - dollars saved = cache-read tokens x (input price - cache-read price) of the price row
      the call was priced with (list prices);
    - dollars still to save = for could-hit calls that read nothing from the cache, the
      estimated prefix tokens x (input price - cache-read price). The prefix size of a hash is
      the most tokens ever read from cache for it, or, when it was never cached, the fewest
      input tokens of any call carrying it (an upper bound: a prefix is no longer than the
      shortest prompt that starts with it). Cache-write premiums are not netted off. -#}

with calls as (

    select
        call_id,
        called_at,
        call_date,
        coalesce(feature, '(unattributed)') as feature,
        coalesce(provider, '(unknown)') as provider,
        coalesce(catalog_model, model, '(unknown)') as model,
        price_id,
        coalesce(input_tokens, 0) as input_tokens,
        coalesce(cache_read_input_tokens, 0) as cache_read_input_tokens,
        coalesce(cache_write_input_tokens, 0) as cache_write_input_tokens,
        prompt_prefix_hash,
        coalesce(pricing_mode, 'standard') as pricing_mode,
        coalesce(is_above_tier, false) as is_above_tier
    from {{ ref('fct_llm_calls') }}

),

prices as (

    -- the price of an input token and of a cache-read token in the price row, per mode;
    -- a model without a cache-read price saves nothing (read price = input price)
    select
        price_id,
        input_per_mtok,
        coalesce(cache_read_per_mtok, input_per_mtok) as cache_read_per_mtok,
        coalesce(tier_input_per_mtok, input_per_mtok) as tier_input_per_mtok,
        coalesce(tier_cache_read_per_mtok, cache_read_per_mtok, tier_input_per_mtok, input_per_mtok)
            as tier_cache_read_per_mtok,
        batch_input_per_mtok,
        batch_cache_read_per_mtok,
        priority_input_per_mtok,
        priority_cache_read_per_mtok,
        flex_input_per_mtok,
        flex_cache_read_per_mtok
    from {{ ref('int_price_book') }}

),

calls_priced as (

    -- input minus cache-read price per million tokens, in the call's pricing mode and
    -- context tier, as int_llm_calls_priced prices the call (batch halves when the map has
    -- no batch price); null for unpriced calls
    select
        calls.*,
        case
            when calls.is_above_tier and calls.pricing_mode = 'batch'
                then (prices.tier_input_per_mtok - prices.tier_cache_read_per_mtok) * {{ tokenbook.to_money("0.5") }}
            when calls.is_above_tier
                then prices.tier_input_per_mtok - prices.tier_cache_read_per_mtok
            when calls.pricing_mode = 'batch'
                then coalesce(prices.batch_input_per_mtok, prices.input_per_mtok * {{ tokenbook.to_money("0.5") }})
                    - coalesce(prices.batch_cache_read_per_mtok,
                               prices.cache_read_per_mtok * {{ tokenbook.to_money("0.5") }})
            when calls.pricing_mode = 'priority'
                then coalesce(prices.priority_input_per_mtok, prices.input_per_mtok)
                    - coalesce(prices.priority_cache_read_per_mtok, prices.cache_read_per_mtok)
            when calls.pricing_mode = 'flex'
                then coalesce(prices.flex_input_per_mtok, prices.input_per_mtok)
                    - coalesce(prices.flex_cache_read_per_mtok, prices.cache_read_per_mtok)
            else prices.input_per_mtok - prices.cache_read_per_mtok
        end as saving_per_mtok
    from calls
    left join prices
        on calls.price_id = prices.price_id

),

calls_in_prefix_order as (

    -- one pass over each prefix's calls: its order, and what it tells about the prefix size
    select
        calls_priced.*,
        row_number() over (
            partition by feature, provider, model, prompt_prefix_hash
            order by called_at, call_id
        ) as prefix_seen_order,
        max(cache_read_input_tokens) over (
            partition by feature, provider, model, prompt_prefix_hash
        ) as prefix_max_cache_read_tokens,
        min(input_tokens) over (
            partition by feature, provider, model, prompt_prefix_hash
        ) as prefix_min_input_tokens
    from calls_priced

),

calls_classified as (

    -- the call's classification, beside what the valuation below needs
    select
        calls_in_prefix_order.*,
        case when cache_read_input_tokens > 0 then 1 else 0 end as has_cache_read,
        case
            when prompt_prefix_hash is not null and prefix_seen_order > 1 then 1
            else 0
        end as could_hit,
        case
            when prefix_max_cache_read_tokens > 0 then prefix_max_cache_read_tokens
            else prefix_min_input_tokens
        end as estimated_prefix_tokens
    from calls_in_prefix_order

),

final as (

    -- the output columns, listed once
    select
        call_id,
        call_date,
        feature,
        provider,
        model,
        input_tokens,
        cache_read_input_tokens,
        cache_write_input_tokens,
        has_cache_read,
        could_hit,
        could_hit * has_cache_read as could_hit_and_read,
        case
            when could_hit = 1 and has_cache_read = 0
                then least(input_tokens, estimated_prefix_tokens)
            else 0
        end as missed_cache_tokens,
        {{ tokenbook.per_million('cache_read_input_tokens * saving_per_mtok') }} as cache_savings_usd,
        case
            when could_hit = 1 and has_cache_read = 0
                then {{ tokenbook.per_million('least(input_tokens, estimated_prefix_tokens) * saving_per_mtok') }}
            else 0
        end as missed_cache_savings_usd
    from calls_classified

)

select * from final
