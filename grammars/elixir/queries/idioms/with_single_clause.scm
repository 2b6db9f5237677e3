; `with pat <- x do ... else ... end`
(call
  target: (identifier) @_keyword
  (arguments . (binary_operator operator: "<-") .)
  (do_block (else_block))
  (#eq? @_keyword "with")) @finding

; `with pat <- x, do: ..., else: (...)`
(call
  target: (identifier) @_keyword
  (arguments . (binary_operator operator: "<-") (keywords (pair key: (keyword) @_else)))
  (#eq? @_keyword "with")
  (#match? @_else "^else:")) @finding
