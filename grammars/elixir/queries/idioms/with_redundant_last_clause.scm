; A `with` with a `<-` clause (the Python side compares the last clause's pattern with the body).
(call
  target: (identifier) @_keyword
  (arguments (binary_operator operator: "<-"))
  (#eq? @_keyword "with")) @finding
