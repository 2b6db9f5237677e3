; apply(module, :fun, [args]) with a literal function name and argument list.
(call
  target: (identifier) @apply
  (arguments
    .
    [(alias) (atom) (identifier)] @module
    .
    (atom) @function
    .
    (list) @list .)
  (#eq? @apply "apply")) @finding
; apply(fun, [args]) with a variable as the function.
(call
  target: (identifier) @apply
  (arguments
    .
    (identifier) @fun
    .
    (list) @list .)
  (#eq? @apply "apply")) @finding
