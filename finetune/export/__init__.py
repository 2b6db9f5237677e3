"""GGUF export of trained adapters: a llama.cpp LoRA adapter, or a merged model quantized in-process.

One concern per module: `gguf_names` (architectures, tensor names, Q/K permutation), `adapter` (PEFT →
GGUF LoRA), `merged` (torch model → F16/BF16 GGUF), `tokenizer`, `quantize` (llama_model_quantize),
`metadata` (our GGUF keys), `verify` (logits and perplexity against torch), `heldout` (default held-out
Elixir), `pipeline` (the command).
"""
