-- Neovim 0.11+: with extension/nvim on 'runtimepath', `vim.lsp.enable('devstral_elixir')` starts the
-- server from this config alone (no setup() call; ghost text then needs 0.12's built-in
-- vim.lsp.inline_completion). Override any field with vim.lsp.config('devstral_elixir', {...}).
return {
  cmd = { 'devstral-elixir-lsp' },
  filetypes = { 'elixir' },
  root_markers = { 'mix.exs', '.git' },
  -- Server settings (docs/settings.md).
  init_options = {},
  -- The server counts columns in UTF-16; Neovim would otherwise offer UTF-8 first.
  capabilities = vim.tbl_deep_extend('force', vim.lsp.protocol.make_client_capabilities(), {
    general = { positionEncodings = { 'utf-16' } },
  }),
}
