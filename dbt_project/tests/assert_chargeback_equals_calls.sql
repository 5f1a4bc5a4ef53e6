-- Chargeback accounts for every call and every dollar of the calls fact, per month, at list
-- and effective cost: nothing is dropped for a missing tag (it lands in '(unattributed)').
-- Returns one row per month where the two disagree.

with calls as (

    select
        call_month as month_start,
        count(*) as calls,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}
    group by call_month

),

chargeback as (

    select
        month_start,
        sum(calls) as calls,
        sum(list_cost_usd) as list_cost_usd,
        sum(effective_cost_usd) as effective_cost_usd
    from {{ ref('mart_chargeback') }}
    group by month_start

)

select
    coalesce(calls.month_start, chargeback.month_start) as month_start,
    calls.calls as fact_calls,
    chargeback.calls as chargeback_calls,
    calls.list_cost_usd as fact_list_cost_usd,
    chargeback.list_cost_usd as chargeback_list_cost_usd,
    calls.effective_cost_usd as fact_effective_cost_usd,
    chargeback.effective_cost_usd as chargeback_effective_cost_usd
from calls
full outer join chargeback
    on calls.month_start = chargeback.month_start
where calls.month_start is null
    or chargeback.month_start is null
    or calls.calls != chargeback.calls
    or calls.list_cost_usd != chargeback.list_cost_usd
    or calls.effective_cost_usd != chargeback.effective_cost_usd
