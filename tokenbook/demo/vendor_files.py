"""The demo vendors' export files in their real shapes, written from the ``priced`` lines
(DuckDB, built by :func:`tokenbook.demo.billing.write_vendor_exports`): OpenAI and Anthropic
Admin API pages, the GCP billing export, the AWS CUR 2.0 and the Azure EA actual-cost CSV.
"""

from __future__ import annotations

from pathlib import Path

AWS_ACCOUNT = "123456789012"
AZURE_SUBSCRIPTION = "5f1c2d3e-4b5a-4c6d-8e7f-000000000001"
GCP_BILLING_ACCOUNT = "01D3M0-7A1B2C-3D4E5F"


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _write_pages(con, out: Path, prefix: str, sql: str) -> list[str]:
    """``sql`` yields (day, page_json) rows; one file per day."""
    written = []
    for day, page in con.execute(sql).fetchall():
        path = out / f"{prefix}-{day}.jsonl"
        _write_lines(path, [page])
        written.append(str(path))
    return written


def write_openai(con, out: Path) -> list[str]:
    epoch = "epoch(day::TIMESTAMP)::BIGINT"
    usage = f"""
    with g as (
      select day, model, project_id, api_key_id, is_batch,
        sum(tokens) filter (where token_type = 'input') as unc,
        sum(tokens) filter (where token_type = 'cache_read') as cr,
        sum(tokens) filter (where token_type = 'output') as outp,
        sum(tokens) filter (where token_type = 'request') as req
      from priced where vendor = 'openai' group by all
    ),
    r as (
      select day, to_json(list(json_object(
        'object', 'organization.usage.completions.result',
        'input_tokens', coalesce(unc, 0) + coalesce(cr, 0), 'input_cached_tokens', coalesce(cr, 0),
        'input_uncached_tokens', coalesce(unc, 0), 'output_tokens', coalesce(outp, 0),
        'input_audio_tokens', 0, 'output_audio_tokens', 0,
        'num_model_requests', coalesce(req, 0), 'project_id', project_id, 'user_id', NULL,
        'api_key_id', api_key_id, 'model', model, 'batch', is_batch,
        'service_tier', case when is_batch then 'batch' else 'default' end)
        order by model, project_id, api_key_id, is_batch))::JSON as results
      from g group by day
    )
    select day, json_object('object', 'page', 'data', json_array(json_object(
      'object', 'bucket', 'start_time', {epoch}, 'end_time', {epoch} + 86400,
      'results', results)), 'has_more', false, 'next_page', NULL)::VARCHAR
    from r order by day"""
    costs = f"""
    with g as (
      select day, project_id,
        model || ', ' || case token_type when 'input' then 'input'
          when 'cache_read' then 'cached input' else 'output' end
          || case when is_batch then ', batch' else '' end as line_item,
        sum(cost) as cost
      from priced where vendor = 'openai' and token_type <> 'request' group by all
    ),
    r as (
      select day, to_json(list(json_object(
        'object', 'organization.costs.result',
        'amount', json_object('value', cost, 'currency', 'usd'),
        'line_item', line_item, 'project_id', project_id, 'api_key_id', NULL,
        'quantity', NULL, 'quantity_unit', NULL) order by line_item, project_id))::JSON as results
      from g group by day
    )
    select day, json_object('object', 'page', 'data', json_array(json_object(
      'object', 'bucket', 'start_time', {epoch}, 'end_time', {epoch} + 86400,
      'results', results)), 'has_more', false, 'next_page', NULL)::VARCHAR
    from r order by day"""
    return _write_pages(con, out, "usage-completions", usage) + _write_pages(
        con, out, "costs", costs
    )


