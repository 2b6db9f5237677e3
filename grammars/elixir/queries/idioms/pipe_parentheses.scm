; A pipe step written without parentheses: `|> foo` or `|> Mod.fun`.
(binary_operator
  operator: "|>"
  right: (identifier) @finding)

(binary_operator
  operator: "|>"
  right: (call target: (dot right: (identifier)) .) @finding)
