{#- One row per grain ('day' | 'month') x provider x model x period: the gateway ledger beside
    the invoice, the variance, and what explains it.

    - model: the model family both sides share (tokenbook.model_family over the price-book key
      the gateway resolved, and over the billed id): a dated id, its Bedrock id and the undated
      alias reconcile as one model.
    - Providers: the five billed vendors' providers; self-hosted models have no invoice.
    - Tokens: input (all input: uncached + cache read + cache write) and output, both sides.
    - Cost: invoice billed cost vs the gateway's LIST cost (invoices bill list prices before
      the commitment discounts the ledger's effective cost already applies; the gateway's
      effective cost is shown beside it). Variance = invoice - gateway; percent over gateway.
    - gap_class, first rule that holds:
        unlogged_usage  the invoice bills API keys the gateway never logged
        unpriced_model  either side has usage of a model the price book does not know
        price_mismatch  billed cost vs the price book's list price x billed tokens differs by
                        more than the threshold (a unit price the book does not have:
                        price_variance_pct says by how much)
        match           token and cost variance within the threshold
        timing          a token variance whose token AND cost variance cancel (within the
                        threshold) over the adjacent periods, or (day grain) within the
                        month: a vendor's day boundary in another time zone
        price_mismatch  also: the same tokens (within the threshold) but a cost variance above
                        it, with the bill at list price: the ledger priced the calls otherwise
                        (service tier, context tier), price_variance_pct is then ~0
        token_mismatch  anything else
    - is_flagged: |token or cost variance| above the threshold (seed reconciliation_settings,
      var variance_threshold overrides), or one side missing entirely. -#}
{%- set billed_providers = ['openai', 'anthropic', 'vertex_ai', 'bedrock', 'azure_openai'] -%}
{%- set input_types = ['input', 'cache_read', 'cache_write_5m', 'cache_write_1h'] -%}
{%- set measures = ['gateway_calls', 'gateway_unpriced_calls', 'gateway_input_tokens',
    'gateway_output_tokens', 'gateway_list_cost_usd', 'gateway_effective_cost_usd',
    'invoice_input_tokens', 'invoice_output_tokens', 'invoice_billed_cost_usd',
    'invoice_effective_cost_usd', 'invoice_list_cost_usd', 'priced_billed_cost_usd',
    'priced_list_cost_usd', 'invoice_unpriced_lines', 'unlogged_tokens',
    'unlogged_cost_usd'] -%}
{%- set money = tokenbook.type_money() -%}
{%- set dbl = tokenbook.type_double() -%}
with

settings as (

    select
        coalesce(
            cast({{ var('variance_threshold', 'null') }} as {{ dbl }}),
            cast(value as {{ dbl }})
        ) as variance_threshold
    from {{ ref('reconciliation_settings') }}
    where setting = 'variance_threshold'

),

calls as (

    select
        call_date,
        provider,
        {{ tokenbook.model_family('coalesce(catalog_model, model)') }} as model,
        is_priced,
        input_tokens,
        output_tokens,
        list_cost_usd,
        effective_cost_usd
    from {{ ref('fct_llm_calls') }}
    where provider in ('{{ billed_providers | join("', '") }}')

),

logged_keys as (

    select distinct api_key_id
    from {{ ref('fct_llm_calls') }}
    where api_key_id is not null

),

gateway_daily as (

    select
        call_date as period_start,
        provider,
        model,
        count(*) as gateway_calls,
        sum(case when is_priced then 0 else 1 end) as gateway_unpriced_calls,
        sum(input_tokens) as gateway_input_tokens,
        sum(output_tokens) as gateway_output_tokens,
        coalesce(sum(list_cost_usd), 0) as gateway_list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as gateway_effective_cost_usd
    from calls
    group by call_date, provider, model

),

invoice_lines as (

    select
        lines.*,
        lines.api_key_id is not null
            and lines.api_key_id not in (select api_key_id from logged_keys) as is_unlogged_key
    from {{ ref('int_vendor_cost_lines') }} as lines
    where lines.provider in ('{{ billed_providers | join("', '") }}')
        and (lines.token_type in ('{{ input_types | join("', '") }}', 'output')
            or lines.billed_cost is not null)

),

invoice_daily as (

    select
        usage_date as period_start,
        provider,
        model_family as model,
        sum(case when token_type in ('{{ input_types | join("', '") }}') then tokens else 0 end)
            as invoice_input_tokens,
        sum(case when token_type = 'output' then tokens else 0 end) as invoice_output_tokens,
        -- invoice amounts converted to USD with the day's rate; a line with no rate is left
        -- out (listed in mart_unconverted_billing), never counted as dollars
        coalesce(sum(billed_cost_usd), 0) as invoice_billed_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as invoice_effective_cost_usd,
        coalesce(sum(list_cost), 0) as invoice_list_cost_usd,
        coalesce(sum(case when list_cost is not null then billed_cost_usd end), 0)
            as priced_billed_cost_usd,
        coalesce(sum(case when billed_cost_usd is not null then list_cost end), 0)
            as priced_list_cost_usd,
        sum(case when is_priced then 0 else 1 end) as invoice_unpriced_lines,
        sum(case when is_unlogged_key and token_type <> 'request' then tokens else 0 end)
            as unlogged_tokens,
        coalesce(sum(case when is_unlogged_key then billed_cost_usd end), 0) as unlogged_cost_usd,
        max(case when is_unlogged_key then api_key_id end) as unlogged_api_key_id
    from invoice_lines
    group by usage_date, provider, model_family

),

