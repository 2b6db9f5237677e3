"""Code actions: idiom-rule rewrites and fix-all (`service`), and the model rewrite (`model_rewrite`,
`model_action`), resolved lazily. The rules themselves live in `lsp.idioms`."""
