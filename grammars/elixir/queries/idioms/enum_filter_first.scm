; List.first/1,2 or Enum.at(_, 0) whose input is an Enum.filter (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "List")
  (#eq? @name "first")) @finding

(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments (integer))
  (#eq? @module "Enum")
  (#eq? @name "at")) @finding
