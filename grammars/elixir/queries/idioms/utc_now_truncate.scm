; `DateTime.utc_now() |> DateTime.truncate(unit)` (also NaiveDateTime), piped or nested.
(binary_operator
  left: (call target: (dot left: (alias) @now_module right: (identifier) @now_name)) @now
  operator: "|>"
  right: (call
    target: (dot left: (alias) @module right: (identifier) @name)
    (arguments . (atom) @unit .))
  (#any-of? @module "DateTime" "NaiveDateTime")
  (#eq? @now_module @module)
  (#eq? @now_name "utc_now")
  (#eq? @name "truncate")) @finding

(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments
    .
    (call target: (dot left: (alias) @now_module right: (identifier) @now_name)) @now
    .
    (atom) @unit
    .)
  (#any-of? @module "DateTime" "NaiveDateTime")
  (#eq? @now_module @module)
  (#eq? @now_name "utc_now")
  (#eq? @name "truncate")) @finding
