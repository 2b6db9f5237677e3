-- DevstralElixir for Neovim 0.7+: starts the language server for Elixir buffers, maps keys for the
-- "Make idiomatic" code actions, and shows ghost-text completions (the built-in
-- vim.lsp.inline_completion on 0.12+, this plugin's ghost.lua before that).
--
--   require('devstral_elixir').setup({ settings = { completion = { debounceMs = 120 } } })
--
-- See docs/neovim.md.
local api = vim.api
local util = require('devstral_elixir.util')

local M = {}

M.defaults = {
  -- The server command; the default must be on $PATH (e.g. the project's .venv/bin).
  cmd = { 'devstral-elixir-lsp' },
  filetypes = { 'elixir' },
  -- The nearest directory holding one of these is the project root (else the file's directory).
  root_markers = { 'mix.exs', '.git' },
  -- Server settings (docs/settings.md), camelCase, sent as initializationOptions. Change them later with
  -- require('devstral_elixir').update_settings({...}).
  settings = {},
  -- 'auto': Neovim's built-in inline completion where it exists (0.12+), else this plugin's;
  -- 'builtin' | 'plugin' force one; false: no ghost text.
  ghost = 'auto',
  ghost_options = {}, -- see ghost.lua: auto, debounce_ms, max_line_suffix
  keymaps = {
    accept = '<Tab>', -- insert mode; falls back to the key's own meaning when nothing is shown
    dismiss = '<C-]>',
    trigger = '<M-\\>', -- ask for a suggestion now
    next = '<M-]>', -- 0.12 built-in only: next candidate
    idiomatic = '<leader>ci', -- normal and visual mode: "Make idiomatic" (rules + model)
    fix_all = '<leader>cf', -- fix every safe finding in the file (or the selection)
  },
  on_attach = nil, -- function(client, bufnr), called after the plugin's own
}

M.config = vim.deepcopy(M.defaults)

local islist = vim.islist or vim.tbl_islist -- renamed in 0.10

local function is_list(t)
  return next(t) ~= nil and islist(t) -- an empty table is an empty dict here: nothing to merge
end

-- Like vim.tbl_deep_extend('force', ...), except that a list replaces a list (0.7 - 0.10 would merge
-- { 'a' } into { 'b', 'c' } as { 'a', 'c' }).
local function merge(base, changes)
  local merged = vim.deepcopy(base)
  for key, value in pairs(changes) do
    local old = merged[key]
    if type(value) == 'table' and type(old) == 'table' and not is_list(value) and not is_list(old) then
      merged[key] = merge(old, value)
    else
      merged[key] = value
    end
  end
  return merged
end

local IDIOMATIC_KINDS = { 'quickfix', 'refactor.rewrite' }
local FIX_ALL_KINDS = { 'source.fixAll' }

local function notify(message, level)
  vim.notify('DevstralElixir: ' .. message, level or vim.log.levels.INFO)
end

local function ghost_mode()
  local mode = M.config.ghost
  if mode == 'auto' then
    return vim.lsp.inline_completion and 'builtin' or 'plugin'
  end
  if mode == 'builtin' and not vim.lsp.inline_completion then
    notify("ghost = 'builtin' needs Neovim 0.12; using the plugin's ghost text", vim.log.levels.WARN)
    return 'plugin'
  end
  return mode
end

-- ---------------------------------------------------------------------------------------------------
-- Code actions

local function selection_range(bufnr, encoding)
  -- Called from a visual-mode mapping, while still in visual mode: 'v' is the other end.
  local mode = api.nvim_get_mode().mode
  local a, b = vim.fn.getpos('v'), vim.fn.getpos('.')
  if a[2] > b[2] or (a[2] == b[2] and a[3] > b[3]) then
    a, b = b, a
  end
  api.nvim_feedkeys(api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
  local start_row, end_row = a[2] - 1, b[2] - 1
  if mode == 'V' then
    return { start = { line = start_row, character = 0 }, ['end'] = { line = end_row + 1, character = 0 } }
  end
  -- getpos gives the first byte of the last selected character; LSP ranges end after it.
  local last = util.line(bufnr, end_row)
  local end_col = math.min(b[3] - 1 + #vim.fn.strcharpart(last:sub(b[3]), 0, 1), #last)
  return {
    start = util.position(bufnr, start_row, a[3] - 1, encoding),
    ['end'] = util.position(bufnr, end_row, end_col, encoding),
  }
end

local function apply(client, action, bufnr)
  if action.edit then
    vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
  end
  local command = type(action.command) == 'table' and action.command or nil
  if command then
    util.request(client, 'workspace/executeCommand', {
      command = command.command,
      arguments = command.arguments,
    }, function() end, bufnr)
  end
end

--- Resolve an action's edit (the server attaches edits lazily, after checking them) and apply it.
function M.run_action(client, action, bufnr, on_done)
  on_done = on_done or function() end
  local provider = client.server_capabilities.codeActionProvider
  local resolves = type(provider) == 'table' and provider.resolveProvider
  if action.edit or not resolves then
    apply(client, action, bufnr)
    return on_done(action)
  end
  util.request(client, 'codeAction/resolve', action, function(err, resolved)
    if err then
      notify('resolving "' .. action.title .. '" failed: ' .. tostring(err.message), vim.log.levels.ERROR)
    elseif resolved.disabled then
      notify(action.title .. ': ' .. resolved.disabled.reason, vim.log.levels.WARN)
    else
      apply(client, resolved, bufnr)
    end
    on_done(resolved)
  end, bufnr)
end

--- Ask for code actions of the given kinds at the cursor (or `opts.range`, or the visual selection when
--- `opts.visual`); run the only one at once when `opts.apply`, else let the user pick.
--- Works the same on every version (0.7's vim.lsp.buf.code_action has no `apply` or `range`).
function M.code_action(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local client = util.buf_client(bufnr)
  if not client then
    return notify('the server is not attached to this buffer', vim.log.levels.WARN)
  end
  local encoding = client.offset_encoding
  local range = opts.range
  if not range and opts.visual then
    range = selection_range(bufnr, encoding)
  elseif not range then
    local pos = api.nvim_win_get_cursor(0)
    local here = util.position(bufnr, pos[1] - 1, pos[2], encoding)
    range = { start = here, ['end'] = here }
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = range,
    context = { diagnostics = {}, only = opts.only },
  }
  util.request(client, 'textDocument/codeAction', params, function(err, result)
    if err then
      return notify('code actions failed: ' .. tostring(err.message), vim.log.levels.ERROR)
    end
    local actions = vim.tbl_filter(function(action)
      return not action.disabled
    end, result or {})
    if #actions == 0 then
      return notify('nothing to make idiomatic here')
    end
    if opts.apply and #actions == 1 then
      return M.run_action(client, actions[1], bufnr)
    end
    vim.ui.select(actions, {
      prompt = 'Make idiomatic:',
      format_item = function(action)
        return action.title
      end,
    }, function(action)
      if action then
        M.run_action(client, action, bufnr)
      end
    end)
  end, bufnr)
end

function M.idiomatic(opts)
  M.code_action(vim.tbl_extend('keep', opts or {}, { only = IDIOMATIC_KINDS }))
end

function M.fix_all(opts)
  M.code_action(vim.tbl_extend('keep', opts or {}, { only = FIX_ALL_KINDS, apply = true }))
end

-- ---------------------------------------------------------------------------------------------------
-- Status and settings

--- `devstralElixir/status` for the current buffer; `callback(status)` or a printed summary.
function M.status(callback)
  local bufnr = api.nvim_get_current_buf()
  local client = util.buf_client(bufnr) or util.clients()[1]
  if not client then
    return notify('no server running (is this an Elixir buffer? see docs/neovim.md)', vim.log.levels.WARN)
  end
  util.request(client, 'devstralElixir/status', { uri = vim.uri_from_bufnr(bufnr) }, function(err, status)
    if err then
      return notify('status failed: ' .. tostring(err.message), vim.log.levels.ERROR)
    end
    if callback then
      return callback(status)
    end
    local requests = status.requests or {}
    local latency = requests.latencyMs or {}
    local lines = {
      ('server %s, prompt format %s'):format(status.version, status.promptFormat),
      ('model: %s (%s%s)'):format(
        status.model or 'none',
        status.backend,
        status.fim == nil and '' or (status.fim and ', FIM' or ', prefix-only')
      ),
      ('completions: %s served, p50 %s ms, p95 %s ms'):format(
        requests.served or 0,
        latency.p50 or '-',
        latency.p95 or '-'
      ),
    }
    if status.modelError then
      table.insert(lines, 'model error: ' .. status.modelError)
    end
    notify(table.concat(lines, '\n'), status.modelError and vim.log.levels.ERROR or nil)
  end, bufnr)
end

--- Change some settings of the running servers (workspace/didChangeConfiguration). The server reads a
--- complete configuration each time (what is missing is its default), so the change is merged into the
--- current settings and all of them are sent.
function M.update_settings(changes)
  M.config.settings = merge(M.config.settings or {}, changes)
  for _, client in ipairs(util.clients()) do
    util.notify(client, 'workspace/didChangeConfiguration', { settings = M.config.settings })
  end
end

-- ---------------------------------------------------------------------------------------------------
-- Starting the server

local function find_root(bufnr)
  local uv = vim.uv or vim.loop
  local name = api.nvim_buf_get_name(bufnr)
  local start = name ~= '' and vim.fn.fnamemodify(name, ':p:h') or vim.fn.getcwd()
  local dir = start
  while true do
    for _, marker in ipairs(M.config.root_markers) do
      if uv.fs_stat(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      return start
    end
    dir = parent
  end
end

local function map(bufnr, modes, lhs, rhs, desc)
  if lhs then
    vim.keymap.set(modes, lhs, rhs, { buffer = bufnr, desc = 'DevstralElixir: ' .. desc })
  end
end

local function on_attach(client, bufnr)
  local keys = M.config.keymaps
  map(bufnr, 'n', keys.idiomatic, function()
    M.idiomatic()
  end, 'make idiomatic')
  map(bufnr, 'x', keys.idiomatic, function()
    M.idiomatic({ visual = true })
  end, 'make the selection idiomatic')
  map(bufnr, 'n', keys.fix_all, function()
    M.fix_all()
  end, 'fix all safe findings in the file')
  map(bufnr, 'x', keys.fix_all, function()
    M.fix_all({ visual = true })
  end, 'fix all safe findings in the selection')

  local mode = ghost_mode()
  if mode == 'builtin' then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    if keys.accept then
      vim.keymap.set('i', keys.accept, function()
        if not vim.lsp.inline_completion.get() then
          return keys.accept
        end
      end, { buffer = bufnr, expr = true, desc = 'DevstralElixir: accept suggestion' })
    end
    map(bufnr, 'i', keys.next, function()
      vim.lsp.inline_completion.select({ count = 1 })
    end, 'next suggestion')
  elseif mode == 'plugin' then
    require('devstral_elixir.ghost').attach(bufnr, keys, M.config.ghost_options)
  end

  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

local function on_exit(code, signal)
  if code ~= 0 then
    vim.schedule(function()
      local log = vim.lsp.get_log_path()
      notify(('the server exited (code %s, signal %s); see %s'):format(code, signal, log), vim.log.levels.ERROR)
    end)
  end
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  return caps
end

--- The client configuration for a project root (also what docs/neovim.md shows by hand).
function M.client_config(root_dir)
  local cmd = M.config.cmd
  return {
    name = util.NAME,
    cmd = type(cmd) == 'string' and { cmd } or cmd,
    root_dir = root_dir,
    -- Settings go in initializationOptions, which every version sends. (`settings` would also reach the
    -- server on 0.8+, as a didChangeConfiguration right after start-up: a second configuration pass.)
    init_options = M.config.settings,
    capabilities = capabilities(),
    on_attach = on_attach,
    on_exit = on_exit,
  }
end

local warned_missing = false

local function server_found()
  local cmd = M.config.cmd
  local exe = type(cmd) == 'string' and cmd or cmd[1]
  if vim.fn.executable(exe) == 1 then
    return true
  end
  if not warned_missing then
    warned_missing = true
    local hint = "put .venv/bin on $PATH or set cmd = { '/path/to/.venv/bin/devstral-elixir-lsp' }"
    notify(("server '%s' not found: %s"):format(exe, hint), vim.log.levels.ERROR)
  end
  return false
end

local clients_by_root = {} -- 0.7 only: vim.lsp.start does this bookkeeping on 0.8+

--- Start (or reuse) the server for a buffer and attach it.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if util.buf_client(bufnr) or not server_found() then
    return
  end
  local root = find_root(bufnr)
  if vim.lsp.start then -- 0.8+: reuses a running client with the same name and root
    api.nvim_buf_call(bufnr, function() -- 0.8 attaches the current buffer
      vim.lsp.start(M.client_config(root), { bufnr = bufnr })
    end)
    return
  end
  local id = clients_by_root[root] -- 0.7
  local running = id and vim.lsp.get_client_by_id(id)
  if not running or util.is_stopped(running) then
    id = vim.lsp.start_client(M.client_config(root))
    clients_by_root[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

local function attach_all()
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

--- Stop the servers and, once they have exited, start them again for every Elixir buffer (after a
--- settings change that needs a fresh process, or when the server misbehaves).
function M.restart()
  for _, client in ipairs(util.clients()) do
    util.stop(client)
  end
  -- A stopping client stays listed (and attached) until its process exits: wait for that.
  local uv = vim.uv or vim.loop
  local timer = uv.new_timer()
  local waited = 0
  timer:start(0, 100, vim.schedule_wrap(function()
    waited = waited + 100
    if #util.clients() == 0 or waited > 10000 then
      timer:stop()
      timer:close()
      attach_all()
    end
  end))
end

--- The whole lines of a command's range (:'<,'>Cmd), or nil for no range (the cursor / the file).
local function line_range(args)
  if args.range > 0 then
    return { start = { line = args.line1 - 1, character = 0 }, ['end'] = { line = args.line2, character = 0 } }
  end
end

local function create_commands()
  api.nvim_create_user_command('DevstralStatus', function()
    M.status()
  end, { desc = 'DevstralElixir: server, model and latency' })
  api.nvim_create_user_command('DevstralRestart', function()
    M.restart()
  end, { desc = 'DevstralElixir: restart the server' })
  api.nvim_create_user_command('DevstralIdiomatic', function(args)
    M.idiomatic({ range = line_range(args) })
  end, { range = true, desc = 'DevstralElixir: make idiomatic (cursor or lines)' })
  api.nvim_create_user_command('DevstralFixAll', function(args)
    M.fix_all({ range = line_range(args) })
  end, { range = true, desc = 'DevstralElixir: fix all safe findings (file or lines)' })
end

function M.setup(opts)
  M.config = merge(M.defaults, opts or {})
  if opts and opts.keymaps == false then
    M.config.keymaps = {}
  end
  create_commands()

  if util.has('0.11') and vim.lsp.config and vim.lsp.enable then
    -- 0.11+: register a config and let Neovim start it for matching buffers (also already open ones).
    if not server_found() then
      return
    end
    local config = M.client_config(nil)
    config.filetypes = M.config.filetypes
    config.root_dir = function(bufnr, on_dir)
      on_dir(find_root(bufnr))
    end
    vim.lsp.config(util.NAME, config)
    vim.lsp.enable(util.NAME)
    return
  end

  local group = api.nvim_create_augroup('DevstralElixir', { clear = true })
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  attach_all() -- buffers opened before setup() ran
end

return M
