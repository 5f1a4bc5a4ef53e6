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
