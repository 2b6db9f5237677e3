; Piping into an immediately called anonymous function: `|> (fn x -> ... end).()` or `|> (& ...).()`.
(binary_operator
  operator: "|>"
  right: (call
    target: (dot left: (block [(anonymous_function) (unary_operator operator: "&")] @fun) .)
    (arguments) @arguments) @finding)
