"""OpenAI Admin API: Usage API (completions buckets) and Costs API."""
