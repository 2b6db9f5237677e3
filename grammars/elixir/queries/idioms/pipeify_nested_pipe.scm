; A call whose first argument is a pipe chain: `d(a |> b())`.
(call
  target: [(identifier) (dot left: [(alias) (atom)] right: (identifier))]
  (arguments . (binary_operator operator: "|>"))) @finding
