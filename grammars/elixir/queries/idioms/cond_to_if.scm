; `cond do ... end` (the Python side wants exactly two clauses, the last a catch-all); `cond` has only
; the block form in practice.
(call
  target: (identifier) @_keyword
  (do_block (stab_clause))
  (#eq? @_keyword "cond")) @finding
