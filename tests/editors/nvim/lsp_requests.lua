-- Scenario: the real server in Neovim through the plugin; completions and a "Make idiomatic" code action
-- requested with vim.lsp.buf_request_sync, the action resolved and applied as Neovim applies edits, then
-- the plugin's fix-all. Results go to JSON for tests/editors/test_neovim.py.
local t = vim.g.devstral_test
local h = dofile(t.harness)

local function sync(bufnr, method, params)
  local started = h.now_ms()
  local responses, err = vim.lsp.buf_request_sync(bufnr, method, params, t.timeout_ms)
  assert(responses, method .. ': ' .. tostring(err))
  local _, response = next(responses)
  assert(response, method .. ': no client answered')
  -- The error's key is `error` up to 0.9 and `err` from 0.10.
  local failure = response.err or response.error
  assert(not failure, method .. ': ' .. vim.inspect(failure))
  return response.result, h.now_ms() - started
end

h.run(function()
  local result = { nvim = tostring(vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch) }

  -- Start-up -------------------------------------------------------------------------------------
  local started = h.now_ms()
  local client, bufnr, status = h.open(t.completion_file, t.timeout_ms)
  result.ready_ms = h.now_ms() - started
  result.status = status
  result.offset_encoding = client.offset_encoding
  result.filetype = vim.bo[bufnr].filetype
  local pricing = bufnr

  -- "Make idiomatic" -------------------------------------------------------------------------------
  vim.cmd('edit ' .. vim.fn.fnameescape(t.actions_file))
  bufnr = vim.api.nvim_get_current_buf()
  -- The same project root: the running server is reused, not started again.
  result.same_client = h.wait_until(function()
    local c = require('devstral_elixir.util').buf_client(bufnr)
    return c and { c.id == client.id }
  end, t.timeout_ms, 'the client to attach the second buffer')[1]
  result.before = h.lines(bufnr)
  -- The server's idiom diagnostics reach vim.diagnostic.
  result.diagnostics = h.wait_until(function()
    local found = vim.diagnostic.get(bufnr)
    return #found >= 3 and vim.tbl_map(function(d)
      return { lnum = d.lnum, code = d.code, severity = d.severity, message = d.message }
    end, found)
  end, t.timeout_ms, 'idiom diagnostics')

  local here = { line = t.action_cursor[1], character = t.action_cursor[2] }
  local actions
  actions, result.actions_ms = sync(bufnr, 'textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = here, ['end'] = here },
    context = { diagnostics = {}, only = { 'quickfix' } },
  })
  result.action_titles = vim.tbl_map(function(a)
    return a.title
  end, actions)
  local action = actions[1]
  result.listed_with_edit = action.edit ~= nil
  if not action.edit then
    -- Neovim announces resolveSupport for `edit`, so the server attaches the edit on resolve.
    action, result.resolve_ms = sync(bufnr, 'codeAction/resolve', action)
  end
  vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
  result.after_action = h.lines(bufnr)

  -- The plugin's fix-all mapping path: list, resolve, apply (asynchronously).
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  require('devstral_elixir').fix_all()
  h.wait_until(function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, t.timeout_ms, 'fix-all to edit the buffer')
  result.after_fix_all = h.lines(bufnr)
  vim.cmd('write')

  -- Settings changed at run time reach the server, merged into those given to setup().
  vim.cmd('buffer ' .. pricing)
  bufnr = pricing
  result.pricing_diagnostics = h.wait_until(function()
    local found = vim.diagnostic.get(bufnr)
    return #found > 0 and vim.tbl_map(function(d)
      return d.code
    end, found)
  end, t.timeout_ms, 'the diagnostics of the first buffer')
  require('devstral_elixir').update_settings({ idioms = { disabledRules = { 'large_numbers' } } })
  h.wait_until(function()
    return #vim.diagnostic.get(bufnr) == 0
  end, t.timeout_ms, 'the disabled rule to disappear')
  result.settings_after_update = require('devstral_elixir').config.settings

  -- Completions ------------------------------------------------------------------------------------
  local position = { line = t.completion_cursor[1], character = t.completion_cursor[2] }
  local document = { uri = vim.uri_from_bufnr(bufnr) }

  result.inline, result.inline_ms = sync(bufnr, 'textDocument/inlineCompletion', {
    textDocument = document,
    position = position,
    context = { triggerKind = 1 }, -- Invoked
  })
  result.completion, result.completion_ms = sync(bufnr, 'textDocument/completion', {
    textDocument = document,
    position = position,
    context = { triggerKind = 1 },
  })

  -- :DevstralStatus's data, through the plugin.
  local final
  require('devstral_elixir').status(function(s)
    final = s
  end)
  result.final_status = h.wait_until(function()
    return final
  end, t.timeout_ms, 'the status')
  h.finish(result)
end)
