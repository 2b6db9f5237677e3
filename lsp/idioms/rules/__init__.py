"""One idiom rule per module; each exposes `RULE`. The order lives in `lsp.idioms.registry`."""
