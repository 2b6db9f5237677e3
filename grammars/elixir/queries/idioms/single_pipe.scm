; A `|>` whose left side is not itself a pipe; the rule checks that no `|>` encloses it.
(binary_operator
  left: (_) @input
  operator: "|>"
  right: [(call) (identifier)] @step) @finding
