; alias Base.{A, B.C} with nothing else in the call (no `as:`); Python checks the entries.
(call
  target: (identifier) @directive
  (arguments . (dot left: [(alias) (identifier)] @base right: (tuple) @names) .)
  (#eq? @directive "alias")) @finding
