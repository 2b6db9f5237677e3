"""What every backend offers the server: blocking, cancellable generation and prefill.

Backends are called from one worker thread; `cancel` is checked between tokens (or streamed chunks), so a
superseded request stops within one token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lsp.prompt import FimTokens, Prompt


class BackendError(RuntimeError):
    """A backend cannot serve (missing/corrupt model, unreachable server); the message is user-facing."""


@dataclass(frozen=True)
class BackendInfo:
    backend: str
    model: str
    fim: FimTokens | None
    n_ctx: int
    # The prompt-format version the model was trained with (GGUF metadata), if it says.
    prompt_format: str | None = None


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 64
    temperature: float = 0.0
    # Wall-clock budget for generation (not prompt evaluation); 0 = none.
    time_budget_ms: int = 0


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    prompt_ms: float = 0.0
    generation_ms: float = 0.0
    # eos | max_tokens | stop | cancelled | time
    stop_reason: str = "eos"
    extra: dict[str, float] = field(default_factory=dict)


# Called with the text generated so far; True stops generation (early block end, single line …).
StopCheck = Callable[[str], bool]


class Backend(Protocol):
    def info(self) -> BackendInfo: ...

    def count_tokens(self, text: str) -> int: ...

    def generate(
        self, prompt: Prompt, params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult: ...

    def prefill(self, prompt: Prompt, cancel: threading.Event) -> GenerationResult:
        """Evaluate the prompt into the KV cache without generating (no-op for remote backends)."""
        ...

    def close(self) -> None: ...
