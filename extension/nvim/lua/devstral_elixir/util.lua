-- Small helpers that hide the differences between Neovim 0.7 and 0.12 from the rest of the plugin.
local M = {}

M.NAME = 'devstral_elixir'

--- True when running on Neovim >= the given "major.minor" (e.g. '0.11').
function M.has(version)
  return vim.fn.has('nvim-' .. version) == 1
end

-- 0.11 turned the client's functions into methods (`client:request(...)`) and deprecated the old
-- `client.request(...)` form; older versions only have the function form.
local methods = M.has('0.11')

function M.request(client, method, params, handler, bufnr)
  if methods then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel(client, request_id)
  if methods then
    return client:cancel_request(request_id)
  end
  return client.cancel_request(request_id)
end

function M.notify(client, method, params)
  if methods then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.stop(client)
  if methods then
    return client:stop()
  end
  return client.stop()
end

--- Whether a client is shutting down or gone (it stays listed for a moment after stop()).
function M.is_stopped(client)
  if methods then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- The running DevstralElixir client attached to `bufnr`, or nil.
function M.buf_client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local attached = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr, name = M.NAME }) -- 0.10+
    or vim.tbl_values(vim.lsp.buf_get_clients(bufnr)) -- 0.7 - 0.9
  for _, client in ipairs(attached) do
    if client.name == M.NAME and not M.is_stopped(client) then
      return client
    end
  end
end

--- Every running DevstralElixir client.
function M.clients()
  local all = vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()
  return vim.tbl_filter(function(client)
    return client.name == M.NAME
  end, all)
end

-- Positions: Neovim counts bytes, LSP counts code units of the negotiated encoding (UTF-16 unless the
-- server agreed on another). A character is 1-4 UTF-8 bytes; only 4-byte ones (outside the BMP, e.g.
-- emoji) take two UTF-16 units.
local function char_len(byte)
  if byte >= 0xF0 then
    return 4
  elseif byte >= 0xE0 then
    return 3
  elseif byte >= 0xC0 then
    return 2
  end
  return 1 -- ASCII, or a stray continuation byte: count it alone
end

local function units(len, encoding)
  if encoding == 'utf-16' and len == 4 then
    return 2
  end
  return 1
end

--- LSP column of byte column `byte_col` (0-based) in `line`.
function M.lsp_col(line, byte_col, encoding)
  encoding = encoding or 'utf-16'
  if encoding == 'utf-8' then
    return math.min(byte_col, #line)
  end
  local col, i = 0, 1
  while i <= byte_col and i <= #line do
    local len = char_len(line:byte(i))
    col = col + units(len, encoding)
    i = i + len
  end
  return col
end

--- Byte column (0-based) of LSP column `col` in `line`.
function M.byte_col(line, col, encoding)
  encoding = encoding or 'utf-16'
  if encoding == 'utf-8' then
    return math.min(col, #line)
  end
  local seen, i = 0, 1
  while i <= #line and seen < col do
    local len = char_len(line:byte(i))
    seen = seen + units(len, encoding)
    i = i + len
  end
  return math.min(i - 1, #line)
end

function M.line(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

--- LSP position of a (0-based row, byte column) in a buffer.
function M.position(bufnr, row, byte_col, encoding)
  return { line = row, character = M.lsp_col(M.line(bufnr, row), byte_col, encoding) }
end

--- (0-based row, byte column) of an LSP position in a buffer.
function M.buf_pos(bufnr, position, encoding)
  return position.line, M.byte_col(M.line(bufnr, position.line), position.character, encoding)
end

return M
