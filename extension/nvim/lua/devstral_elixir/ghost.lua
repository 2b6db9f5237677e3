-- Ghost text for Neovim 0.7 - 0.11: asks the server for `textDocument/inlineCompletion` and shows the
-- first item as virtual text at the cursor. Neovim 0.12 has this built in (vim.lsp.inline_completion);
-- init.lua uses that instead when it exists.
--
-- One suggestion is shown at a time, in one buffer: the one in insert mode. Every edit or cursor move
-- invalidates it; the server answers the next request quickly from its caches (typed-ahead, KV cache).
local api = vim.api
local util = require('devstral_elixir.util')
local uv = vim.uv or vim.loop

local M = {}

M.ns = api.nvim_create_namespace('devstral_elixir_ghost')
M.HIGHLIGHT = 'DevstralElixirGhost'
local function define_highlight()
  vim.cmd('highlight default link ' .. M.HIGHLIGHT .. ' Comment')
end
define_highlight()
-- A colorscheme starts with `:highlight clear`, which drops the link.
api.nvim_create_autocmd('ColorScheme', {
  group = api.nvim_create_augroup('DevstralElixirGhostHighlight', { clear = true }),
  callback = define_highlight,
})

M.options = {
  auto = true, -- request after typing pauses; false = only on the trigger key
  debounce_ms = 150,
  -- Do not request automatically when more than this many characters follow the cursor (mid-line
  -- completions there are rarely wanted; llama.vim uses the same rule).
  max_line_suffix = 8,
}

local INVOKED, AUTOMATIC = 1, 2 -- lsp.InlineCompletionTriggerKind
local REQUEST_CANCELLED = -32800

local timer = nil -- debounce timer
local pending = nil -- { client = client, id = request_id } of the request in flight
local generation = 0 -- bumps on every request/dismiss, so late answers are dropped
local ghost = nil -- the suggestion shown: see show()

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2] -- 0-based row, byte column
end

local function in_insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

local function stop_timer()
  if timer then
    timer:stop()
  end
end

local function cancel_pending()
  if pending then
    -- The server stops generating; its answer (a RequestCancelled error) is ignored below.
    pcall(util.cancel, pending.client, pending.id)
    pending = nil
  end
end

--- Remove the suggestion and forget any request in flight.
function M.dismiss()
  generation = generation + 1
  stop_timer()
  cancel_pending()
  if ghost and api.nvim_buf_is_valid(ghost.bufnr) then
    api.nvim_buf_clear_namespace(ghost.bufnr, M.ns, 0, -1)
  end
  ghost = nil
end

function M.visible()
  return ghost ~= nil
end

--- What is shown, for tests and statuslines: { text = ..., row = ..., col = ... } or nil.
function M.state()
  return ghost and { text = ghost.text, row = ghost.row, col = ghost.col, bufnr = ghost.bufnr }
end

local function expand_tabs(text, bufnr)
  -- Virtual text does not expand tabs itself.
  return (text:gsub('\t', string.rep(' ', vim.bo[bufnr].tabstop)))
end

