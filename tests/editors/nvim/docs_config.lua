-- Scenario: a configuration copied from docs/neovim.md (no plugin setup) has started the server for an
-- Elixir buffer; it answers a code action. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local util = require('devstral_elixir.util') -- only to find the client by name

h.run(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(t.file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client = h.wait_until(function()
    local c = util.buf_client(bufnr)
    return c and c.initialized and c
  end, t.timeout_ms, 'the documented configuration to start the server')
  local here = { line = t.cursor[1], character = t.cursor[2] }
  local actions = h.request(client, 'textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = here, ['end'] = here },
    context = { diagnostics = {}, only = { 'quickfix' } },
  }, t.timeout_ms, bufnr)
  h.finish({
    titles = vim.tbl_map(function(a)
      return a.title
    end, actions or {}),
    offset_encoding = client.offset_encoding,
    root_dir = client.config.root_dir,
    inline_completion_enabled = vim.lsp.inline_completion and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }),
  })
end)
