-- Scenario: the plugin's ghost text (ghost.lua) driven with keys in insert mode, against the real server:
-- the trigger key shows a suggestion as virtual text, the dismiss key clears it, typing brings one back
-- once typing pauses, the accept key inserts it, leaving insert mode clears, and with nothing shown the
-- accept key keeps its own meaning. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local ghost = require('devstral_elixir.ghost')

h.run(function()
  local result = { nvim = { vim.version().major, vim.version().minor } }
  local client, bufnr, status = h.open(t.file, t.timeout_ms)
  local function explain()
    return h.server_requests(client)
  end
  result.model_error = status.modelError
  result.original = h.lines(bufnr)

  local function snapshot()
    return {
      visible = ghost.visible(),
      state = ghost.state(),
      marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost.ns, 0, -1, { details = true }),
      lines = h.lines(bufnr),
      mode = vim.api.nvim_get_mode().mode,
      cursor = vim.api.nvim_win_get_cursor(0),
    }
  end

  -- Insert mode at the end of the cursor line (indentation only, inside a function body).
  vim.api.nvim_win_set_cursor(0, { t.cursor[1] + 1, 0 })
  h.type('A')
  result.start = snapshot()

  h.type(t.keys.trigger)
  h.wait_until(ghost.visible, t.timeout_ms, 'a suggestion after the trigger key', explain)
  result.triggered = snapshot()

  h.type(t.keys.dismiss)
  result.dismissed = snapshot()

  -- Type a character and delete it: the text is as before, and the request goes out by itself once
  -- typing pauses (debounced), as an automatic request.
  h.type('x<BS>')
  result.typing = snapshot() -- within the debounce: nothing yet
  h.wait_until(ghost.visible, t.timeout_ms, 'a suggestion after typing', explain)
  result.automatic = snapshot()

  h.type(t.keys.accept)
  result.accepted = snapshot()

  h.type('<Esc>')
  result.escaped = snapshot()
  h.sleep(500) -- a request the accept started must not draw anything now
  result.escaped_later = snapshot()

  -- Nothing shown: <Tab> inserts a tab, as without the plugin (a literal tab, whatever the filetype
  -- plugin of this Neovim version sets).
  vim.bo[bufnr].expandtab = false
  vim.bo[bufnr].softtabstop = 0
  h.type('ox<Tab>y<Esc>')
  result.fallback_line = vim.api.nvim_get_current_line()
  h.finish(result)
end)
