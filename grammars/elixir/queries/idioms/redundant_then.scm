; `then/2` with a capture: piped `x |> then(&f(&1, y))` or direct `then(x, &Mod.f/1)`.
(call
  target: (identifier) @then
  (arguments . (unary_operator operator: "&") @capture .)
  (#eq? @then "then")) @finding

(call
  target: (identifier) @then
  (arguments . (_) @subject . (unary_operator operator: "&") @capture .)
  (#eq? @then "then")) @finding
