{#- Schema (DuckDB) or dataset (BigQuery) of a warehouse layer, as generate_schema_name names
    it: `raw` on DuckDB, `<prefix>_raw` on BigQuery. Used by sources, whose tables are written
    by Python (ingestion, `tokenbook prices load`, forecasting), not by dbt. -#}
{% macro layer_schema(layer) -%}
    {%- if target.type == 'bigquery' -%}
        {{ target.schema }}_{{ layer }}
    {%- else -%}
        {{ layer }}
    {%- endif -%}
{%- endmacro %}
