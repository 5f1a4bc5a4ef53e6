"""The price book's Python side: LiteLLM price map -> effective-dated price rows.

- ``litellm``: parse the map exactly (Decimal) and convert to price-book rows.
- ``default``: the snapshot shipped in the repo and the dbt seed built from it.
- ``versions``: ``tokenbook prices load``: diff a newer map against the book and append
  changed prices as new versions to ``raw.price_book_versions``.
"""
