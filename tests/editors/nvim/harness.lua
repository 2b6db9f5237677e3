-- Runs a test scenario inside headless Neovim as a coroutine, so that waiting hands control back to
-- Neovim's main loop: typed keys (nvim_feedkeys), autocommands, timers and LSP messages are processed
-- between steps, as in an interactive session. vim.wait alone would not process typed keys.
--
-- The scenario ends with finish(result): result is written as JSON to vim.g.devstral_test.out and Neovim
-- quits. An error writes { error = traceback } and quits with status 1.
local M = {}

local uv = vim.uv or vim.loop
local co

local function write(result)
  vim.fn.writefile({ vim.fn.json_encode(result) }, vim.g.devstral_test.out)
end

local function step()
  local ok, err = coroutine.resume(co)
  if not ok then
    write({ error = debug.traceback(co, tostring(err)) })
    vim.cmd('cquit 1')
  end
end

function M.run(scenario)
  co = coroutine.create(scenario)
  vim.schedule(step)
end

function M.now_ms()
  return uv.hrtime() / 1e6
end

function M.sleep(ms)
  vim.defer_fn(step, ms)
  coroutine.yield()
end

--- Poll `condition` every 20 ms until it returns a truthy value (returned), or fail after timeout_ms;
--- `explain()` (optional) adds what it returns to the failure message.
function M.wait_until(condition, timeout_ms, what, explain)
  local deadline = M.now_ms() + timeout_ms
  while true do
    local value = condition()
    if value then
      return value
    end
    if M.now_ms() > deadline then
      local extra = explain and ('\n' .. explain()) or ''
      error('timed out after ' .. timeout_ms .. ' ms waiting for ' .. what .. extra, 2)
    end
    M.sleep(20)
  end
end

--- Type keys as a user would (mappings apply).
function M.type(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'm', false)
  M.sleep(30) -- let the main loop process them
end

--- A request answered by the DevstralElixir client, waiting in the main loop (not in vim.wait, so
--- Neovim keeps processing everything else meanwhile). Returns result, error.
function M.request(client, method, params, timeout_ms, bufnr)
  local util = require('devstral_elixir.util')
  local done, result, err = false, nil, nil
  util.request(client, method, params, function(e, r)
    done, result, err = true, r, e
  end, bufnr or vim.api.nvim_get_current_buf())
  M.wait_until(function()
    return done
  end, timeout_ms, method)
  return result, err
end

--- Open `path`, wait for the client to attach and for the model to load; returns client, bufnr, status.
function M.open(path, timeout_ms)
  local util = require('devstral_elixir.util')
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.wait_until(function()
    local c = util.buf_client(bufnr)
    return c and c.initialized and c
  end, timeout_ms, 'the server to attach')
  -- The model loads after `initialized`; the status says when it has (or failed to).
  local status = M.wait_until(function()
    local s = M.request(client, 'devstralElixir/status', { uri = vim.uri_from_bufnr(bufnr) }, timeout_ms)
    if s and (s.model ~= vim.NIL and s.model or s.modelError ~= vim.NIL and s.modelError) then
      return s
    end
    M.sleep(100)
  end, timeout_ms, 'the model to load')
  return client, bufnr, status
end

--- The server's counters, to explain a missing suggestion.
function M.server_requests(client)
  local status = M.request(client, 'devstralElixir/status', {}, 10000)
  return 'server requests: ' .. vim.inspect(status and status.requests)
end

function M.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false)
end

function M.finish(result)
  write(result)
  vim.cmd('qa!')
end

return M
