; `if !c` / `if not c` / `if a != b` / `if a !== b` (the Python side requires an else, either form).
(call
  target: (identifier) @_keyword
  (arguments . (unary_operator operator: ["!" "not"]))
  (#eq? @_keyword "if")) @finding

(call
  target: (identifier) @_keyword
  (arguments . (binary_operator operator: ["!=" "!=="]))
  (#eq? @_keyword "if")) @finding
