"""Gateway logs -> raw.gateway_calls (native JSONL/Parquet, LiteLLM spend logs, OTel GenAI spans)."""
