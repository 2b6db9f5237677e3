"""DevstralElixir language server: Elixir-aware completions from a local GGUF model."""

__version__ = "0.1.0"
