; Keyword.merge/2 whose last argument is a keyword literal, bracketed or trailing; Python checks one key.
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments [(list) (keywords)] .)
  (#eq? @module "Keyword")
  (#eq? @name "merge")) @finding
