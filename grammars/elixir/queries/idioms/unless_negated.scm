; `unless !c` / `unless not c`, in either form (the Python side rejects an else).
(call
  target: (identifier) @_keyword
  (arguments . (unary_operator operator: ["!" "not"]))
  (#eq? @_keyword "unless")) @finding
