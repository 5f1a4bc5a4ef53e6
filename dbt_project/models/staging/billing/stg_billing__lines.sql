{#- One row per vendor x line_id: raw.billing_lines renamed and cast, the latest load of each
    line kept (a monthly export restated through the month, or a late API page, replaces what
    an earlier load brought). Amounts are already USD-converted units of `currency` (Anthropic
    cents are converted at ingestion). No joins, no aggregation. -#}
with

source as (

    select * from {{ source('billing', 'billing_lines') }}

),

renamed as (

    select
        cast(vendor as {{ tokenbook.type_text() }}) as vendor,
        cast(line_id as {{ tokenbook.type_text() }}) as line_id,
        cast(record_type as {{ tokenbook.type_text() }}) as record_type,
        cast(load_date as date) as load_date,
        cast(usage_date as date) as usage_date,
        cast(charge_period_start as {{ dbt.type_timestamp() }}) as charge_period_start,
        cast(charge_period_end as {{ dbt.type_timestamp() }}) as charge_period_end,
        cast(billing_period as date) as billing_period,
        cast(account_id as {{ tokenbook.type_text() }}) as account_id,
        cast(project_id as {{ tokenbook.type_text() }}) as project_id,
        cast(workspace_id as {{ tokenbook.type_text() }}) as workspace_id,
        cast(api_key_id as {{ tokenbook.type_text() }}) as api_key_id,
        cast(provider as {{ tokenbook.type_text() }}) as provider,
        -- the billed model id; Bedrock usage types embed it (USE1-<model id>-input-tokens)
        cast(coalesce(
            model,
            case when vendor = 'aws' then {{ tokenbook.bedrock_usage_type_model('sku') }} end
        ) as {{ tokenbook.type_text() }}) as billed_model,
        cast(sku as {{ tokenbook.type_text() }}) as sku,
        cast(description as {{ tokenbook.type_text() }}) as description,
        cast(token_type as {{ tokenbook.type_text() }}) as token_type,
        cast(service_tier as {{ tokenbook.type_text() }}) as service_tier,
        coalesce(is_batch, false) as is_batch,
        cast(region as {{ tokenbook.type_text() }}) as region,
        cast(quantity as {{ tokenbook.type_money() }}) as quantity,
        cast(unit as {{ tokenbook.type_text() }}) as unit,
        cast(tokens as {{ dbt.type_bigint() }}) as tokens,
        cast(billed_cost as {{ tokenbook.type_money() }}) as billed_cost,
        cast(effective_cost as {{ tokenbook.type_money() }}) as effective_cost,
        cast(credits as {{ tokenbook.type_money() }}) as credits,
        cast(list_unit_price as {{ tokenbook.type_money() }}) as list_unit_price,
        cast(unit_price as {{ tokenbook.type_money() }}) as unit_price,
        cast(upper(currency) as {{ tokenbook.type_text() }}) as currency,
        cast(source_file as {{ tokenbook.type_text() }}) as source_file,
        cast(source_line as {{ dbt.type_bigint() }}) as source_line
    from source
    where true
    qualify row_number() over (
        partition by vendor, line_id
        order by load_date desc, source_file desc, source_line desc
    ) = 1

)

select * from renamed
