{#- The warehouse type of a kind of column ('string', 'money', 'int', 'small_int', 'int_sum',
    'float', 'bool'), from the var `tb_types` in dbt_project.yml: the same map the YAML data_types
    read, so a model's SQL casts and its contract can never name different types. -#}
{% macro tb_type(kind) -%}
    {%- set types = var('tb_types')[target.type] -%}
    {%- if kind not in types -%}
        {{ exceptions.raise_compiler_error(
            "tb_type: unknown kind '" ~ kind ~ "' for " ~ target.type
            ~ " (the var tb_types in dbt_project.yml has " ~ (types.keys() | list | join(', ')) ~ ")") }}
    {%- endif -%}
    {{ return(types[kind]) }}
{%- endmacro %}
