; A def/defp/defmacro/defmacrop head `name()` (Python checks the parentheses are empty).
(call
  target: (identifier) @kind
  (arguments
    .
    (call
      target: (identifier) @name
      (arguments) @parens .) @finding)
  (#any-of? @kind "def" "defp" "defmacro" "defmacrop"))
