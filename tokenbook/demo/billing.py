"""The demo organisation's vendor bills, derived from its gateway logs.

``write_vendor_exports(demo_dir, manifest, seed) -> dict`` reads ``demo_dir/gateway/*.jsonl.gz``
with DuckDB, works out what each vendor would bill (per vendor day x model x token type x
project / API key, at the default price book's prices; the planted bad lines are unreadable
for the vendor too, duplicates are billed once) and writes each vendor's export in its real
shape under ``demo_dir/billing/<vendor>/``:

- ``openai/usage-completions-YYYY-MM-DD.jsonl``, ``openai/costs-YYYY-MM-DD.jsonl`` (Admin API pages)
- ``anthropic/usage-messages-YYYY-MM-DD.jsonl``, ``anthropic/cost-report-YYYY-MM-DD.jsonl``
  (Admin API pages; cost amounts in cents)
- ``gcp/billing-export-YYYY-MM.jsonl`` (BigQuery billing export rows, Vertex AI SKUs)
- ``aws/cur2-YYYY-MM.csv`` (CUR 2.0 columns, Bedrock usage types, per 1K tokens)
- ``azure/cost-actual-YYYY-MM.csv`` (EA actual-cost columns, Azure OpenAI meters, per 1K tokens)

Three realistic gaps are planted, all moved by ``seed``, and described in the returned dict
(``{"billing": {...}}``, merged into the manifest) so tests can check that the reconciliation
finds them:

- ``unlogged_api_key``: an OpenAI or Anthropic key whose usage is billed but never logged by
  the gateway (shadow usage);
- ``unknown_price``: one model billed, from some day on, at a unit price the price book does not
  have (a price change the book missed);
- ``timezone_boundary``: one file-export vendor (GCP, AWS or Azure) cuts its days at midnight of
  a non-UTC zone, so usage shifts between adjacent days (monthly totals agree).

Billed model names: OpenAI, Anthropic, Vertex AI and Azure bill the price-book model name;
Bedrock usage types embed the Bedrock model id (``USE1-<model id>-input-tokens``).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np

from tokenbook.demo.catalog import MODELS
from tokenbook.demo.vendor_files import (
    write_anthropic,
    write_aws,
    write_azure,
    write_gcp,
    write_openai,
)
from tokenbook.pricing.default import default_rows, snapshot_source

VENDOR_OF_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "vertex_ai": "gcp",
    "bedrock": "aws",
    "azure_openai": "azure",
}
TZ_VENDORS = ("gcp", "aws", "azure")
TIMEZONES = ("America/Los_Angeles", "America/New_York", "Asia/Tokyo", "Europe/Berlin")
PRICE_FACTORS = ("1.15", "1.12", "0.88", "1.2")
PRICE_COLUMNS = (
    "input_per_mtok", "cache_read_per_mtok", "cache_write_5m_per_mtok", "cache_write_1h_per_mtok",
    "output_per_mtok", "batch_input_per_mtok", "batch_output_per_mtok",
    "batch_cache_read_per_mtok", "batch_cache_write_per_mtok",
)  # fmt: skip


def _sql_str(v: object) -> str:
    return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"


def _price_rows() -> tuple[list[tuple], str]:
    """(provider, model, *PRICE_COLUMNS) for the demo's catalogue models, and their source."""
    wanted = {(m.provider, m.catalog_model) for m in MODELS if m.catalog_model}
    try:
        rows = [r for r in default_rows() if (r["provider"], r["model"]) in wanted]
        # newest version per model (the demo period is after every valid_from)
        latest: dict[tuple[str, str], dict] = {}
        for r in sorted(rows, key=lambda r: str(r["valid_from"])):
            latest[(r["provider"], r["model"])] = r
        out = [(p, m, *(latest[(p, m)].get(c) for c in PRICE_COLUMNS)) for p, m in latest]
        if len(out) == len(wanted):
            return out, f"tokenbook.pricing default price book ({snapshot_source()})"
    except (FileNotFoundError, KeyError):  # no price-book snapshot: the catalogue's prices
        pass
    # Fallback: the catalogue's own list prices (copied from the same LiteLLM map).
    out = []
    for m in MODELS:
        if not m.catalog_model:
            continue
        i, o, cr = (
            Decimal(str(x)) for x in (m.input_per_mtok, m.output_per_mtok, m.cache_read_per_mtok)
        )
        out.append((m.provider, m.catalog_model, i, cr, i * Decimal("1.25"), i * 2, o,
                    i / 2, o / 2, cr / 2, i * Decimal("0.625")))  # fmt: skip
    return out, "tokenbook.demo.catalog list prices"


