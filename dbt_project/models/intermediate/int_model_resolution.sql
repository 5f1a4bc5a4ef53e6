{#- One row per distinct (provider, model) pair as logged -> canonical provider and the
    price-book entry it resolves to (null when none: such calls stay unpriced, never 0).

    Order of rules (first hit wins), all in SQL so they run in the warehouse:
      1. model_aliases (the organisation's deployment names, then public aliases), exact id
      2. model_aliases, LIKE pattern
      3. the id as logged, without its own provider's route prefix (`groq/`, `mistral/`,
         `openrouter/`): ids that hold a `/` themselves (`together_ai`'s `meta-llama/...`)
      4. a reseller's `vendor/model` id (OpenRouter bills the vendor's list price; the
         resellers are the var `tb_resellers`, default [openrouter]): the vendor's catalogue
         entry, as written or with dots as dashes (`anthropic/claude-3.5-sonnet`)
      5. the id itself, after removing routing prefixes (`openai/`, `bedrock/converse/`),
         Vertex resource paths (`publishers/google/models/`) and Bedrock ARNs
      6. without a Bedrock regional prefix (`us.`, `eu.`, `apac.`, `global.`, ...)
      7. without a Bedrock version suffix (`-v1:0`, `:0`)
      8. without the vendor prefix of Bedrock ids (`anthropic.`, `amazon.`, `meta.`, ...)
      9. without a date / version suffix (`-20250929`, `-2024-08-06`, `@20250929`, `-001`)
     10. without a preview / experimental suffix (`-preview-05-06`, `-exp-0827`)
    A candidate only counts if the provider's own catalogue holds it: a model is never priced
    with another vendor's price, except a reseller's (rule 4), which bills that price. -#}
{%- set resellers = var('tb_resellers') -%}
with

pairs as (

    select distinct provider_raw, model
    from {{ ref('stg_gateway__calls') }}

),

keys as (

    select
        provider_raw,
        model as model_raw,
        lower(trim(coalesce(provider_raw, ''))) as provider_key,
        lower(trim(coalesce(model, ''))) as model_key
    from pairs

),

with_prefix as (

    select
        *,
        {{ tokenbook.regex_extract('model_key', '^([a-z0-9_.-]+)/') }} as model_prefix
    from keys

),

aliases as (

    select lower(provider_alias) as provider_alias, provider
    from {{ ref('provider_aliases') }}

),

with_provider as (

    select
        with_prefix.*,
        coalesce(by_column.provider, by_prefix.provider, nullif(with_prefix.provider_key, ''))
            as provider,
        by_prefix.provider as prefix_provider
    from with_prefix
    left join aliases as by_column
        on with_prefix.provider_key = by_column.provider_alias
    left join aliases as by_prefix
        on with_prefix.model_prefix = by_prefix.provider_alias

),

with_own_id as (

    -- the id without its own provider's route prefix (`groq/llama-3.1-8b-instant` logged for
    -- groq); a prefix naming another vendor is kept (`anthropic/...` logged for openrouter)
    select
        *,
        case
            when prefix_provider is not null and prefix_provider = provider
                then {{ tokenbook.regex_replace('model_key', '^[^/]+/') }}
            else model_key
        end as model_own
    from with_provider

),

stripped as (

    select
        *,
        {{ tokenbook.regex_replace(
            tokenbook.regex_replace(
                tokenbook.regex_replace(
                    tokenbook.regex_replace('model_own', '^arn:aws:bedrock:[^/]*/'),
                    '^(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/'),
                '^((openai|anthropic|azure|azure_openai|vertex_ai|vertex_ai_beta|vertex|gemini|google|bedrock|aws_bedrock|bedrock_converse|converse|invoke|text-completion-openai)/)+'),
            '^[a-z]{2}(-gov)?-[a-z]+-[0-9]+/') }} as model_id
    from with_own_id

),

normalised as (

    select
        *,
        {{ tokenbook.regex_replace('model_id', '^(us|eu|apac|global|us-gov|jp|au|ca|in)[.]') }}
            as model_no_region
    from stripped

),

normalised_2 as (

    select
        *,
        {{ tokenbook.regex_replace('model_no_region', '(-v[0-9]+(:[0-9]+)?|:[0-9]+)$') }}
            as model_no_version
    from normalised

),

normalised_3 as (

    select
        *,
        {{ tokenbook.regex_replace('model_no_version', '^(anthropic|amazon|meta|mistral|cohere|ai21|openai|deepseek|qwen|google|writer)[.]') }}
            as model_no_vendor
    from normalised_2

),

