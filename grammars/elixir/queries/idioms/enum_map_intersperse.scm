; Enum.intersperse/2 whose input is an Enum.map (piped or nested; lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "intersperse")) @finding
