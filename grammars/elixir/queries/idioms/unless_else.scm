; `unless c, do: a, else: b` (keyword form; the Python side checks the keys).
(call
  target: (identifier) @_keyword
  (arguments (keywords (pair key: (keyword) @_else)))
  (#eq? @_keyword "unless")
  (#match? @_else "^else:")) @finding

; `unless c do a else b end`
(call
  target: (identifier) @_keyword
  (do_block (else_block))
  (#eq? @_keyword "unless")) @finding
