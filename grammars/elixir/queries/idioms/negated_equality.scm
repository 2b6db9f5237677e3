; `not (a == b)` / `!(a === b)`: a negation whose operand is a parenthesised equality alone.
(unary_operator
  operator: ["not" "!"]
  operand: (block . (binary_operator operator: ["==" "==="]) @comparison .)) @finding
