; Enum.count/1 whose input is an Enum/Stream.filter (piped or nested; lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "count")) @finding
