-- A headless tour of the plugin against the real server, offline: ghost-text completions at the cursor
-- markers (‸) of examples/lib, then "Make idiomatic" on examples/idioms/weekly_report.ex. Run from the
-- repository root (docs/neovim.md shows its output):
--
--   nvim --headless --clean -c 'set rtp^=extension/nvim' -c 'luafile extension/nvim/demo.lua'
--
-- The server is $DEVSTRAL_ELIXIR_LSP, else .venv/bin/devstral-elixir-lsp, else devstral-elixir-lsp on
-- $PATH; $DEVSTRAL_ELIXIR_SETTINGS may hold server settings as JSON, e.g. '{"model":{"threads":1}}'.
-- The examples are copied to a temporary directory first; the repository is not changed.
local api = vim.api
local uv = vim.uv or vim.loop
local plugin = require('devstral_elixir')
local util = require('devstral_elixir.util')

local function say(text)
  io.stdout:write(text .. '\n')
end

local function now_ms()
  return uv.hrtime() / 1e6
end

local server = os.getenv('DEVSTRAL_ELIXIR_LSP')
if not server or server == '' then
  local local_venv = '.venv/bin/devstral-elixir-lsp'
  server = vim.fn.executable(local_venv) == 1 and vim.fn.fnamemodify(local_venv, ':p') or 'devstral-elixir-lsp'
end
vim.o.swapfile = false
local settings = { logLevel = 'warning' }
local extra = os.getenv('DEVSTRAL_ELIXIR_SETTINGS')
if extra and extra ~= '' then
  settings = vim.tbl_deep_extend('force', settings, vim.fn.json_decode(extra))
end
plugin.setup({ cmd = { server }, settings = settings, ghost = 'plugin' })

-- Waiting hands control back to Neovim's loop (LSP messages keep flowing): the tour is a coroutine.
local co
local function step()
  local ok, err = coroutine.resume(co)
  if not ok then
    say('demo failed: ' .. tostring(err))
    vim.cmd('cquit 1')
  end
end
local function sleep(ms)
  vim.defer_fn(step, ms)
  coroutine.yield()
end
local function wait_until(condition, what)
  local deadline = now_ms() + 120000
  while not condition() do
    if now_ms() > deadline then
      error('timed out waiting for ' .. what)
    end
    sleep(20)
  end
end
local function request(client, method, params, bufnr)
  local done, answer, failure
  util.request(client, method, params, function(err, result)
    done, answer, failure = true, result, err
  end, bufnr)
  wait_until(function()
    return done
  end, method)
  assert(not failure, method .. ': ' .. vim.inspect(failure))
  return answer
end

