; `X.compare(a, b) == :gt` for X in DateTime/NaiveDateTime/Date/Time: plain, piped, or reversed.
(binary_operator
  left: (call target: (dot left: (alias) @module right: (identifier) @name)) @compare
  operator: ["==" "==="]
  right: (atom) @result
  (#any-of? @module "DateTime" "NaiveDateTime" "Date" "Time")
  (#eq? @name "compare")
  (#any-of? @result ":gt" ":lt")) @finding
(binary_operator
  left: (binary_operator
    operator: "|>"
    right: (call target: (dot left: (alias) @module right: (identifier) @name)) @compare)
  operator: ["==" "==="]
  right: (atom) @result
  (#any-of? @module "DateTime" "NaiveDateTime" "Date" "Time")
  (#eq? @name "compare")
  (#any-of? @result ":gt" ":lt")) @finding
(binary_operator
  left: (atom) @result
  operator: ["==" "==="]
  right: (call target: (dot left: (alias) @module right: (identifier) @name)) @compare
  (#any-of? @module "DateTime" "NaiveDateTime" "Date" "Time")
  (#eq? @name "compare")
  (#any-of? @result ":gt" ":lt")) @finding
