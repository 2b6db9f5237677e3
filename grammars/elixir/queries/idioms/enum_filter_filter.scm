; Enum.filter/reject whose input is the same kind of call (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#any-of? @name "filter" "reject")) @finding
