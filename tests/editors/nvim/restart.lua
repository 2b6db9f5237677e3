-- Scenario: :DevstralRestart stops the server and, once it has exited, starts a new one for the open
-- Elixir buffer, which then answers. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local util = require('devstral_elixir.util')

h.run(function()
  local first = h.open(t.file, t.timeout_ms)
  local bufnr = vim.api.nvim_get_current_buf()
  vim.cmd('DevstralRestart')
  local second = h.wait_until(function()
    local c = util.buf_client(bufnr)
    return c and c.id ~= first.id and c.initialized and c
  end, t.timeout_ms, 'a new server')
  local here = { line = t.cursor[1], character = t.cursor[2] }
  local actions = h.request(second, 'textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = here, ['end'] = here },
    context = { diagnostics = {}, only = { 'quickfix' } },
  }, t.timeout_ms, bufnr)
  h.finish({
    servers = #util.clients(),
    messages = _G.devstral_messages,
    titles = vim.tbl_map(function(a)
      return a.title
    end, actions),
  })
end)
