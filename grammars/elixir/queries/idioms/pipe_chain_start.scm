; The call a pipe chain starts with, when it has parenthesised arguments (lsp.idioms.pipes_helpers
; decides whether its first argument may move in front).
(binary_operator
  left: (call
    target: [(identifier) (dot left: [(alias) (atom)] right: (identifier))]
    (arguments . (_))) @finding
  operator: "|>")
