; A `with` clause `var <- rhs` whose left side is a plain variable (or `_`), in either form.
(call
  target: (identifier) @_keyword
  (arguments
    (binary_operator left: (identifier) @variable operator: "<-" right: (_) @rhs) @finding)
  (#eq? @_keyword "with"))
