{#- One row per feature x provider x model x ISO week (Monday).
    model is the price-book model (catalog_model), or the logged model when it is unresolved.
    The sums of int_llm_calls_cache_classified's per-call classification: what "could hit",
    cache hit rate, dollars saved and dollars still to save mean is in that model's header
    (and the docs blocks `marts_could_hit`, `marts_cache_hit_rate`). -#}

with calls_valued as (

    select
        feature,
        provider,
        model,
        {{ week_start('call_date') }} as week_start,
        input_tokens,
        cache_read_input_tokens,
        cache_write_input_tokens,
        has_cache_read,
        could_hit,
        could_hit_and_read,
        missed_cache_tokens,
        cache_savings_usd,
        missed_cache_savings_usd
    from {{ ref('int_llm_calls_cache_classified') }}

),

weekly as (

    select
        feature,
        provider,
        model,
        week_start,
        count(*) as calls,
        sum(input_tokens) as input_tokens,
        sum(cache_read_input_tokens) as cache_read_input_tokens,
        sum(cache_write_input_tokens) as cache_write_input_tokens,
        sum(has_cache_read) as calls_with_cache_read,
        sum(could_hit) as could_hit_calls,
        sum(could_hit_and_read) as could_hit_calls_with_cache_read,
        sum(missed_cache_tokens) as missed_cache_tokens,
        coalesce(sum(cache_savings_usd), 0) as cache_savings_usd,
        coalesce(sum(missed_cache_savings_usd), 0) as missed_cache_savings_usd
    from calls_valued
    group by feature, provider, model, week_start

),

final as (

    select
        feature,
        provider,
        model,
        week_start,
        {{ marts_count('calls') }} as calls,
        {{ marts_count('input_tokens') }} as input_tokens,
        {{ marts_count('cache_read_input_tokens') }} as cache_read_input_tokens,
        {{ marts_count('cache_write_input_tokens') }} as cache_write_input_tokens,
        {{ marts_ratio('cache_read_input_tokens', 'input_tokens') }} as cache_read_share,
        {{ marts_count('calls_with_cache_read') }} as calls_with_cache_read,
        {{ marts_count('could_hit_calls') }} as could_hit_calls,
        {{ marts_count('could_hit_calls_with_cache_read') }} as could_hit_calls_with_cache_read,
        {{ marts_ratio('could_hit_calls_with_cache_read', 'could_hit_calls') }} as cache_hit_rate,
        {{ marts_count('missed_cache_tokens') }} as missed_cache_tokens,
        {{ to_money('cache_savings_usd') }} as cache_savings_usd,
        {{ to_money('missed_cache_savings_usd') }} as missed_cache_savings_usd,
        cast('USD' as {{ type_text() }}) as currency
    from weekly

)

select * from final
