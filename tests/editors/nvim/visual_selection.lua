-- Scenario: the plugin's fix-all key on a visual selection (linewise, then charwise) rewrites only what
-- is selected. Code actions only: no model call. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local util = require('devstral_elixir.util')

h.run(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(t.file))
  local bufnr = vim.api.nvim_get_current_buf()
  h.wait_until(function()
    local c = util.buf_client(bufnr)
    return c and c.initialized
  end, t.timeout_ms, 'the server')
  local result = {}
  local function fix_selection(keys)
    local tick = vim.api.nvim_buf_get_changedtick(bufnr)
    h.type(keys)
    h.wait_until(function()
      return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
    end, t.timeout_ms, 'fix-all on ' .. keys)
    local lines = h.lines(bufnr)
    vim.cmd('silent undo')
    return { lines = lines, mode = vim.api.nvim_get_mode().mode }
  end
  -- The line of big_orders/1's body: linewise, then from its first character to its end.
  vim.api.nvim_win_set_cursor(0, { t.row + 1, 0 })
  result.linewise = fix_selection('V<leader>cf')
  vim.api.nvim_win_set_cursor(0, { t.row + 1, 4 })
  result.charwise = fix_selection('v$h<leader>cf')
  result.restored = h.lines(bufnr)
  h.finish(result)
end)
