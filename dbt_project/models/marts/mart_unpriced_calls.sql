{#- One row per provider x model (as logged) x call date with calls that could not be priced:
    the model is not in the price book (add an alias to model_aliases.csv of your configuration
    folder, see README "Your organisation", or load a
    newer price map) or no price was in force on that date. Their cost is null, never 0. -#}
with

unpriced as (

    select * from {{ ref('fct_llm_calls') }}
    where not is_priced

),

final as (

    select
        provider,
        model,
        call_date,
        max(catalog_model) as catalog_model,
        case
            when max(catalog_model) is null then 'model not in price book'
            else 'no price in force on this date'
        end as reason,
        count(*) as calls,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(input_tokens + output_tokens) as total_tokens,
        sum(gateway_cost_usd) as gateway_cost_usd
    from unpriced
    group by provider, model, call_date

)

select * from final
