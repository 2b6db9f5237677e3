; `def`/`defp` whose do-block holds a `try` with a do-block (the Python side checks it is the only thing).
(call
  target: (identifier) @_def
  (arguments)
  (do_block
    (call target: (identifier) @_try (do_block)))
  (#any-of? @_def "def" "defp")
  (#eq? @_try "try")) @finding
