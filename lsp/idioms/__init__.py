""""Make idiomatic": rule-based rewrites (one rule per module in `rules/`, ordered in `registry.py`)."""
