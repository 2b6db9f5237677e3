; Map.merge/2 whose last argument is a plain map literal (not a struct); Python checks it has one key.
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments
    (map . (map_content) @content .) @map .)
  (#eq? @module "Map")
  (#eq? @name "merge")) @finding
