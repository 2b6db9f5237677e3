; Every `alias Some.Module` (optionally with `as:`); Python finds the first of each run and sorts it.
(call
  target: (identifier) @directive
  (arguments . (alias))
  (#eq? @directive "alias")) @finding