def write_anthropic(con, out: Path) -> list[str]:
    bucket = (
        "strftime(day, '%Y-%m-%dT00:00:00Z') as s, "
        "strftime(day + interval 1 day, '%Y-%m-%dT00:00:00Z') as e"
    )
    usage = f"""
    with g as (
      select day, model, project_id as workspace_id, api_key_id, is_batch,
        sum(tokens) filter (where token_type = 'input') as unc,
        sum(tokens) filter (where token_type = 'cache_write_5m') as w5,
        sum(tokens) filter (where token_type = 'cache_write_1h') as w1,
        sum(tokens) filter (where token_type = 'cache_read') as cr,
        sum(tokens) filter (where token_type = 'output') as outp
      from priced where vendor = 'anthropic' group by all
    ),
    r as (
      select day, to_json(list(json_object(
        'uncached_input_tokens', coalesce(unc, 0),
        'cache_creation', json_object('ephemeral_1h_input_tokens', coalesce(w1, 0),
                                      'ephemeral_5m_input_tokens', coalesce(w5, 0)),
        'cache_read_input_tokens', coalesce(cr, 0), 'output_tokens', coalesce(outp, 0),
        'server_tool_use', json_object('web_search_requests', 0),
        'api_key_id', api_key_id, 'workspace_id', workspace_id, 'model', model,
        'service_tier', case when is_batch then 'batch' else 'standard' end,
        'context_window', '0-200k') order by model, workspace_id, api_key_id, is_batch))::JSON as results
      from g group by day
    )
    select day, json_object('data', json_array(json_object('starting_at', s, 'ending_at', e,
      'results', results)), 'has_more', false, 'next_page', NULL)::VARCHAR
    from (select *, {bucket} from r) order by day"""
    costs = f"""
    with g as (
      select day, project_id as workspace_id, model, is_batch, token_type, sum(cost) as cost
      from priced where vendor = 'anthropic' and token_type <> 'request' group by all
    ),
    r as (
      select day, to_json(list(json_object(
        'currency', 'USD',
        'amount', cast(cast(cost * 100 as DECIMAL(38,7)) as VARCHAR),
        'workspace_id', workspace_id,
        'description', model || case when is_batch then ' Batch' else ' Usage' end || ' - ' ||
          case token_type when 'input' then 'Input Tokens'
            when 'cache_read' then 'Input Tokens, Cache Hit'
            when 'cache_write_5m' then 'Input Tokens, Cache Write 5m'
            when 'cache_write_1h' then 'Input Tokens, Cache Write 1h'
            else 'Output Tokens' end,
        'cost_type', 'tokens', 'context_window', '0-200k', 'model', model,
        'service_tier', case when is_batch then 'batch' else 'standard' end,
        'token_type', case token_type when 'input' then 'uncached_input_tokens'
          when 'cache_read' then 'cache_read_input_tokens'
          when 'cache_write_5m' then 'cache_creation.ephemeral_5m_input_tokens'
          when 'cache_write_1h' then 'cache_creation.ephemeral_1h_input_tokens'
          else 'output_tokens' end) order by model, workspace_id, is_batch, token_type))::JSON as results
      from g group by day
    )
    select day, json_object('data', json_array(json_object('starting_at', s, 'ending_at', e,
      'results', results)), 'has_more', false, 'next_page', NULL)::VARCHAR
    from (select *, {bucket} from r) order by day"""
    return _write_pages(con, out, "usage-messages", usage) + _write_pages(
        con, out, "cost-report", costs
    )


def write_gcp(con, out: Path, tz: dict) -> list[str]:
    words = "string_split(replace(replace(model, 'gemini-', ''), '-', ' '), ' ')"
    sku = f"""'Gemini ' || array_to_string(list_transform({words},
              lambda w: upper(w[1]) || w[2:]), ' ') || case when is_batch then ' Batch' else '' end ||
              case token_type when 'input' then ' Input Text Tokens'
                when 'cache_read' then ' Cached Input Text Tokens'
                else ' Output Text Tokens' end"""
    sql = f"""
    with g as (
      select day, model, project_id, is_batch, token_type, sum(tokens) as tokens, sum(cost) as cost
      from priced where vendor = 'gcp' and token_type <> 'request' group by all
    )
    select strftime(day, '%Y-%m') as month, json_object(
      'billing_account_id', '{GCP_BILLING_ACCOUNT}',
      'service', json_object('id', 'C7E2-9256-1C43', 'description', 'Vertex AI'),
      'sku', json_object('id', upper(substr(md5({sku}), 1, 4) || '-' || substr(md5({sku}), 5, 4)
                           || '-' || substr(md5({sku}), 9, 4)), 'description', {sku}),
      'usage_start_time', strftime(day, '%Y-%m-%d 00:00:00 UTC'),
      'usage_end_time', strftime(day + interval 1 day, '%Y-%m-%d 00:00:00 UTC'),
      'project', json_object('id', 'acme-' || project_id, 'number', NULL, 'name', project_id,
                             'labels', json_array()),
      'labels', json_array(json_object('key', 'tb-project', 'value', project_id)),
      'system_labels', json_array(),
      'location', json_object('location', 'us-central1', 'country', 'US',
                              'region', 'us-central1', 'zone', NULL),
      'cost', cost, 'currency', 'USD', 'currency_conversion_rate', 1.0,
      'usage', json_object('amount', tokens, 'unit', 'count',
                           'amount_in_pricing_units', tokens / 1e6,
                           'pricing_unit', '1 million tokens'),
      'credits', json_array(), 'invoice', json_object('month', strftime(day, '%Y%m')),
      'cost_type', 'regular')::VARCHAR as row
    from g order by day, model, project_id, is_batch, token_type"""
    rows = con.execute(sql).fetchall()
    written = []
    for month in sorted({m for m, _ in rows}):
        path = out / f"billing-export-{month}.jsonl"
        _write_lines(path, [r for m, r in rows if m == month])
        written.append(str(path))
    return written


def _copy_csv_by_month(con, out: Path, prefix: str, sql: str) -> list[str]:
    months = [
        r[0] for r in con.execute(f"select distinct month from ({sql}) order by 1").fetchall()
    ]
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for month in months:
        path = out / f"{prefix}-{month}.csv"
        con.execute(
            f"copy (select * exclude (month) from ({sql}) where month = '{month}') "
            f"to '{path}' (header, delimiter ',')"
        )
        written.append(str(path))
    return written


