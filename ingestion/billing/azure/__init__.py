"""Azure cost exports (actual / amortized CSV): Azure OpenAI meters."""
