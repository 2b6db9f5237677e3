"""The `finetune` pipeline (collect, build datasets, train, evaluate, export, promote).

Empty until its issues land; it may import the pure parts of `lsp` (prompt, syntax) so that training and
serving render prompts identically.
"""