--- Copy a file into the temporary project without its cursor markers; the markers' positions.
local project = vim.fn.tempname()
local function copy(path)
  local lines, cursors = {}, {}
  for row, line in ipairs(vim.fn.readfile(path)) do
    local col = line:find('‸', 1, true)
    while col do
      table.insert(cursors, { row - 1, col - 1 })
      line = line:sub(1, col - 1) .. line:sub(col + #'‸')
      col = line:find('‸', 1, true)
    end
    table.insert(lines, line)
  end
  local target = project .. '/' .. path
  vim.fn.mkdir(vim.fn.fnamemodify(target, ':h'), 'p')
  vim.fn.writefile(lines, target)
  return target, cursors
end

local function buffer_text(bufnr)
  return table.concat(api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n') .. '\n'
end

local function print_diff(before, after)
  for line in vim.gsplit(vim.trim(vim.diff(before, after, { ctxlen = 0 })), '\n') do
    say('    ' .. line)
  end
end

local function open(path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  local client
  wait_until(function()
    client = util.buf_client(bufnr)
    return client and client.initialized
  end, 'the server to attach')
  return client, bufnr
end

local function tour()
  local started = now_ms()
  vim.fn.mkdir(project, 'p')
  vim.fn.writefile({ 'defmodule Shop.MixProject do', 'end' }, project .. '/mix.exs')
  local first = true
  for _, path in ipairs(vim.fn.glob('examples/lib/*.ex', false, true)) do
    local file, cursors = copy(path)
    local client, bufnr = open(file)
    if first then
      local status
      wait_until(function()
        status = request(client, 'devstralElixir/status', {}, bufnr)
        return status.model or status.modelError
      end, 'the model')
      if status.modelError then
        error(status.modelError)
      end
      say(('Neovim %s, DevstralElixir %s: %s (%s, %s), ready in %.1f s'):format(
        tostring(vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch),
        status.version, status.model, status.backend, status.fim and 'FIM' or 'prefix-only',
        (now_ms() - started) / 1000))
      first = false
    end
    say('\n' .. path)
    for _, cursor in ipairs(cursors) do
      local t0 = now_ms()
      local answer = request(client, 'textDocument/inlineCompletion', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        position = util.position(bufnr, cursor[1], cursor[2], client.offset_encoding),
        context = { triggerKind = 1 },
      }, bufnr)
      local item = (answer.items or answer)[1]
      local ms = now_ms() - t0
      local text = item and item.insertText or ''
      text = type(text) == 'table' and text.value or text -- a snippet StringValue
      local line = vim.trim(util.line(bufnr, cursor[1]))
      say(('  line %d: %s'):format(cursor[1] + 1, line ~= '' and line or '(indentation)'))
      text = text ~= '' and text:gsub('\n', '\n      ') or '(none)'
      say(('    ghost text (%d ms): %s'):format(ms, text))
    end
  end

  local file = copy('examples/idioms/weekly_report.ex')
  local client, bufnr = open(file)
  say('\nexamples/idioms/weekly_report.ex')
  wait_until(function()
    return #vim.diagnostic.get(bufnr) > 0
  end, 'diagnostics')
  sleep(500)
  local diagnostics = vim.diagnostic.get(bufnr)
  table.sort(diagnostics, function(a, b)
    return a.lnum < b.lnum
  end)
  say(('  %d hints from the server:'):format(#diagnostics))
  for _, d in ipairs(diagnostics) do
    say(('    line %d [%s] %s'):format(d.lnum + 1, d.code, d.message))
  end

  -- One quickfix, as <leader>ci picks it: listed without its edit, resolved, applied.
  local row = diagnostics[1].lnum
  local before = buffer_text(bufnr)
  local t0 = now_ms()
  local here = { line = row, character = diagnostics[1].col }
  local actions = request(client, 'textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = here, ['end'] = here },
    context = { diagnostics = {}, only = { 'quickfix', 'refactor.rewrite' } },
  }, bufnr)
  say(('\n  code actions on line %d (%d ms):'):format(row + 1, now_ms() - t0))
  for _, action in ipairs(actions) do
    say(('    [%s] %s'):format(action.kind, action.title))
  end
  local done
  t0 = now_ms()
  plugin.run_action(client, actions[1], bufnr, function()
    done = true
  end)
  wait_until(function()
    return done
  end, 'the action')
  say(('  applied "%s" (resolved in %d ms):'):format(actions[1].title, now_ms() - t0))
  print_diff(before, buffer_text(bufnr))

  -- Fix-all, as <leader>cf runs it.
  local text = buffer_text(bufnr)
  local tick = api.nvim_buf_get_changedtick(bufnr)
  t0 = now_ms()
  plugin.fix_all()
  wait_until(function()
    return api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, 'fix-all')
  say(('\n  fix all safe rewrites in the file (%d ms):'):format(now_ms() - t0))
  print_diff(text, buffer_text(bufnr))

  local status = request(client, 'devstralElixir/status', {}, bufnr)
  local latency = status.requests.latencyMs or {}
  say(('\n%d completions served, p50 %s ms, p95 %s ms'):format(
    status.requests.served, latency.p50, latency.p95))
  vim.cmd('qa!')
end

co = coroutine.create(tour)
vim.schedule(step)
