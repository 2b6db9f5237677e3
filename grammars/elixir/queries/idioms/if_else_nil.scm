; `if/unless c, do: a, else: nil` (or `else: ()`).
(call
  target: (identifier) @_keyword
  (arguments (keywords (pair key: (keyword) @_else value: [(nil) (block)])))
  (#any-of? @_keyword "if" "unless")
  (#match? @_else "^else:")) @finding

; `if/unless c do a else nil end` or an empty else (the Python side checks the else holds nothing else).
(call
  target: (identifier) @_keyword
  (do_block (else_block))
  (#any-of? @_keyword "if" "unless")) @finding
