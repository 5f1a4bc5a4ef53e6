{#- Price-book columns in USD per 1M tokens (tokenbook/pricing/litellm.py PRICE_FIELDS and
    TIER_FIELDS; keep them in step). -#}
{% macro price_columns() -%}
    {{ return([
        'input_per_mtok', 'cache_read_per_mtok', 'cache_write_5m_per_mtok',
        'cache_write_1h_per_mtok', 'output_per_mtok',
        'batch_input_per_mtok', 'batch_output_per_mtok', 'batch_cache_read_per_mtok',
        'batch_cache_write_per_mtok',
        'priority_input_per_mtok', 'priority_output_per_mtok', 'priority_cache_read_per_mtok',
        'flex_input_per_mtok', 'flex_output_per_mtok', 'flex_cache_read_per_mtok',
        'tier_input_per_mtok', 'tier_cache_read_per_mtok', 'tier_cache_write_5m_per_mtok',
        'tier_cache_write_1h_per_mtok', 'tier_output_per_mtok',
        'tier_batch_input_per_mtok', 'tier_batch_output_per_mtok',
        'tier_priority_input_per_mtok', 'tier_priority_cache_read_per_mtok',
        'tier_priority_output_per_mtok', 'tier_flex_input_per_mtok', 'tier_flex_output_per_mtok'
    ]) }}
{%- endmacro %}

{#- on-run-start: create the append-only raw.price_book_versions (empty) when missing, so
    int_price_book builds before anyone ran `tokenbook prices load`. Same DDL as
    tokenbook/pricing/versions.py. -#}
{% macro create_price_book_versions() -%}
    {%- set schema = target.schema ~ '_raw' if target.type == 'bigquery' else 'raw' -%}
    {%- if target.type == 'bigquery' -%}
        {%- set relation = '`' ~ target.database ~ '.' ~ schema ~ '.price_book_versions`' -%}
    {%- else -%}
        {%- set relation = schema ~ '.price_book_versions' -%}
    {%- endif -%}
    {%- set text = tokenbook.type_text() | trim -%}
    {%- set money = tokenbook.type_money() | trim -%}
    {%- set bigint = 'int64' if target.type == 'bigquery' else 'bigint' -%}
    create table if not exists {{ relation }} (
        provider {{ text }},
        model {{ text }},
        valid_from date,
        {%- for col in tokenbook.price_columns() %}
        {{ col }} {{ money }},
        {%- endfor %}
        tier_threshold_tokens {{ bigint }},
        request_fee_usd {{ money }},
        litellm_key {{ text }},
        litellm_provider {{ text }},
        source_snapshot {{ text }},
        version_id {{ text }}
    )
{%- endmacro %}

{% macro create_raw_schema() -%}
    {%- if target.type == 'bigquery' -%}
        create schema if not exists `{{ target.database }}`.`{{ target.schema }}_raw`
        options (location = '{{ target.location or "US" }}')
    {%- else -%}
        create schema if not exists raw
    {%- endif -%}
{%- endmacro %}

{#- Effective (negotiated) unit price of a token kind in int_llm_calls_priced, unrounded:
    an explicit override price wins for standard calls below the context tier (it is a
    negotiated standard price); otherwise list price x the override's remaining share. The
    product keeps 18 decimals on DuckDB so the cost is rounded once, at the end. -#}
{% macro effective_price(kind) -%}
    {%- set override_col = 'override_cache_write_per_mtok' if kind == 'cache_write' else 'override_' ~ kind ~ '_per_mtok' -%}
    case
        when pricing_mode = 'standard' and not is_above_tier and {{ override_col }} is not null
            then {{ tokenbook.wide_decimal(override_col) }}
        else list_{{ kind }}_per_mtok * override_remaining_share
    end
{%- endmacro %}

{#- on-run-start: raw.fx_rates (written by `tokenbook fx load`, ingestion/fx.py) empty when
    missing, so billing converts (or reports unconverted) before any rate was loaded. -#}
{% macro create_fx_rates() -%}
    {%- set text = tokenbook.type_text() | trim -%}
    create table if not exists {{ tokenbook.layer_relation('raw', 'fx_rates') }} (
        rate_date date,
        currency {{ text }},
        rate_to_usd {{ tokenbook.type_money() | trim }},
        source {{ text }},
        source_file {{ text }}
    )
{%- endmacro %}
