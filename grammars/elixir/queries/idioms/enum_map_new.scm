; Map/MapSet/Keyword.new or Enum.into whose input is an Enum.map (lsp.idioms.fusion checks the input).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#any-of? @module "Map" "MapSet" "Keyword")
  (#eq? @name "new")) @finding

(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Enum")
  (#eq? @name "into")) @finding
