; Definitions and directives around the cursor, read by lsp/syntax/context.py.
; Written against tree-sitter-elixir 0.3.5: `defmodule A do ... end` is a `call` whose `target` is the
; identifier `defmodule`, with an `arguments` child and a `do_block` child.
;
; No text predicates here: context.py sorts calls by their keyword itself. Between keystrokes the server
; may query a tree that was moved by `Tree.edit` but not yet reparsed (see lsp/documents.py); such a tree
; carries no source text, and py-tree-sitter silently skips `#any-of?`-style predicates on it.

; Every call with a plain identifier target: defmodule/defprotocol/defimpl, def-likes (`def f(x) do ... end`,
; `def f(x), do: x`, `defdelegate f(x), to: M`, bodyless heads) and directives (alias/import/use/require).
(call
  target: (identifier)) @call

; A half-typed definition (`def f(x) do` with no `end`) is often flattened into an ERROR node as loose
; tokens: identifier `def`, arguments, `do`, ... Its keyword is then a direct child of the ERROR.
(ERROR
  (identifier) @broken.keyword)

; Syntax errors: a cursor inside one switches to the indentation-based fallback.
(ERROR) @error
