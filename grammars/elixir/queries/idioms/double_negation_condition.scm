; `if !!x` / `unless not not x` (any mix of `!` and `not`), in either form.
(call
  target: (identifier) @_keyword
  (arguments . (unary_operator operator: ["!" "not"] operand: (unary_operator operator: ["!" "not"])))
  (#any-of? @_keyword "if" "unless")) @finding