def _model_map_sql() -> str:
    rows = [
        f"({_sql_str(p)}, {_sql_str(mdl)}, {_sql_str(m.provider)}, {_sql_str(m.catalog_model)})"
        for m in MODELS
        if m.catalog_model and m.provider in VENDOR_OF_PROVIDER
        for p, mdl, _ in m.logged_as
    ]
    return (
        "select * from (values "
        + ", ".join(rows)
        + ") as t(provider_raw, model_raw, provider, model)"
    )


def _prices_sql(rows: list[tuple]) -> str:
    vals = ", ".join(
        "(" + ", ".join([_sql_str(r[0]), _sql_str(r[1])] + [
            "NULL" if v is None else f"CAST('{v}' AS DECIMAL(38,12))" for v in r[2:]
        ]) + ")"
        for r in rows
    )  # fmt: skip
    return f"select * from (values {vals}) as t(provider, model, {', '.join(PRICE_COLUMNS)})"


def _choose_gaps(con, seed: int, start: date, end: date) -> dict:
    rng = np.random.default_rng([seed, 4])
    days = (end - start).days + 1
    volume = con.execute(
        "select vendor, provider, model, sum(tokens) as t from bill_usage "
        "where token_type in ('input', 'output') group by all order by t desc, vendor, model"
    ).fetchall()
    # unlogged key: a key-carrying vendor's busiest-or-second model
    key_vendor = ["openai", "anthropic"][int(rng.integers(2))]
    options = [v for v in volume if v[0] == key_vendor] or [v for v in volume if v[0] in
                                                            ("openai", "anthropic")]  # fmt: skip
    uv = options[int(rng.integers(min(2, len(options))))]
    span = int(rng.integers(3, 8))
    ustart = start + timedelta(days=int(rng.integers(0, max(1, days - span))))
    unlogged = {
        "vendor": uv[0],
        "provider": uv[1],
        "model": uv[2],
        "api_key_id": f"key-unlogged-{rng.integers(16**6):06x}",
        "project_id": f"proj-shadow-{rng.integers(16**4):04x}",
        "start": ustart.isoformat(),
        "end": min(end, ustart + timedelta(days=span - 1)).isoformat(),
        "share_of_model_usage": round(float(rng.uniform(0.06, 0.15)), 3),
    }
    # time-zone boundary
    tz_vendor = TZ_VENDORS[int(rng.integers(len(TZ_VENDORS)))]
    tz = TIMEZONES[int(rng.integers(len(TIMEZONES)))]
    # unknown price: another vendor, one of its models, from a day in the first half on
    used = {uv[0], tz_vendor}
    candidates = [v for v in volume if v[0] not in used] or volume
    pv = candidates[int(rng.integers(min(3, len(candidates))))]
    pfrom = start + timedelta(days=int(rng.integers(0, max(1, days // 2))))
    factor = PRICE_FACTORS[int(rng.integers(len(PRICE_FACTORS)))]
    price = {
        "vendor": pv[0],
        "provider": pv[1],
        "model": pv[2],
        "from": pfrom.isoformat(),
        "factor": factor,
        "token_types": ["input", "output"],
    }
    timezone = {"vendor": tz_vendor, "provider": _provider_of(tz_vendor), "timezone": tz}
    return {"unlogged_api_key": unlogged, "unknown_price": price, "timezone_boundary": timezone}


def _provider_of(vendor: str) -> str:
    return next(p for p, v in VENDOR_OF_PROVIDER.items() if v == vendor)


def write_vendor_exports(demo_dir: str | Path, manifest: dict, seed: int) -> dict:
    """Write the five vendors' exports for the demo in ``demo_dir`` (see module docstring);
    returns ``{"billing": {...}}`` describing files, totals and the planted gaps."""
    demo_dir = Path(demo_dir)
    gateway = demo_dir / "gateway"
    if not any(gateway.glob("gateway-*.jsonl.gz")):
        raise FileNotFoundError(f"no gateway logs in {gateway}: run tokenbook demo-data first")
    start = date.fromisoformat(manifest["start"])
    end = date.fromisoformat(manifest["end"])
    out = demo_dir / "billing"
    price_rows, price_source = _price_rows()
    con = duckdb.connect()
    try:
        con.execute("set TimeZone='UTC'")
        cols = {
            c: "VARCHAR"
            for c in ("request_id", "timestamp", "provider", "model", "input_tokens",
                      "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens",
                      "cache_write_ttl", "batch", "api_key_id", "project_id")
        }  # fmt: skip
        con.execute(
            f"""create temp table calls as
            select * from (
              select request_id, try_cast("timestamp" as TIMESTAMPTZ) as ts, provider, model,
                try_cast(input_tokens as BIGINT) as inp, try_cast(output_tokens as BIGINT) as outp,
                coalesce(try_cast(cache_read_input_tokens as BIGINT), 0) as cr,
                coalesce(try_cast(cache_write_input_tokens as BIGINT), 0) as cw,
                coalesce(cache_write_ttl, '5m') as ttl,
                coalesce(try_cast(batch as BOOLEAN), false) as is_batch,
                coalesce(api_key_id, 'key-default') as api_key_id,
                coalesce(project_id, 'proj-default') as project_id
              from read_json('{gateway}/gateway-*.jsonl.gz', format='newline_delimited',
                             columns={cols!r}, ignore_errors=true)
            )
            where request_id is not null and ts is not null and inp >= 0 and outp >= 0
              and cr >= 0 and cw >= 0 and cr + cw <= inp
            qualify row_number() over (partition by request_id order by ts) = 1"""
        )
        con.execute(f"create temp table model_map as {_model_map_sql()}")
        con.execute(f"create temp table prices as {_prices_sql(price_rows)}")
        # per-call token lines with the vendor's token types, in UTC days for now
        con.execute(
            """create temp table call_lines as
            with mapped as (
              select c.* exclude (provider, model), m.provider as provider, m.model as model_billed,
                case m.provider when 'openai' then 'openai' when 'anthropic' then 'anthropic'
                  when 'vertex_ai' then 'gcp' when 'bedrock' then 'aws' else 'azure' end as vendor
              from calls c join model_map m
                on c.provider = m.provider_raw and c.model = m.model_raw
            )
            select vendor, provider, model_billed as model, ts, api_key_id, project_id, is_batch,
              token_type, tokens
            from mapped,
            lateral (select * from (values
                ('input', inp - cr - case when vendor in ('anthropic', 'aws') then cw else 0 end),
                ('cache_read', cr),
                ('cache_write_5m', case when vendor in ('anthropic', 'aws') and ttl <> '1h'
                                        then cw else 0 end),
                ('cache_write_1h', case when vendor in ('anthropic', 'aws') and ttl = '1h'
                                        then cw else 0 end),
                ('output', outp),
                ('request', 1)) as t(token_type, tokens))
            where tokens > 0"""
        )
        con.execute(
            """create temp table bill_usage as
            select vendor, provider, model, token_type, sum(tokens) as tokens
            from call_lines group by all"""
        )
        gaps = _choose_gaps(con, seed, start, end)
        tzg, ug, pg = gaps["timezone_boundary"], gaps["unlogged_api_key"], gaps["unknown_price"]
        # vendor days: UTC, except the time-zone vendor's local days
        con.execute(
            f"""create temp table lines as
            select vendor, provider, model, api_key_id, project_id, is_batch, token_type,
              cast(case when vendor = {_sql_str(tzg["vendor"])}
                   then timezone({_sql_str(tzg["timezone"])}, ts) else timezone('UTC', ts) end
                   as DATE) as day,
              sum(tokens)::BIGINT as tokens
            from call_lines group by all"""
        )
        # shadow usage of the unlogged key: a share of that model's daily usage
        con.execute(
            f"""insert into lines
            select vendor, provider, model, {_sql_str(ug["api_key_id"])},
              {_sql_str(ug["project_id"])}, false, token_type, day,
              greatest(1, round(sum(tokens) * {ug["share_of_model_usage"]}))::BIGINT
            from lines
            where vendor = {_sql_str(ug["vendor"])} and model = {_sql_str(ug["model"])}
              and not is_batch and day between DATE '{ug["start"]}' and DATE '{ug["end"]}'
            group by vendor, provider, model, token_type, day"""
        )
        # unit prices (USD per million tokens) and cost per line
        con.execute(
            f"""create temp table priced as
            select l.*,
              case when l.token_type = 'request' then NULL else
                cast(coalesce(case l.token_type
                  when 'input' then case when is_batch then p.batch_input_per_mtok end
                  when 'output' then case when is_batch then p.batch_output_per_mtok end
                  when 'cache_read' then case when is_batch then p.batch_cache_read_per_mtok end
                  else case when is_batch then p.batch_cache_write_per_mtok end end,
                case l.token_type when 'input' then p.input_per_mtok
                  when 'output' then p.output_per_mtok when 'cache_read' then p.cache_read_per_mtok
                  when 'cache_write_5m' then p.cache_write_5m_per_mtok
                  when 'cache_write_1h' then p.cache_write_1h_per_mtok end, p.input_per_mtok)
                * case when l.vendor = {_sql_str(pg["vendor"])} and l.model = {_sql_str(pg["model"])}
                    and l.token_type in ('input', 'output') and l.day >= DATE '{pg["from"]}'
                  then CAST('{pg["factor"]}' AS DECIMAL(10,4)) else 1 end as DECIMAL(38,12))
              end as price_per_mtok
            from lines l left join prices p on l.provider = p.provider and l.model = p.model"""
        )
        con.execute(
            "alter table priced add column cost DECIMAL(38,9); "
            "update priced set cost = cast(tokens * price_per_mtok / 1000000 as DECIMAL(38,9))"
        )
        pg["book_price_per_mtok"] = {
            tt: str(_book_price(con, pg["provider"], pg["model"], tt)) for tt in pg["token_types"]
        }
        pg["billed_price_per_mtok"] = {
            tt: str((Decimal(pg["book_price_per_mtok"][tt]) * Decimal(pg["factor"])).normalize())
            for tt in pg["token_types"]
        }
        # what the unknown price adds to the bill, against the book
        pg["extra_cost_usd"] = str(
            con.execute(
                f"""select coalesce(sum(cost - cast(tokens * price_per_mtok
                      / CAST('{pg["factor"]}' AS DECIMAL(10,4)) / 1000000 as DECIMAL(38,9))), 0)
                    from priced where vendor = ? and model = ? and day >= ?
                      and token_type in ('input', 'output')""",
                [pg["vendor"], pg["model"], pg["from"]],
            ).fetchone()[0]
        )
        ug["billed_cost_usd"] = str(
            con.execute(
                "select coalesce(sum(cost), 0) from priced where api_key_id = ?", [ug["api_key_id"]]
            ).fetchone()[0]
        )
        ug["tokens"] = int(
            con.execute(
                "select coalesce(sum(tokens), 0) from priced where api_key_id = ? "
                "and token_type <> 'request'",
                [ug["api_key_id"]],
            ).fetchone()[0]
        )
        files: dict[str, list[str]] = {}
        files["openai"] = write_openai(con, out / "openai")
        files["anthropic"] = write_anthropic(con, out / "anthropic")
        files["gcp"] = write_gcp(con, out / "gcp", tzg)
        files["aws"] = write_aws(con, out / "aws", tzg)
        files["azure"] = write_azure(con, out / "azure")
        totals = con.execute(
            "select vendor, coalesce(sum(cost), 0), sum(tokens) filter (where token_type <> "
            "'request'), count(*) from priced group by vendor"
        ).fetchall()
    finally:
        con.close()
    by_vendor = {v: (c, t, n) for v, c, t, n in totals}
    vendors = {
        v: {
            "dir": f"billing/{v}",
            "files": [str(Path(f).relative_to(demo_dir)) for f in files[v]],
            "billed_cost_usd": str(by_vendor.get(v, (Decimal(0), 0, 0))[0]),
            "tokens": int(by_vendor.get(v, (0, 0, 0))[1] or 0),
        }
        for v in ("openai", "anthropic", "gcp", "aws", "azure")
    }
    return {
        "billing": {
            "seed": seed,
            "price_source": price_source,
            "vendors": vendors,
            "gaps": gaps,
            "ingest": {
                "openai": "tokenbook ingest billing --vendor openai billing/openai",
                "anthropic": "tokenbook ingest billing --vendor anthropic billing/anthropic",
                "gcp": "tokenbook ingest billing --vendor gcp billing/gcp",
                "aws": "tokenbook ingest billing --vendor aws billing/aws",
                "azure": "tokenbook ingest billing --vendor azure billing/azure",
            },
        }
    }


def _book_price(con, provider: str, model: str, token_type: str) -> Decimal:
    col = {"input": "input_per_mtok", "output": "output_per_mtok"}[token_type]
    return (
        con.execute(f"select {col} from prices where provider = ? and model = ?", [provider, model])
        .fetchone()[0]
        .normalize()
    )
