"""Vendor billing exports -> raw.billing_lines (see schema.py and loader.py)."""
