; Map.drop/2 or Keyword.drop/2 whose last argument is a one-element list literal.
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments
    (list . (_) @key .) @list .)
  (#any-of? @module "Map" "Keyword")
  (#eq? @name "drop")) @finding
