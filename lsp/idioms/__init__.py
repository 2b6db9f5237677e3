"""The "make idiomatic" rules: one rule per module in `rules/`, ordered in `registry.py`; `engine.py`
finds, checks and applies them. The code actions that offer them live in `lsp.actions`."""
