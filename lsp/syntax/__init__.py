"""Pure tree-sitter helpers: parsing, queries, Elixir context. No pygls, no llama_cpp."""