def write_aws(con, out: Path, tz: dict) -> list[str]:
    suffix = """case token_type when 'input' then '-input-tokens'
        when 'output' then '-output-tokens'
        when 'cache_read' then '-cache-read-input-token-count'
        when 'cache_write_1h' then '-cache-write-1h-input-token-count'
        else '-cache-write-input-token-count' end || case when is_batch then '-batch' else '' end"""
    sql = f"""
    with g as (
      select day, model, project_id, is_batch, token_type, sum(tokens) as tokens, sum(cost) as cost,
        any_value(price_per_mtok) as price_per_mtok
      from priced where vendor = 'aws' and token_type <> 'request' group by all
    )
    select strftime(day, '%Y-%m') as month,
      substr(md5(concat_ws('|', day, model, project_id, is_batch, token_type)), 1, 24)
        as identity_line_item_id,
      strftime(day, '%Y-%m-%dT00:00:00Z') || '/' ||
        strftime(day + interval 1 day, '%Y-%m-%dT00:00:00Z') as identity_time_interval,
      '{AWS_ACCOUNT}' as bill_payer_account_id,
      strftime(date_trunc('month', day), '%Y-%m-%dT00:00:00Z') as bill_billing_period_start_date,
      '{AWS_ACCOUNT}' as line_item_usage_account_id,
      'Usage' as line_item_line_item_type,
      strftime(day, '%Y-%m-%dT00:00:00Z') as line_item_usage_start_date,
      strftime(day + interval 1 day, '%Y-%m-%dT00:00:00Z') as line_item_usage_end_date,
      'AmazonBedrock' as line_item_product_code,
      'USE1-' || model || {suffix} as line_item_usage_type,
      case when is_batch then 'InvokeModelBatchInference' else 'InvokeModelInference' end
        as line_item_operation,
      cast(cast(tokens as DECIMAL(38,3)) / 1000 as DECIMAL(38,3)) as line_item_usage_amount,
      'USD' as line_item_currency_code,
      cast(price_per_mtok / 1000 as DECIMAL(38,9)) as line_item_unblended_rate,
      cost as line_item_unblended_cost,
      cost as line_item_net_unblended_cost,
      'Amazon Bedrock usage: ' || model as line_item_line_item_description,
      'us-east-1' as product_region_code,
      cast(price_per_mtok / 1000 as DECIMAL(38,9)) as pricing_public_on_demand_rate,
      '1K tokens' as pricing_unit,
      json_object('user_project', project_id)::VARCHAR as resource_tags
    from g order by day, model, project_id, is_batch, token_type"""
    return _copy_csv_by_month(con, out, "cur2", sql)


def write_azure(con, out: Path) -> list[str]:
    meter = """model || case when is_batch then ' Batch' else '' end ||
        case token_type when 'input' then ' Inp glbl Tokens'
          when 'cache_read' then ' cchd Inp glbl Tokens' else ' Outp glbl Tokens' end"""
    sql = f"""
    with g as (
      select day, model, project_id, is_batch, token_type, sum(tokens) as tokens, sum(cost) as cost,
        any_value(price_per_mtok) as price_per_mtok
      from priced where vendor = 'azure' and token_type <> 'request' group by all
    )
    select strftime(day, '%Y-%m') as month,
      strftime(day, '%-m/%-d/%Y') as "Date",
      '{AZURE_SUBSCRIPTION}' as "SubscriptionId",
      'sub-ai-prod' as "SubscriptionName",
      'rg-' || project_id as "ResourceGroup",
      'EastUS' as "ResourceLocation",
      'Azure OpenAI - ' || {meter} as "ProductName",
      'Cognitive Services' as "MeterCategory",
      'Azure OpenAI' as "MeterSubCategory",
      substr(md5({meter}), 1, 8) || '-' || substr(md5({meter}), 9, 4) as "MeterId",
      {meter} as "MeterName",
      'US East' as "MeterRegion",
      '1K' as "UnitOfMeasure",
      cast(cast(tokens as DECIMAL(38,3)) / 1000 as DECIMAL(38,3)) as "Quantity",
      cast(price_per_mtok / 1000 as DECIMAL(38,9)) as "EffectivePrice",
      cost as "CostInBillingCurrency",
      'Microsoft.CognitiveServices' as "ConsumedService",
      '/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/rg-' || project_id ||
        '/providers/Microsoft.CognitiveServices/accounts/aoai-' || project_id as "ResourceId",
      '"project": "' || project_id || '"' as "Tags",
      cast(price_per_mtok / 1000 as DECIMAL(38,9)) as "UnitPrice",
      'Usage' as "ChargeType",
      'OnDemand' as "PricingModel",
      'USD' as "BillingCurrencyCode",
      strftime(date_trunc('month', day), '%-m/%-d/%Y') as "BillingPeriodStartDate",
      cast(price_per_mtok / 1000 as DECIMAL(38,9)) as "PayGPrice"
    from g order by day, model, project_id, is_batch, token_type"""
    return _copy_csv_by_month(con, out, "cost-actual", sql)
