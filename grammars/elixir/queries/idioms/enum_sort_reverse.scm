; Enum.reverse/1 whose input is an Enum.sort or Enum.sort_by (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "reverse")) @finding
