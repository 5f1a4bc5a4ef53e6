{#- One row per provider x catalogue model x valid_from: the default book (seed) plus every
    version loaded with `tokenbook prices load`. valid_to is the next version's valid_from
    (exclusive; null = in force now), so history is derived, never overwritten. applies_from
    is valid_from, except for a model's earliest version: 1900-01-01, so a call dated before
    any known price of its model is priced with the earliest one (and marked
    price_basis = 'earliest_known' in int_llm_calls_priced) instead of not at all. -#}
{%- set carried = tokenbook.price_columns() + ['tier_threshold_tokens', 'request_fee_usd',
    'litellm_key', 'litellm_provider', 'source_snapshot'] -%}
with

default_book as (

    select
        lower(provider) as provider,
        lower(model) as model,
        cast(valid_from as date) as valid_from,
        {%- for col in carried %}
        {{ col }},
        {%- endfor %}
        cast('default' as {{ tokenbook.type_text() }}) as version_id
    from {{ ref('price_book_default') }}

),

loaded_versions as (

    select
        provider,
        model,
        valid_from,
        {%- for col in carried %}
        {{ col }},
        {%- endfor %}
        version_id
    from {{ ref('stg_pricing__price_book_versions') }}

),

all_versions as (

    select * from default_book
    union all
    select * from loaded_versions

),

dated as (

    select
        *,
        lead(valid_from) over (partition by provider, model order by valid_from) as valid_to,
        row_number() over (partition by provider, model order by valid_from) as version_rank
    from all_versions

),

final as (

    select
        {{ dbt.concat(["provider", "'/'", "model", "'@'", "cast(valid_from as " ~ tokenbook.type_text() ~ ")"]) }} as price_id,
        provider,
        model,
        valid_from,
        case when version_rank = 1 then cast('1900-01-01' as date) else valid_from end
            as applies_from,
        valid_to,
        {%- for col in carried %}
        {{ col }},
        {%- endfor %}
        version_id
    from dated

)

select * from final
