"""Google Cloud billing export (BigQuery export schema): Vertex AI Gemini rows."""
