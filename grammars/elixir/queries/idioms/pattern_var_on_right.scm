; `var = pattern` as a whole parameter of a def head (with or without a guard).
(call
  target: (identifier) @kind
  (arguments
    .
    (call
      (arguments
        (binary_operator left: (identifier) operator: "=" right: (_)) @finding)))
  (#any-of? @kind "def" "defp" "defmacro" "defmacrop"))
(call
  target: (identifier) @kind
  (arguments
    .
    (binary_operator
      left: (call
        (arguments
          (binary_operator left: (identifier) operator: "=" right: (_)) @finding))
      operator: "when"))
  (#any-of? @kind "def" "defp" "defmacro" "defmacrop"))

; ... as a whole pattern of a clause (fn, case, receive, with-else; Python rules out cond and friends).
(stab_clause
  left: (arguments
    (binary_operator left: (identifier) operator: "=" right: (_)) @finding) @clause_arguments)
(stab_clause
  left: (binary_operator
    left: (arguments
      (binary_operator left: (identifier) operator: "=" right: (_)) @finding) @clause_arguments
    operator: "when"))

; ... as the pattern of a `<-` in with/for.
(call
  target: (identifier) @kind
  (arguments
    (binary_operator
      left: (binary_operator left: (identifier) operator: "=" right: (_)) @finding
      operator: "<-"))
  (#any-of? @kind "with" "for"))
