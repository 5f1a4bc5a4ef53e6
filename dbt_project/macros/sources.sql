{#- Schema (DuckDB) or dataset (BigQuery) of a warehouse layer: `raw`, `staging`, `marts` on
    DuckDB, `<prefix>_raw`, ... on BigQuery (the profile's dataset is the prefix). The one place
    that names them: generate_schema_name (models, seeds) and layer_relation (tables written by
    Python: ingestion, `tokenbook prices load`, forecasting, the incremental bookkeeping) use it.
    (A source's `schema:` in YAML cannot call a project macro - dbt renders sources YAML
    without them - so the `*_sources.yml` files spell the same rule out.) -#}
{% macro layer_schema(layer) -%}
    {{ return(adapter.dispatch('layer_schema', 'tokenbook')(layer)) }}
{%- endmacro %}
{% macro default__layer_schema(layer) -%} {{ return(layer) }} {%- endmacro %}
{% macro bigquery__layer_schema(layer) -%} {{ return(target.schema ~ '_' ~ layer) }} {%- endmacro %}

{#- A table in a warehouse layer, quoted for the target. -#}
{% macro layer_relation(layer, name) -%}
    {{ return(adapter.dispatch('layer_relation', 'tokenbook')(layer, name)) }}
{%- endmacro %}
{% macro default__layer_relation(layer, name) -%}
    {{ return(tokenbook.layer_schema(layer) ~ '.' ~ name) }}
{%- endmacro %}
{% macro bigquery__layer_relation(layer, name) -%}
    {{ return('`' ~ target.database ~ '`.`' ~ tokenbook.layer_schema(layer) ~ '`.`' ~ name ~ '`') }}
{%- endmacro %}
