-- Scenario: what a user is told when something is wrong (troubleshooting in docs/neovim.md). Records
-- vim.notify messages and the server's window/showMessage, opens an Elixir file, and when a server
-- attaches runs :DevstralStatus. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local util = require('devstral_elixir.util')

local messages = _G.devstral_messages -- vim.notify, recorded since init.lua (tests/editors/test_neovim.py)
local show = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, config)
  table.insert(messages, 'window/showMessage: ' .. params.message)
  return show(err, params, ctx, config)
end

h.run(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(t.file))
  local bufnr = vim.api.nvim_get_current_buf()
  local attached = pcall(h.wait_until, function()
    local c = util.buf_client(bufnr)
    return c and c.initialized
  end, t.attach_ms, 'a server')
  if attached then
    h.open(t.file, t.timeout_ms) -- waits for the model to load or fail
    vim.cmd('DevstralStatus')
    h.wait_until(function()
      return #messages > 0 and messages[#messages]:find('prompt format', 1, true)
    end, t.timeout_ms, ':DevstralStatus')
  end
  h.finish({ attached = attached, messages = messages })
end)