normalised_4 as (

    select
        *,
        {{ tokenbook.regex_replace('model_no_vendor', '(-[0-9]{8}|-[0-9]{4}-[0-9]{2}-[0-9]{2}|@[0-9]{8}|@default|@latest|-latest|-[0-9]{3})$') }}
            as model_undated
    from normalised_3

),

normalised_5 as (

    select
        *,
        {{ tokenbook.regex_replace('model_undated', '-(preview|exp)(-[0-9]{2}-[0-9]{2,4}|-[0-9]+)?$') }}
            as model_no_preview
    from normalised_4

),

catalogue as (

    select distinct provider, model
    from {{ ref('int_price_book') }}

),

model_aliases as (

    select
        lower(provider) as provider,
        lower(raw_model) as raw_model,
        lower(match_type) as match_type,
        lower(catalog_provider) as catalog_provider,
        lower(catalog_model) as catalog_model
    from {{ ref('model_aliases') }}

),

alias_candidates as (

    select
        n.provider_raw,
        n.model_raw,
        n.provider,
        case when a.match_type = 'exact' then 1 else 2 end as priority,
        cast(case when a.match_type = 'exact' then 'alias' else 'alias_pattern' end
            as {{ tokenbook.type_text() }}) as resolution_rule,
        a.catalog_provider,
        a.catalog_model
    from normalised_5 as n
    inner join model_aliases as a
        on (a.provider = n.provider or a.provider = '*')
        and (
            (a.match_type = 'exact' and (n.model_key = a.raw_model or n.model_id = a.raw_model))
            or (a.match_type = 'like' and n.model_key like a.raw_model)
        )

),

reseller_ids as (

    select
        n.provider_raw,
        n.model_raw,
        n.provider,
        vendors.provider as vendor_provider,
        {{ tokenbook.regex_replace('n.model_own', '^[^/]+/') }} as vendor_model
    from normalised_5 as n
    inner join aliases as vendors
        on {{ tokenbook.regex_extract('n.model_own', '^([a-z0-9_.-]+)/') }} = vendors.provider_alias
    where n.provider in ('{{ resellers | join("', '") }}')

),

reseller_candidates as (

    {#- the vendor's id as written, then with dots as dashes (`claude-3.5-sonnet`) -#}
    {%- for catalog_model in ['vendor_model', "replace(vendor_model, '.', '-')"] %}
    select
        provider_raw,
        model_raw,
        provider,
        4 as priority,
        cast('reseller' as {{ tokenbook.type_text() }}) as resolution_rule,
        vendor_provider as catalog_provider,
        {{ catalog_model }} as catalog_model
    from reseller_ids
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

rule_candidates as (

    {%- set rules = [
        (3, 'exact', 'model_own'),
        (5, 'exact', 'model_id'),
        (6, 'region_prefix', 'model_no_region'),
        (7, 'version_suffix', 'model_no_version'),
        (8, 'vendor_prefix', 'model_no_vendor'),
        (9, 'dated_version', 'model_undated'),
        (10, 'preview_suffix', 'model_no_preview'),
    ] %}
    {%- for priority, rule, column in rules %}
    select
        provider_raw,
        model_raw,
        provider,
        {{ priority }} as priority,
        cast('{{ rule }}' as {{ tokenbook.type_text() }}) as resolution_rule,
        provider as catalog_provider,
        {{ column }} as catalog_model
    from normalised_5
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

candidates as (

    select * from alias_candidates
    union all
    select * from reseller_candidates
    union all
    select * from rule_candidates

),

matched as (

    select
        candidates.*,
        row_number() over (
            partition by candidates.provider_raw, candidates.model_raw
            order by candidates.priority, candidates.catalog_model
        ) as match_rank
    from candidates
    inner join catalogue
        on candidates.catalog_provider = catalogue.provider
        and candidates.catalog_model = catalogue.model

),

final as (

    select
        n.provider_raw,
        n.model_raw,
        n.provider,
        m.catalog_provider,
        m.catalog_model,
        coalesce(m.resolution_rule, cast('unresolved' as {{ tokenbook.type_text() }}))
            as resolution_rule
    from normalised_5 as n
    left join matched as m
        on coalesce(n.provider_raw, '') = coalesce(m.provider_raw, '')
        and coalesce(n.model_raw, '') = coalesce(m.model_raw, '')
        and m.match_rank = 1

)

select * from final
