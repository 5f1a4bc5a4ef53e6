"""CLI commands, one module per area. Keep imports of heavy libraries inside functions."""