daily as (

    select
        cast('day' as {{ tokenbook.type_text() }}) as grain,
        coalesce(g.period_start, i.period_start) as period_start,
        coalesce(g.provider, i.provider) as provider,
        coalesce(g.model, i.model) as model,
        {%- for m in measures %}
        {%- if m.startswith('gateway') %}
        coalesce(g.{{ m }}, 0) as {{ m }},
        {%- else %}
        coalesce(i.{{ m }}, 0) as {{ m }},
        {%- endif %}
        {%- endfor %}
        i.unlogged_api_key_id
    from gateway_daily as g
    full outer join invoice_daily as i
        on g.period_start = i.period_start
        and g.provider = i.provider
        and g.model = i.model

),

monthly as (

    select
        cast('month' as {{ tokenbook.type_text() }}) as grain,
        {{ tokenbook.month_start('period_start') }} as period_start,
        provider,
        model,
        {%- for m in measures %}
        sum({{ m }}) as {{ m }},
        {%- endfor %}
        max(unlogged_api_key_id) as unlogged_api_key_id
    from daily
    group by {{ tokenbook.month_start('period_start') }}, provider, model

),

periods as (

    select * from daily
    union all
    select * from monthly

),

variances as (

    select
        periods.*,
        case when grain = 'day' then {{ tokenbook.marts_add_days(1, 'period_start') }}
            else {{ tokenbook.marts_add_months(1, 'period_start') }} end as period_end,
        gateway_input_tokens + gateway_output_tokens as gateway_tokens,
        invoice_input_tokens + invoice_output_tokens as invoice_tokens,
        (invoice_input_tokens + invoice_output_tokens)
            - (gateway_input_tokens + gateway_output_tokens) as token_variance,
        cast(invoice_billed_cost_usd - gateway_list_cost_usd as {{ money }}) as cost_variance_usd,
        cast(priced_billed_cost_usd - priced_list_cost_usd as {{ money }}) as price_variance_usd
    from periods

),

neighbours as (

    select
        variances.*,
        lag(period_start) over w as prev_period_start,
        lag(token_variance) over w as prev_token_variance,
        lag(gateway_tokens) over w as prev_gateway_tokens,
        lag(cost_variance_usd) over w as prev_cost_variance_usd,
        lag(gateway_list_cost_usd) over w as prev_gateway_cost_usd,
        lead(period_start) over w as next_period_start,
        lead(token_variance) over w as next_token_variance,
        lead(gateway_tokens) over w as next_gateway_tokens,
        lead(cost_variance_usd) over w as next_cost_variance_usd,
        lead(gateway_list_cost_usd) over w as next_gateway_cost_usd
    from variances
    window w as (partition by grain, provider, model order by period_start)

),

windowed as (

    select
        neighbours.*,
        {%- for current, prev, nxt, name in [
            ('token_variance', 'prev_token_variance', 'next_token_variance', 'window_token_variance'),
            ('gateway_tokens', 'prev_gateway_tokens', 'next_gateway_tokens', 'window_gateway_tokens'),
            ('cost_variance_usd', 'prev_cost_variance_usd', 'next_cost_variance_usd', 'window_cost_variance_usd'),
            ('gateway_list_cost_usd', 'prev_gateway_cost_usd', 'next_gateway_cost_usd', 'window_gateway_cost_usd'),
        ] %}
        {{ current }}
            + case when prev_period_start = (case when grain = 'day'
                then {{ tokenbook.marts_add_days(-1, 'period_start') }}
                else {{ tokenbook.marts_add_months(-1, 'period_start') }} end)
                then {{ prev }} else 0 end
            + case when next_period_start = period_end then {{ nxt }} else 0 end
            as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from neighbours

),

with_month as (

    select
        w.*,
        m.token_variance as month_token_variance,
        m.gateway_tokens as month_gateway_tokens,
        m.cost_variance_usd as month_cost_variance_usd,
        m.gateway_list_cost_usd as month_gateway_cost_usd
    from windowed as w
    left join variances as m
        on m.grain = 'month'
        and w.provider = m.provider
        and w.model = m.model
        and m.period_start = {{ tokenbook.month_start('w.period_start') }}

),

