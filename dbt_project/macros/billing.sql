{#- Macros for the billing models (owner: billing reconciliation / FOCUS).

    bedrock_usage_type_model(expr)  the model id inside a Bedrock CUR usage type
                                    ('USE1-anthropic.claude-haiku-4-5-20251001-v1:0-input-tokens'
                                    -> 'anthropic.claude-haiku-4-5-20251001-v1:0'), null otherwise.
    model_family(expr)              a model id reduced to the family the gateway and the invoice
                                    share: the same normalisation steps as int_model_resolution
                                    (routing prefix, Bedrock ARN / region / vendor prefix /
                                    version suffix, date suffix, preview suffix), lower case. A
                                    dated id (claude-haiku-4-5-20251001), its Bedrock id and the
                                    undated alias reconcile as one model.
    alloc_base(amount, weight, partition)      amount x weight / sum(weight) over partition,
                                                rounded to money (equal split when weights are 0)
    alloc_remainder(amount, base, rank_expr, partition)
                                                base + (amount - sum(base)) on the row ranked 1:
                                                allocated totals equal the amount exactly, the
                                                rounding remainder goes to the largest share.
-#}

{% macro bedrock_usage_type_model(expr) -%}
    {{ tokenbook.regex_extract(expr, '^[A-Z]{2,4}[0-9]?-(.+?)-(input-tokens|output-tokens|cache-read-input-token-count|cache-write-input-token-count|cache-write-1h-input-token-count)(-batch)?$') }}
{%- endmacro %}

{% macro model_family(expr) -%}
    {%- set steps = [
        '^arn:aws:bedrock:[^/]*/',
        '^(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/',
        '^((openai|anthropic|azure|azure_openai|vertex_ai|vertex_ai_beta|vertex|gemini|google|bedrock|aws_bedrock|bedrock_converse|converse|invoke|text-completion-openai)/)+',
        '^[a-z]{2}(-gov)?-[a-z]+-[0-9]+/',
        '^(us|eu|apac|global|us-gov|jp|au|ca|in)[.]',
        '(-v[0-9]+(:[0-9]+)?|:[0-9]+)$',
        '^(anthropic|amazon|meta|mistral|cohere|ai21|openai|deepseek|qwen|google|writer)[.]',
        '(-[0-9]{8}|-[0-9]{4}-[0-9]{2}-[0-9]{2}|@[0-9]{8}|@default|@latest|-latest|-[0-9]{3})$',
        '-(preview|exp)(-[0-9]{2}-[0-9]{2,4}|-[0-9]+)?$',
    ] -%}
    {%- set ns = namespace(sql='lower(trim(' ~ expr ~ '))') -%}
    {%- for pattern in steps -%}
        {%- set ns.sql = tokenbook.regex_replace(ns.sql, pattern) -%}
    {%- endfor -%}
    {{ ns.sql }}
{%- endmacro %}

{% macro alloc_base(amount, weight, partition) -%}
    cast(
        case
            when sum({{ weight }}) over (partition by {{ partition }}) > 0
                then {{ tokenbook.wide_decimal(amount) }} * {{ weight }}
                    / sum({{ weight }}) over (partition by {{ partition }})
            else {{ tokenbook.wide_decimal(amount) }}
                / count(*) over (partition by {{ partition }})
        end
        as {{ tokenbook.type_money() }})
{%- endmacro %}

{% macro alloc_remainder(amount, base, rank_expr, partition) -%}
    cast(
        {{ base }} + case
            when {{ rank_expr }} = 1
                then {{ amount }} - sum({{ base }}) over (partition by {{ partition }})
            else 0
        end
        as {{ tokenbook.type_money() }})
{%- endmacro %}

{#- One text key over `cols` of `alias` (nulls as '~'), for joining groups null-safely. -#}
{% macro billing_group_key(alias, cols) -%}
    {%- set parts = [] -%}
    {%- for c in cols -%}
        {%- do parts.append("coalesce(cast(" ~ alias ~ "." ~ c ~ " as " ~ tokenbook.type_text() ~ "), '~')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{#- FOCUS Tags: a JSON object text {"feature": .., "segment": .., "team": ..}. -#}
{% macro focus_tags_json(feature, segment, team) -%}
    {{ return(adapter.dispatch('focus_tags_json', 'tokenbook')(feature, segment, team)) }}
{%- endmacro %}
{% macro default__focus_tags_json(feature, segment, team) -%}
    cast(json_object('feature', {{ feature }}, 'segment', {{ segment }}, 'team', {{ team }}) as varchar)
{%- endmacro %}
{% macro bigquery__focus_tags_json(feature, segment, team) -%}
    to_json_string(json_object('feature', {{ feature }}, 'segment', {{ segment }}, 'team', {{ team }}))
{%- endmacro %}

{#- Gateway token quantity of a call for one billed token type (the vendor's components:
    vendors without a cache-write line bill cache writes as input). -#}
{% macro gateway_tokens_of_type(token_type) -%}
    case {{ token_type }}
        when 'input' then uncached_input_tokens
            + case when provider in ('anthropic', 'bedrock') then 0 else cache_write_input_tokens end
        when 'cache_read' then cache_read_input_tokens
        when 'cache_write_5m' then case when provider in ('anthropic', 'bedrock')
            and coalesce(cache_write_ttl, '5m') <> '1h' then cache_write_input_tokens else 0 end
        when 'cache_write_1h' then case when provider in ('anthropic', 'bedrock')
            and cache_write_ttl = '1h' then cache_write_input_tokens else 0 end
        when 'output' then output_tokens
        when 'request' then 1
        else 0
    end
{%- endmacro %}