-- Draw `text` as if inserted at (row, col). Neovim 0.10+ can place virtual text *inside* a line
-- ('inline'); older versions can only overlay or append at the end of the line, so there the first line
-- overlays the rest of the line with suggestion .. original rest, which looks the same.
local function draw(bufnr, row, col, text)
  local lines = vim.split(text, '\n', { plain = true })
  local hl = M.HIGHLIGHT
  local first = { { expand_tabs(lines[1], bufnr), hl } }
  local pos = 'inline'
  if not util.has('0.10') then
    pos = 'overlay'
    local rest = util.line(bufnr, row):sub(col + 1)
    if rest ~= '' then
      table.insert(first, { expand_tabs(rest, bufnr), 'Normal' })
    end
  end
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { expand_tabs(lines[i], bufnr), hl } })
  end
  return api.nvim_buf_set_extmark(bufnr, M.ns, row, col, {
    virt_text = first,
    virt_text_pos = pos,
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
end

-- Show the first item of an answer. The item's range (if any) is what accepting replaces; a server may
-- include text before the cursor in it, so only the part after what is already typed is drawn.
local function show(bufnr, client, item, row, col)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a StringValue (snippet): shown and inserted as plain text
  end
  if type(text) ~= 'string' or text == '' then
    return
  end
  local encoding = client.offset_encoding or 'utf-16'
  local start_row, start_col, end_row, end_col = row, col, row, col
  if item.range then
    start_row, start_col = util.buf_pos(bufnr, item.range.start, encoding)
    end_row, end_col = util.buf_pos(bufnr, item.range['end'], encoding)
  end
  local shown = text
  if start_row == row and end_row == row and start_col <= col then
    local typed = util.line(bufnr, row):sub(start_col + 1, col)
    if text:sub(1, #typed) ~= typed then
      return -- the suggestion disagrees with what is typed
    end
    shown = text:sub(#typed + 1)
  end
  if shown == '' then
    return
  end
  ghost = {
    bufnr = bufnr,
    tick = api.nvim_buf_get_changedtick(bufnr),
    row = row,
    col = col,
    text = text,
    range = { start_row, start_col, end_row, end_col },
    extmark = draw(bufnr, row, col, shown),
  }
end

--- Ask for a suggestion at the cursor. `invoked`: the user asked (trigger key), so show it even
--- outside insert mode; automatic requests are shown only while still in insert mode.
function M.request(bufnr, invoked)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  M.dismiss()
  local client = util.buf_client(bufnr)
  if not client then
    return false
  end
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = util.position(bufnr, row, col, client.offset_encoding),
    context = { triggerKind = invoked and INVOKED or AUTOMATIC },
  }
  local mine = generation
  -- client.request sends any pending didChange first, so the server sees the text we see.
  local ok, id = util.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if mine ~= generation then
      return -- superseded or dismissed meanwhile
    end
    pending = nil
    if err then
      if err.code ~= REQUEST_CANCELLED then
        vim.notify('DevstralElixir: inline completion failed: ' .. tostring(err.message), vim.log.levels.WARN)
      end
      return
    end
    local now_row, now_col = cursor()
    local still_here = api.nvim_get_current_buf() == bufnr
      and api.nvim_buf_get_changedtick(bufnr) == tick
      and now_row == row
      and now_col == col
    if not still_here or not (invoked or in_insert_mode()) then
      return
    end
    local items = result and (result.items or result) or {}
    if items[1] then
      show(bufnr, client, items[1], row, col)
    end
  end, bufnr)
  if ok then
    pending = { client = client, id = id }
  end
  return ok
end

--- Insert the suggestion (replacing its range) and put the cursor after it. False if none is shown.
function M.accept()
  local g = ghost
  if not g then
    return false
  end
  M.dismiss()
  if not api.nvim_buf_is_valid(g.bufnr) or api.nvim_buf_get_changedtick(g.bufnr) ~= g.tick then
    return false -- the text changed under it
  end
  local lines = vim.split(g.text, '\n', { plain = true })
  local start_row, start_col, end_row, end_col = unpack(g.range)
  api.nvim_buf_set_text(g.bufnr, start_row, start_col, end_row, end_col, lines)
  local last_row = start_row + #lines - 1
  local last_col = (#lines == 1 and start_col or 0) + #lines[#lines]
  if api.nvim_get_current_buf() == g.bufnr then
    api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  end
  return true
end

local function schedule_request(bufnr)
  M.dismiss()
  if not M.options.auto then
    return
  end
  local row, col = cursor()
  local after = util.line(bufnr, row):sub(col + 1):gsub('%s+$', '')
  if vim.fn.strchars(after) > M.options.max_line_suffix then
    return
  end
  timer = timer or uv.new_timer()
  local mine = generation
  timer:start(M.options.debounce_ms, 0, vim.schedule_wrap(function()
    -- Still the same keystroke's request, and still typing in this buffer?
    if mine == generation and in_insert_mode() and api.nvim_get_current_buf() == bufnr then
      M.request(bufnr, false)
    end
  end))
end

local function map_with_fallback(bufnr, key, action)
  -- An <expr> mapping: when nothing is shown the key does what it did before (e.g. <Tab> indents).
  vim.keymap.set('i', key, function()
    if ghost and ghost.bufnr == bufnr then
      return '<Cmd>lua require("devstral_elixir.ghost").' .. action .. '()<CR>'
    end
    return key
  end, { buffer = bufnr, expr = true, desc = 'DevstralElixir: ' .. action .. ' suggestion' })
end

--- Turn ghost text on for a buffer. keys: { accept = '<Tab>', dismiss = '<C-]>', trigger = '<M-\\>' }
--- (each may be false).
function M.attach(bufnr, keys, options)
  M.options = vim.tbl_extend('force', M.options, options or {})
  keys = keys or {}
  local group = api.nvim_create_augroup('DevstralElixirGhost' .. bufnr, { clear = true })
  api.nvim_create_autocmd('TextChangedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      schedule_request(bufnr)
    end,
  })
  api.nvim_create_autocmd('CursorMovedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      local row, col = cursor()
      if ghost and (ghost.row ~= row or ghost.col ~= col) then
        M.dismiss()
      end
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss()
    end,
  })
  if keys.accept then
    map_with_fallback(bufnr, keys.accept, 'accept')
  end
  if keys.dismiss then
    map_with_fallback(bufnr, keys.dismiss, 'dismiss')
  end
  if keys.trigger then
    vim.keymap.set('i', keys.trigger, function()
      M.request(bufnr, true)
    end, { buffer = bufnr, desc = 'DevstralElixir: suggest' })
  end
end

return M
