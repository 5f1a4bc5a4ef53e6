{#- One row per raw record (call attempt x load), renamed and cast. Duplicates across loads
    are kept here (load_date, source_line); fct_llm_calls keeps the latest load of each
    call_id (a window over the whole table here would be re-run on every incremental build). -#}
with

source as (

    select * from {{ source('gateway', 'gateway_calls') }}

),

renamed as (

    select
        cast(request_id as {{ tokenbook.type_text() }}) as call_id,
        cast(coalesce(nullif(trim(trace_id), ''), request_id) as {{ tokenbook.type_text() }}) as trace_id,
        cast(coalesce(attempt, 1) as {{ dbt.type_int() }}) as attempt,
        cast(call_ts as {{ dbt.type_timestamp() }}) as called_at,
        cast(call_ts as date) as call_date,
        cast(provider as {{ tokenbook.type_text() }}) as provider_raw,
        cast(model as {{ tokenbook.type_text() }}) as model,

        -- tokens: input includes cache read + write, output includes reasoning
        cast(coalesce(input_tokens, 0) as {{ dbt.type_bigint() }}) as input_tokens,
        cast(coalesce(cache_read_input_tokens, 0) as {{ dbt.type_bigint() }}) as cache_read_input_tokens,
        cast(coalesce(cache_write_input_tokens, 0) as {{ dbt.type_bigint() }}) as cache_write_input_tokens,
        cast(lower(nullif(trim(cache_write_ttl), '')) as {{ tokenbook.type_text() }}) as cache_write_ttl,
        cast(coalesce(output_tokens, 0) as {{ dbt.type_bigint() }}) as output_tokens,
        cast(coalesce(reasoning_tokens, 0) as {{ dbt.type_bigint() }}) as reasoning_tokens,

        coalesce(batch, false) or lower(coalesce(service_tier, '')) = 'batch' as is_batch,
        cast(coalesce(lower(nullif(trim(service_tier), '')), 'default') as {{ tokenbook.type_text() }}) as service_tier,
        cast(coalesce(lower(nullif(trim(status), '')), 'ok') as {{ tokenbook.type_text() }}) as status,
        cast(lower(nullif(trim(outcome), '')) as {{ tokenbook.type_text() }}) as outcome,
        cast(quality_score as {{ tokenbook.type_double() }}) as quality_score,
        cast(latency_ms as {{ tokenbook.type_double() }}) as latency_ms,

        -- attribution tags as logged (blank = missing)
        cast(nullif(trim(feature), '') as {{ tokenbook.type_text() }}) as feature,
        cast(nullif(trim(customer_segment), '') as {{ tokenbook.type_text() }}) as customer_segment,
        cast(nullif(trim(team), '') as {{ tokenbook.type_text() }}) as team,
        cast(nullif(trim(customer_id), '') as {{ tokenbook.type_text() }}) as customer_id,
        cast(nullif(trim(environment), '') as {{ tokenbook.type_text() }}) as environment,
        cast(nullif(trim(request_class), '') as {{ tokenbook.type_text() }}) as request_class,
        cast(nullif(trim(api_key_id), '') as {{ tokenbook.type_text() }}) as api_key_id,
        cast(nullif(trim(project_id), '') as {{ tokenbook.type_text() }}) as project_id,
        cast(nullif(trim(prompt_template_id), '') as {{ tokenbook.type_text() }}) as prompt_template_id,
        cast(nullif(trim(prompt_prefix_hash), '') as {{ tokenbook.type_text() }}) as prompt_prefix_hash,
        -- the data region the gateway logged (extra.region, else metadata.region), lower case
        cast(lower(coalesce(
            {{ tokenbook.json_text('extra', '$.region') }},
            {{ tokenbook.json_text('metadata', '$.region') }}
        )) as {{ tokenbook.type_text() }}) as region,

        {{ tokenbook.to_money('gateway_cost_usd') }} as gateway_cost_usd,
        cast(load_date as date) as load_date,
        cast(source_format as {{ tokenbook.type_text() }}) as source_format,
        cast(source_file as {{ tokenbook.type_text() }}) as source_file,
        cast(source_line as {{ dbt.type_bigint() }}) as source_line

    from source

)

select * from renamed
