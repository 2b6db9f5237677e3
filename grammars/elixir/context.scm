; Definitions and directives around the cursor, read by lsp/syntax/context.py.
; Written against tree-sitter-elixir 0.3.5: `defmodule A do ... end` is a `call` whose `target` is the
; identifier `defmodule`, with an `arguments` child and a `do_block` child.

; defmodule / defprotocol / defimpl: the whole call (its do_block may be missing while the user types).
(call
  target: (identifier) @module.keyword
  (#any-of? @module.keyword "defmodule" "defprotocol" "defimpl")) @module

; def-like definitions: `def f(x) do ... end`, `def f(x), do: x`, `defdelegate f(x), to: M`, bodyless heads.
(call
  target: (identifier) @function.keyword
  (#any-of? @function.keyword "def" "defp" "defmacro" "defmacrop" "defguard" "defguardp" "defdelegate")) @function

; Module directives.
(call
  target: (identifier) @directive.keyword
  (#any-of? @directive.keyword "alias" "import" "use" "require")) @directive

; A half-typed definition (`def f(x) do` with no `end`) is often flattened into an ERROR node as loose
; tokens: identifier `def`, arguments, `do`, ... Its keyword is then a direct child of the ERROR.
(ERROR
  (identifier) @broken.keyword
  (#any-of? @broken.keyword
    "defmodule" "defprotocol" "defimpl"
    "def" "defp" "defmacro" "defmacrop" "defguard" "defguardp" "defdelegate"
    "alias" "import" "use" "require"))

; Syntax errors: a cursor inside one switches to the indentation-based fallback.
(ERROR) @error
