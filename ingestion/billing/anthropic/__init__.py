"""Anthropic Usage & Cost Admin API: messages usage report and cost report."""
