{#- One row per call_date x policy x feature x provider x region of calls that broke a data
    policy (grain, inputs, assumptions: _governance__models.yml). A policy (data_policies seed)
    covers the calls of a feature or a customer segment; a covered call breaks it when no row
    of the policy allows its provider in its region. The region is the one the gateway logged
    (stg_gateway__calls.region: extra.region, else metadata.region); when the call carries
    none, only the provider is judged ('(provider-level)'). -#}
with

calls as (

    select
        call_id,
        load_date,
        call_date,
        coalesce(feature, '(unattributed)') as feature,
        coalesce(customer_segment, '(unattributed)') as customer_segment,
        provider,
        coalesce(catalog_model, model) as model,
        coalesce(effective_cost_usd, 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

logged_regions as (

    -- the region each loaded record names (one per request_id and load)
    select
        call_id,
        load_date,
        max(region) as region
    from {{ ref('stg_gateway__calls') }}
    group by call_id, load_date

),

calls_with_region as (

    select
        calls.*,
        logged_regions.region
    from calls
    left join logged_regions
        on calls.call_id = logged_regions.call_id
        and calls.load_date = logged_regions.load_date

),

policies as (

    select distinct policy_id, scope_type, scope_value, data_class
    from {{ ref('data_policies') }}

),

allowed as (

    select policy_id, allowed_provider, lower(allowed_region) as allowed_region
    from {{ ref('data_policies') }}

),

covered_calls as (

    select
        calls_with_region.*,
        policies.policy_id,
        policies.data_class
    from calls_with_region
    inner join policies
        on (policies.scope_type = 'feature' and calls_with_region.feature = policies.scope_value)
        or (policies.scope_type = 'customer_segment'
            and calls_with_region.customer_segment = policies.scope_value)

),

judged as (

    select
        covered_calls.call_id,
        covered_calls.policy_id,
        max(case when allowed.allowed_provider = covered_calls.provider then 1 else 0 end)
            as provider_allowed,
        max(case
            when allowed.allowed_provider = covered_calls.provider
                and (allowed.allowed_region = '*' or covered_calls.region is null
                     or allowed.allowed_region = covered_calls.region)
                then 1
            else 0
        end) as call_allowed
    from covered_calls
    left join allowed
        on covered_calls.policy_id = allowed.policy_id
    group by covered_calls.call_id, covered_calls.policy_id

),

violations as (

    select
        covered_calls.*,
        case when judged.provider_allowed = 0 then 'provider not allowed'
             else 'region not allowed' end as violation_kind
    from covered_calls
    inner join judged
        on covered_calls.call_id = judged.call_id
        and covered_calls.policy_id = judged.policy_id
    where judged.call_allowed = 0

),

by_day as (

    select
        call_date,
        policy_id,
        data_class,
        feature,
        provider,
        coalesce(region, '(provider-level)') as region,
        max(violation_kind) as violation_kind,
        count(*) as calls,
        sum(effective_cost_usd) as effective_cost_usd
    from violations
    group by call_date, policy_id, data_class, feature, provider, coalesce(region, '(provider-level)')

),

final as (

    select
        call_date,
        cast(policy_id as {{ tokenbook.type_text() }}) as policy_id,
        cast(data_class as {{ tokenbook.type_text() }}) as data_class,
        cast(feature as {{ tokenbook.type_text() }}) as feature,
        cast(provider as {{ tokenbook.type_text() }}) as provider,
        cast(region as {{ tokenbook.type_text() }}) as region,
        cast(violation_kind as {{ tokenbook.type_text() }}) as violation_kind,
        {{ marts_count('calls') }} as calls,
        {{ tokenbook.to_money('effective_cost_usd') }} as effective_cost_usd,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from by_day

)

select * from final
