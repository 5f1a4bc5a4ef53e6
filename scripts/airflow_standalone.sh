#!/usr/bin/env bash
# Start Airflow locally (`airflow standalone`) with tokenbook's DAGs and the demo warehouse.
# What `make airflow` runs. Everything Airflow writes stays in the repo's ignored airflow_home/.
#
#   scripts/airflow_standalone.sh              prepare, then serve on http://127.0.0.1:8080
#   scripts/airflow_standalone.sh --prepare    prepare only (demo data, dbt manifest, db, pools)
#
# Stop it with Ctrl-C, or from another shell: kill -- -<PGID> (the process group this script
# leads; `ps -o pgid= -p <pid>`), never by name. Any variable below may be set beforehand.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
# `airflow standalone` starts its components as `airflow ...` subprocesses found on PATH.
export PATH="$VENV/bin:$PATH"
DEMO_END="${DEMO_END:-2026-11-27}"
DEMO_DAYS="${DEMO_DAYS:-120}"
DEMO_SCALE="${DEMO_SCALE:-1.0}"

# Airflow: home, DAGs, no examples, API server on loopback only, few workers on a laptop.
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Task processes report to the Execution API of this server (its default assumes port 8080).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW__API__PORT/execution/"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
# Local only (loopback): every user is admin, no password file to look up.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export GX_ANALYTICS_ENABLED=False

# tokenbook: absolute paths, because Airflow's workers do not run in the repo folder.
export TOKENBOOK_WAREHOUSE="${TOKENBOOK_WAREHOUSE:-duckdb:///$REPO/warehouse/tokenbook.duckdb}"
export TOKENBOOK_GATEWAY_PATH="${TOKENBOOK_GATEWAY_PATH:-$REPO/demo_data/gateway}"
export TOKENBOOK_BILLING_PATH="${TOKENBOOK_BILLING_PATH:-$REPO/demo_data/billing}"
# The demo organisation's own configuration folder (written with its data); set yours instead.
export TOKENBOOK_CONFIG_DIR="${TOKENBOOK_CONFIG_DIR:-$REPO/demo_data/config}"
export TOKENBOOK_OUT_DIR="${TOKENBOOK_OUT_DIR:-$REPO/out}"
export TOKENBOOK_DBT_MANIFEST="${TOKENBOOK_DBT_MANIFEST:-$REPO/dbt_project/target/manifest.json}"
# The demo organisation's ids are invented: it may use the public development PII key. Any
# other gateway folder needs TOKENBOOK_PII_KEY (or TOKENBOOK_PII_KEY_FILE), or the DAG refuses.
if [ "$TOKENBOOK_GATEWAY_PATH" = "$REPO/demo_data/gateway" ] && [ -z "${TOKENBOOK_PII_KEY:-}${TOKENBOOK_PII_KEY_FILE:-}" ]; then
  export TOKENBOOK_ALLOW_DEV_KEY="${TOKENBOOK_ALLOW_DEV_KEY:-1}"
fi

if [ ! -x "$PY" ]; then
  echo "error: $PY not found: run \`make install\` first" >&2
  exit 1
fi
mkdir -p "$AIRFLOW_HOME"

# 1. The demo organisation, when the gateway folder is the default one and is empty.
if [ "$TOKENBOOK_GATEWAY_PATH" = "$REPO/demo_data/gateway" ] && \
   ! ls "$TOKENBOOK_GATEWAY_PATH"/gateway-*.jsonl.gz >/dev/null 2>&1; then
  echo "==> demo organisation: $DEMO_DAYS days to $DEMO_END in $REPO/demo_data"
  "$VENV/bin/tokenbook" demo-data --days "$DEMO_DAYS" --end "$DEMO_END" \
    --scale "$DEMO_SCALE" --out "$REPO/demo_data"
fi

# 2. The DAG's first date: the first day file present, and catchup on, so unpausing the DAG
#    builds the local history night by night (a deployment leaves catchup off by default).
if [ -z "${TOKENBOOK_DAG_START:-}" ]; then
  first="$(ls "$TOKENBOOK_GATEWAY_PATH" 2>/dev/null | grep -Eo '[0-9]{4}-[0-9]{2}-[0-9]{2}' | sort | head -n 1 || true)"
  export TOKENBOOK_DAG_START="${first:-$DEMO_END}"
fi
export TOKENBOOK_DAG_CATCHUP="${TOKENBOOK_DAG_CATCHUP:-true}"
echo "==> DAG start date $TOKENBOOK_DAG_START (catchup $TOKENBOOK_DAG_CATCHUP), warehouse $TOKENBOOK_WAREHOUSE"

# 3. The dbt manifest the DAG renders one task per model from (dbt parse: no warehouse needed).
echo "==> dbt parse -> $TOKENBOOK_DBT_MANIFEST"
"$PY" - <<'PYEOF'
import os
from pathlib import Path

from tokenbook.orchestration import write_dbt_manifest
from core.settings import load_settings

wanted = Path(os.environ["TOKENBOOK_DBT_MANIFEST"])
if wanted.name != "manifest.json" or wanted.parent.name != "target":
    raise SystemExit(f"TOKENBOOK_DBT_MANIFEST must end with target/manifest.json, got {wanted}")
write_dbt_manifest(load_settings(), wanted.parent.parent)
PYEOF

# 4. Metadata database, and the pool BigQuery-bound tasks share.
echo "==> airflow db migrate ($AIRFLOW_HOME)"
"$VENV/bin/airflow" db migrate >/dev/null
"$VENV/bin/airflow" pools set bigquery "${BIGQUERY_POOL_SLOTS:-8}" \
  "BigQuery jobs of tokenbook tasks (slots = concurrent jobs)" >/dev/null
"$VENV/bin/airflow" dags reserialize >/dev/null 2>&1 || true

if [ "${1:-}" = "--prepare" ]; then
  echo "==> prepared; start with: scripts/airflow_standalone.sh"
  exit 0
fi

echo "==> airflow standalone on http://127.0.0.1:$AIRFLOW__API__PORT (Ctrl-C stops it)"
echo "    trigger one night: $VENV/bin/airflow dags trigger tokenbook_nightly --logical-date ${DEMO_END}T00:00:00+00:00"
exec "$VENV/bin/airflow" standalone
