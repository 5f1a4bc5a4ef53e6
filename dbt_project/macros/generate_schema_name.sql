{#- Layers land in fixed schemas: raw / staging / marts on DuckDB, and
    <prefix>_raw / <prefix>_staging / <prefix>_marts datasets on BigQuery
    (the profile's dataset is the prefix). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set layer = (custom_schema_name or 'staging') | trim -%}
    {%- if target.type == 'bigquery' -%}
        {{ target.schema }}_{{ layer }}
    {%- else -%}
        {{ layer }}
    {%- endif -%}
{%- endmacro %}
