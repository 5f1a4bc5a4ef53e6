{#- Layers land in fixed schemas: raw / staging / marts on DuckDB, and
    <prefix>_raw / <prefix>_staging / <prefix>_marts datasets on BigQuery
    (the profile's dataset is the prefix): macros/sources.sql, layer_schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ tokenbook.layer_schema((custom_schema_name or 'staging') | trim) }}
{%- endmacro %}
