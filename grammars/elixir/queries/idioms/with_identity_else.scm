; `with ... do ... else e -> e end`
(call
  target: (identifier) @_keyword
  (do_block (else_block (stab_clause left: (arguments (identifier)) right: (body (identifier)))))
  (#eq? @_keyword "with")) @finding

; `with ..., do: ..., else: (e -> e)`
(call
  target: (identifier) @_keyword
  (arguments
    (keywords
      (pair key: (keyword) @_else value: (block (stab_clause left: (arguments (identifier)))))))
  (#eq? @_keyword "with")
  (#match? @_else "^else:")) @finding
