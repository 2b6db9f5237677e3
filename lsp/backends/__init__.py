"""Model backends: `llama_cpp` (embedded, in-process) and `openai_compat` (HTTP)."""
