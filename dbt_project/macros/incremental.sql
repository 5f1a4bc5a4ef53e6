{#- Restatement-aware incremental builds.

    An incremental model rebuilds exactly the partitions (call dates) whose inputs changed since
    it was last built, however old: the load audit (raw.load_audit) names every load of every
    raw partition, and raw.price_book_versions every price version. What a model has consumed
    is kept in two small append-only tables in the raw layer:

    - raw.incremental_claims: one row per (model, dbt invocation, input load). A run *claims*
      the loads it has not built yet (status 'claimed') while its SQL is rendered; its
      post-hook marks them 'built' once the partitions are written. A failed run leaves its
      claims unbuilt, so the next run picks the same loads up again. Two runs in flight may
      claim the same load: both rebuild the same partitions from the same raw rows (idempotent).
    - raw.incremental_partitions: the partitions (dates) a run rebuilds. Its pre-hook deletes
      them from the model (so a partition whose rows all disappeared is emptied), then the
      strategy writes the rebuilt rows: DuckDB `append` inside the same transaction, BigQuery
      `insert_overwrite` of the rebuilt partitions.

    Offline compile (`dbt compile --no-populate-cache`, no warehouse): nothing is queried; the
    var `compile_incremental: true` renders the incremental branch with the partitions listed
    in `compile_incremental_dates`, so the SQL that runs every night can be compiled and parsed.
-#}

{#- Model configs of a date-partitioned incremental model. BigQuery: dbt-bigquery's
    insert_overwrite of the rebuilt day partitions, clustered; DuckDB: no partitions, the
    pre-hook deletes the rebuilt dates and `append` writes them in the same transaction. -#}
{% macro rebuild_strategy() -%}
    {{ return(adapter.dispatch('rebuild_strategy', 'tokenbook')()) }}
{%- endmacro %}
{% macro default__rebuild_strategy() -%} {{ return('append') }} {%- endmacro %}
{% macro bigquery__rebuild_strategy() -%} {{ return('insert_overwrite') }} {%- endmacro %}

{% macro daily_partitions(field) -%}
    {{ return(adapter.dispatch('daily_partitions', 'tokenbook')(field)) }}
{%- endmacro %}
{% macro default__daily_partitions(field) -%} {{ return(none) }} {%- endmacro %}
{% macro bigquery__daily_partitions(field) -%}
    {{ return({'field': field, 'data_type': 'date', 'granularity': 'day'}) }}
{%- endmacro %}

{% macro clustered_by(columns) -%}
    {{ return(adapter.dispatch('clustered_by', 'tokenbook')(columns)) }}
{%- endmacro %}
{% macro default__clustered_by(columns) -%} {{ return(none) }} {%- endmacro %}
{% macro bigquery__clustered_by(columns) -%} {{ return(columns) }} {%- endmacro %}

{#- on-run-start: the two bookkeeping tables (empty) when missing. -#}
{% macro create_incremental_claims() -%}
    {%- set text = tokenbook.type_text() | trim -%}
    create table if not exists {{ tokenbook.layer_relation('raw', 'incremental_claims') }} (
        model {{ text }},
        invocation_id {{ text }},
        source {{ text }},
        load_id {{ text }},
        load_date date,
        status {{ text }}
    )
{%- endmacro %}

{% macro create_incremental_partitions() -%}
    {%- set text = tokenbook.type_text() | trim -%}
    create table if not exists {{ tokenbook.layer_relation('raw', 'incremental_partitions') }} (
        model {{ text }},
        invocation_id {{ text }},
        partition_date date
    )
{%- endmacro %}

{#- True while dbt really runs the model against the warehouse (run / build of a model node),
    false in parse, offline compile, docs and unit tests. -#}
{% macro incremental_runs_for_real() -%}
    {%- set real = execute and flags.WHICH in ('run', 'build')
        and model is defined and model.get('resource_type') == 'model' -%}
    {{ return(real) }}
{%- endmacro %}

{% macro date_literal(value) -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#- `column in (dates...)` as constants (partition pruning), or a false predicate. -#}
{% macro in_dates(column, dates) -%}
    {%- if dates -%}
        {{ column }} in ({% for d in dates %}{{ tokenbook.date_literal(d) }}{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        1 = 0
    {%- endif -%}
{%- endmacro %}

{#- The `run_date` var (the Airflow run's data_interval_start, passed by the DAG): loads
    dated after it belong to later runs and are left for them. No var: every pending load. -#}
{% macro run_date_bound(column) -%}
    {%- set run_date = var('run_date', none) -%}
    {%- if run_date -%} and {{ column }} <= {{ tokenbook.date_literal(run_date) }}{%- endif -%}
{%- endmacro %}

{#- The plan of fct_llm_calls for this run: {'incremental': bool, 'dates': [...]} where dates
    are the call dates to rebuild. Claims the pending loads and price versions as a side effect
    (only in a real run). -#}
{% macro fct_llm_calls_plan() -%}
    {%- if not tokenbook.incremental_runs_for_real() -%}
        {%- if var('compile_incremental', false) -%}
            {{ return({'incremental': true, 'dates': var('compile_incremental_dates', ['2026-01-01'])}) }}
        {%- endif -%}
        {{ return({'incremental': false, 'dates': []}) }}
    {%- endif -%}
    {%- set text = tokenbook.type_text() | trim -%}
    {%- set incremental = is_incremental() -%}
    {#- Gateway partitions with no audit row (written by hand or by another tool) count when
        newer than the model's latest load. -#}
    {%- set newest = none -%}
    {%- if incremental -%}
        {%- set result = run_query("select cast(max(load_date) as " ~ text ~ ") from " ~ this) -%}
        {%- set newest = result.columns[0].values()[0] if result and result.columns[0].values() else none -%}
    {%- endif -%}
    {#- A warehouse whose raw tables were written without the loaders has no audit yet. -#}
    {%- set audit = adapter.get_relation(database=this.database,
        schema=tokenbook.layer_schema('raw') | trim, identifier='load_audit') -%}
    {%- do run_query(tokenbook.fct_llm_calls_claim_sql(this, invocation_id, newest, audit is not none)) -%}
    {%- if not incremental -%}
        {{ return({'incremental': false, 'dates': []}) }}
    {%- endif -%}
    {%- do run_query(tokenbook.fct_llm_calls_partitions_sql(this, invocation_id)) -%}
    {%- set result = run_query(tokenbook.rebuilt_partitions_sql(this, invocation_id)) -%}
    {%- set dates = result.columns[0].values() | list if result else [] -%}
    {%- do log(this.identifier ~ ": rebuilding " ~ (dates | length) ~ " partition(s)" ~ (": " ~ (dates | join(', ')) if dates | length <= 20 else ''), info=true) -%}
    {{ return({'incremental': true, 'dates': dates}) }}
{%- endmacro %}

{% macro price_version_id() -%}
    {%- set text = tokenbook.type_text() | trim -%}
    {{ dbt.concat(["provider", "'/'", "model", "'@'", "cast(valid_from as " ~ text ~ ")", "'#'", "coalesce(version_id, '')"]) }}
{%- endmacro %}

{#- Claim every gateway load (audit), unaudited new gateway partition and price version that
    `relation` has not built yet, for this invocation. -#}
{% macro fct_llm_calls_claim_sql(relation, invocation, newest=none, has_audit=true) -%}
    {%- set claims = tokenbook.layer_relation('raw', 'incremental_claims') -%}
    {%- set audit = tokenbook.layer_relation('raw', 'load_audit') -%}
    {%- set text = tokenbook.type_text() | trim -%}
    insert into {{ claims }} (model, invocation_id, source, load_id, load_date, status)
    select '{{ relation.identifier }}', '{{ invocation }}', source, load_id, load_date, 'claimed'
    from (
        {%- if has_audit %}
        select distinct
            cast('gateway' as {{ text }}) as source,
            cast(load_id as {{ text }}) as load_id,
            load_date
        from {{ audit }}
        where source = 'gateway' {{ tokenbook.run_date_bound('load_date') }}
        union distinct
        {%- endif %}
        select distinct
            cast('gateway_unaudited' as {{ text }}) as source,
            cast(load_date as {{ text }}) as load_id,
            load_date
        from {{ tokenbook.layer_relation('raw', 'gateway_calls') }}
        where {{ 'load_date > ' ~ tokenbook.date_literal(newest) if newest else '1 = 1' }}
          {{ tokenbook.run_date_bound('load_date') }}
          {%- if has_audit %}
          and load_date not in (select load_date from {{ audit }} where source = 'gateway')
          {%- endif %}
        union distinct
        select distinct
            cast('price_book' as {{ text }}) as source,
            {{ tokenbook.price_version_id() }} as load_id,
            valid_from as load_date
        from {{ tokenbook.layer_relation('raw', 'price_book_versions') }}
    ) as pending
    where not exists (
        select 1 from {{ claims }} as c
        where c.model = '{{ relation.identifier }}' and c.status = 'built'
          and c.source = pending.source and c.load_id = pending.load_id
    )
{%- endmacro %}

{#- The call dates to rebuild for this invocation's claims. Calls whose versions changed:
    those in a changed gateway partition (as now loaded) and those the model holds from one
    (as loaded before); their call dates in both are rebuilt. So are the dates of calls a new
    price version may reprice: same provider, and the model id holds the version's model,
    or the call was not priced. -#}
{% macro fct_llm_calls_partitions_sql(relation, invocation) -%}
    {%- set claims = tokenbook.layer_relation('raw', 'incremental_claims') -%}
    {%- set prices = tokenbook.layer_relation('raw', 'price_book_versions') -%}
    {%- set claimed -%}
        select source, load_id, load_date from {{ claims }}
        where model = '{{ relation.identifier }}' and invocation_id = '{{ invocation }}'
    {%- endset -%}
    insert into {{ tokenbook.layer_relation('raw', 'incremental_partitions') }} (model, invocation_id, partition_date)
    with
    changed_loads as (
        select distinct load_date from ({{ claimed }}) as c where source != 'price_book'
    ),
    changed_prices as (
        select distinct provider, model
        from {{ prices }}
        where {{ tokenbook.price_version_id() }}
            in (select load_id from ({{ claimed }}) as c where source = 'price_book')
    ),
    {#- a call is looked up both as staged (a new load) and as built (what it was before) -#}
    {%- set call_tables = [ref('stg_gateway__calls'), relation] %}
    candidate_calls as (
        {%- for calls in call_tables %}
        select call_id from {{ calls }}
        where load_date in (select load_date from changed_loads)
        {% if not loop.last %}union distinct{% endif %}
        {%- endfor %}
    ),
    affected as (
        {%- for calls in call_tables %}
        select call_date from {{ calls }}
        where call_id in (select call_id from candidate_calls)
        union distinct
        {%- endfor %}
        select fct.call_date from {{ relation }} as fct
        inner join changed_prices
            on fct.provider = changed_prices.provider
            and (fct.catalog_model = changed_prices.model
                 or not fct.is_priced
                 or strpos(lower(fct.model), lower(changed_prices.model)) > 0)
    )
    select distinct '{{ relation.identifier }}', '{{ invocation }}', call_date
    from affected
    where call_date is not null
{%- endmacro %}

{% macro rebuilt_partitions_sql(relation, invocation) -%}
    select distinct cast(partition_date as {{ tokenbook.type_text() }})
    from {{ tokenbook.layer_relation('raw', 'incremental_partitions') }}
    where model = '{{ relation.identifier }}' and invocation_id = '{{ invocation }}'
    order by 1
{%- endmacro %}

{#- pre-hook: empty the partitions this run rebuilds (a partition whose rows were all
    restated away stays empty). Nothing on a first or full build. -#}
{% macro delete_rebuilt_partitions(column) -%}
    {%- if tokenbook.incremental_runs_for_real() and is_incremental() -%}
        {{ tokenbook.delete_rebuilt_partitions_sql(this, column, invocation_id) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro delete_rebuilt_partitions_sql(relation, column, invocation) -%}
    delete from {{ relation }}
    where {{ column }} in (
        select partition_date from {{ tokenbook.layer_relation('raw', 'incremental_partitions') }}
        where model = '{{ relation.identifier }}' and invocation_id = '{{ invocation }}'
    )
{%- endmacro %}

{#- Offline proof of the BigQuery path (tests/test_bigquery_compile.py): `dbt run-operation
    incremental_statements --args '{model: fct_llm_calls, sql: COMPILED}' --target bigquery
    --no-populate-cache` logs, between markers, the statements an incremental run sends:
    the claims and rebuilt-partition queries, the pre-hook delete, dbt-bigquery's own insert_overwrite script (the adapter's macro, fed
    the model's config and contract columns), and the post-hook. Nothing is queried. -#}
{% macro incremental_statements(model, sql) -%}
    {%- set node = graph.nodes['model.tokenbook.' ~ model] -%}
    {%- set target_relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- set tmp_relation = make_temp_relation(target_relation) -%}
    {%- set partition_by = adapter.parse_partition_by(node.config.partition_by) -%}
    {%- set dest_columns = [] -%}
    {%- for name in node.columns -%}{%- do dest_columns.append({'name': name, 'quoted': adapter.quote(name)}) -%}{%- endfor -%}
    {%- set build_sql = bq_generate_incremental_build_sql(
        node.config.incremental_strategy, tmp_relation, target_relation, sql, none, partition_by,
        node.config.get('partitions'), dest_columns, true, false, none) -%}
    {%- set statements = [
        tokenbook.fct_llm_calls_claim_sql(target_relation, 'INVOCATION', '2026-09-30'),
        tokenbook.fct_llm_calls_partitions_sql(target_relation, 'INVOCATION'),
        tokenbook.rebuilt_partitions_sql(target_relation, 'INVOCATION'),
        tokenbook.delete_rebuilt_partitions_sql(target_relation, partition_by.field, 'INVOCATION'),
        build_sql,
        tokenbook.mark_claims_built_sql(model, 'INVOCATION'),
    ] -%}
    {%- for statement in statements -%}
        {%- do log("-- tokenbook statement begin\n" ~ statement ~ "\n-- tokenbook statement end", info=true) -%}
    {%- endfor -%}
{%- endmacro %}

{#- The statement that marks the loads a run claimed as built: the post-hook below and the
    BigQuery proof (incremental_statements) render this one macro. -#}
{% macro mark_claims_built_sql(model, invocation) -%}
    update {{ tokenbook.layer_relation('raw', 'incremental_claims') }}
    set status = 'built'
    where model = '{{ model }}' and invocation_id = '{{ invocation }}'
{%- endmacro %}

{#- post-hook: the loads this run claimed are built. -#}
{% macro mark_claims_built() -%}
    {%- if tokenbook.incremental_runs_for_real() -%}
        {{ tokenbook.mark_claims_built_sql(this.identifier, invocation_id) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
