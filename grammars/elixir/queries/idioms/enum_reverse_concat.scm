; Enum.concat/2 whose input is an Enum.reverse (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "concat")) @finding

; Enum.reverse(a) ++ [...]
(binary_operator
  left: (call target: (dot left: (alias) @module right: (identifier) @name))
  operator: "++"
  right: (list)
  (#eq? @module "Enum")
  (#eq? @name "reverse")) @finding
