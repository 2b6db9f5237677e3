-- Scenario (no server): the plugin's column conversions between Neovim's byte columns and LSP's UTF-16 /
-- UTF-32 / UTF-8 columns, at every character boundary of the given lines.
local t = vim.g.devstral_test
local h = dofile(t.harness)
local util = require('devstral_elixir.util')

h.run(function()
  local result = {}
  for _, line in ipairs(t.lines) do
    local rows = {}
    for _, byte_col in ipairs(vim.str_utf_pos and vim.str_utf_pos(line) or {}) do
      table.insert(rows, byte_col - 1)
    end
    if #rows == 0 then -- 0.7 has no vim.str_utf_pos: walk the characters
      local i = 0
      while i < #line do
        table.insert(rows, i)
        i = i + #vim.fn.strcharpart(line:sub(i + 1), 0, 1)
      end
    end
    table.insert(rows, #line)
    local columns = {}
    for _, byte_col in ipairs(rows) do
      local u16 = util.lsp_col(line, byte_col, 'utf-16')
      local u32 = util.lsp_col(line, byte_col, 'utf-32')
      table.insert(columns, {
        byte_col,
        u16,
        u32,
        util.byte_col(line, u16, 'utf-16'),
        util.byte_col(line, u32, 'utf-32'),
        util.lsp_col(line, byte_col, 'utf-8'),
      })
    end
    table.insert(result, columns)
  end
  h.finish({ columns = result })
end)
