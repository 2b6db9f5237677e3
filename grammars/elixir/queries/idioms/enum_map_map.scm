; Enum.map whose input is another Enum.map (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "map")) @finding
