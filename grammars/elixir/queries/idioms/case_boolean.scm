; `case x do true -> ...; false -> ... end` and `x |> case do ... end` (the Python side checks the two
; clauses are true/false, false/true or true/_).
(call
  target: (identifier) @_keyword
  (do_block (stab_clause left: (arguments [(boolean) (identifier)])))
  (#eq? @_keyword "case")) @finding