ratios as (

    select
        with_month.*,
        settings.variance_threshold,
        {{ tokenbook.marts_ratio('token_variance', 'gateway_tokens') }} as token_variance_pct,
        {{ tokenbook.marts_ratio('cost_variance_usd', 'gateway_list_cost_usd') }}
            as cost_variance_pct,
        {{ tokenbook.marts_ratio('price_variance_usd', 'priced_list_cost_usd') }}
            as price_variance_pct,
        {{ tokenbook.marts_ratio('window_token_variance', 'window_gateway_tokens') }}
            as window_token_variance_pct,
        {{ tokenbook.marts_ratio('month_token_variance', 'month_gateway_tokens') }}
            as month_token_variance_pct,
        {{ tokenbook.marts_ratio('window_cost_variance_usd', 'window_gateway_cost_usd') }}
            as window_cost_variance_pct,
        {{ tokenbook.marts_ratio('month_cost_variance_usd', 'month_gateway_cost_usd') }}
            as month_cost_variance_pct
    from with_month
    cross join settings

),

classified as (

    select
        ratios.*,
        case
            when unlogged_tokens > 0 or unlogged_cost_usd > 0 then 'unlogged_usage'
            when gateway_unpriced_calls > 0 or invoice_unpriced_lines > 0 then 'unpriced_model'
            when priced_list_cost_usd > 0
                and abs(price_variance_pct) > variance_threshold then 'price_mismatch'
            when abs(coalesce(token_variance_pct, 0)) <= variance_threshold
                and abs(coalesce(cost_variance_pct, 0)) <= variance_threshold
                and (gateway_tokens > 0 or invoice_tokens = 0) then 'match'
            when token_variance <> 0
                and abs(window_token_variance_pct) <= variance_threshold
                and abs(coalesce(window_cost_variance_pct, 0)) <= variance_threshold
                then 'timing'
            when token_variance <> 0 and grain = 'day'
                and abs(month_token_variance_pct) <= variance_threshold
                and abs(coalesce(month_cost_variance_pct, 0)) <= variance_threshold
                then 'timing'
            when abs(coalesce(token_variance_pct, 0)) <= variance_threshold
                and gateway_tokens > 0 then 'price_mismatch'
            else 'token_mismatch'
        end as gap_class
    from ratios

),

final as (

    select
        grain,
        period_start,
        period_end,
        provider,
        model,
        cast(gateway_calls as {{ dbt.type_bigint() }}) as gateway_calls,
        cast(gateway_unpriced_calls as {{ dbt.type_bigint() }}) as gateway_unpriced_calls,
        cast(gateway_input_tokens as {{ dbt.type_bigint() }}) as gateway_input_tokens,
        cast(gateway_output_tokens as {{ dbt.type_bigint() }}) as gateway_output_tokens,
        cast(gateway_tokens as {{ dbt.type_bigint() }}) as gateway_tokens,
        cast(invoice_input_tokens as {{ dbt.type_bigint() }}) as invoice_input_tokens,
        cast(invoice_output_tokens as {{ dbt.type_bigint() }}) as invoice_output_tokens,
        cast(invoice_tokens as {{ dbt.type_bigint() }}) as invoice_tokens,
        cast(token_variance as {{ dbt.type_bigint() }}) as token_variance,
        token_variance_pct,
        cast(gateway_list_cost_usd as {{ money }}) as gateway_list_cost_usd,
        cast(gateway_effective_cost_usd as {{ money }}) as gateway_effective_cost_usd,
        cast(invoice_billed_cost_usd as {{ money }}) as invoice_billed_cost_usd,
        cast(invoice_effective_cost_usd as {{ money }}) as invoice_effective_cost_usd,
        cast(invoice_list_cost_usd as {{ money }}) as invoice_list_cost_usd,
        cost_variance_usd,
        cost_variance_pct,
        price_variance_usd,
        price_variance_pct,
        cast(unlogged_tokens as {{ dbt.type_bigint() }}) as unlogged_tokens,
        cast(unlogged_cost_usd as {{ money }}) as unlogged_cost_usd,
        unlogged_api_key_id,
        cast(invoice_unpriced_lines as {{ dbt.type_bigint() }}) as invoice_unpriced_lines,
        window_token_variance_pct,
        month_token_variance_pct,
        cast(gap_class as {{ tokenbook.type_text() }}) as gap_class,
        cast(case gap_class
            when 'unlogged_usage' then 'billed usage of API keys the gateway never logged'
            when 'unpriced_model' then 'a model the price book does not know'
            when 'price_mismatch' then case
                when priced_list_cost_usd > 0 and abs(price_variance_pct) > variance_threshold
                    then 'billed unit price differs from the price book'
                else 'same tokens, the ledger priced them otherwise (service or context tier, discount)'
                end
            when 'timing' then 'usage shifted across a day or month boundary; it cancels'
            when 'token_mismatch' then 'token counts differ'
            else 'within the threshold'
        end as {{ tokenbook.type_text() }}) as gap_detail,
        (
            gateway_tokens = 0 and invoice_tokens > 0
            or invoice_tokens = 0 and gateway_tokens > 0
            or abs(coalesce(token_variance_pct, 0)) > variance_threshold
            or abs(coalesce(cost_variance_pct, 0)) > variance_threshold
            or abs(coalesce(price_variance_pct, 0)) > variance_threshold
            or (gateway_list_cost_usd = 0 and invoice_billed_cost_usd > 0)
        ) as is_flagged,
        variance_threshold,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from classified

)

select * from final
