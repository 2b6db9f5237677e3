-- Scenario: an inline completion, then a popup completion at the same place (a typed-ahead cache hit,
-- as when ghost text and a completion menu are both on), then an edit that adds an idiom finding: do
-- the server's diagnostics follow the edit? Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)

h.run(function()
  local result = {}
  local client, bufnr = h.open(t.file, t.timeout_ms)
  h.wait_until(function()
    return #vim.diagnostic.get(bufnr) > 0
  end, t.timeout_ms, 'the first diagnostics')
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = t.cursor[1], character = t.cursor[2] },
    context = { triggerKind = 1 },
  }
  result.inline = h.request(client, 'textDocument/inlineCompletion', params, t.timeout_ms)
  result.popup = h.request(client, 'textDocument/completion', params, t.timeout_ms)

  vim.api.nvim_buf_set_lines(bufnr, 1, 1, false, { t.added_line })
  local codes = function()
    return vim.tbl_map(function(d)
      return d.code
    end, vim.diagnostic.get(bufnr))
  end
  local ok = pcall(h.wait_until, function()
    return vim.tbl_contains(codes(), t.expected_code)
  end, t.wait_ms, 'diagnostics for the added line')
  result.followed_edit = ok
  result.codes = codes()
  result.requests = h.request(client, 'devstralElixir/status', {}, t.timeout_ms).requests
  h.finish(result)
end)
