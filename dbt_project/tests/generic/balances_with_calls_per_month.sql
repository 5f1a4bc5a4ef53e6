{#- A chargeback model accounts for every call and every dollar of the calls fact, per month, at
    list and effective cost: nothing is dropped for a missing tag (it lands in '(unattributed)').
    Returns one row per month where the model and fct_llm_calls disagree. The model needs
    month_start, calls, list_cost_usd and effective_cost_usd. -#}
{% test balances_with_calls_per_month(model) %}

with calls as (

    select
        call_month as month_start,
        count(*) as calls,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}
    group by call_month

),

charged as (

    select
        month_start,
        sum(calls) as calls,
        sum(list_cost_usd) as list_cost_usd,
        sum(effective_cost_usd) as effective_cost_usd
    from {{ model }}
    group by month_start

)

select
    coalesce(calls.month_start, charged.month_start) as month_start,
    calls.calls as fact_calls,
    charged.calls as charged_calls,
    calls.list_cost_usd as fact_list_cost_usd,
    charged.list_cost_usd as charged_list_cost_usd,
    calls.effective_cost_usd as fact_effective_cost_usd,
    charged.effective_cost_usd as charged_effective_cost_usd
from calls
full outer join charged
    on calls.month_start = charged.month_start
where calls.month_start is null
    or charged.month_start is null
    or calls.calls != charged.calls
    or calls.list_cost_usd != charged.list_cost_usd
    or calls.effective_cost_usd != charged.effective_cost_usd

{% endtest %}
