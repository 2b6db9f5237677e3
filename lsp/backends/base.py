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

# How long a stop check waits to be built before it gives up (its builder failed to say it failed).
STOP_CHECK_BUILD_LIMIT_S = 10.0


class LateStopCheck:
    """A stop check handed to the backend before it exists, built by the server while the model evaluates
    the prompt (which releases the GIL): the check is first needed after the first token, so building it
    need not delay the prompt. Backends call `generation_starts` when the model starts on the prompt (after
    any Python work of theirs, such as tokenizing, that the builder would compete with for the GIL)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self._built = threading.Event()
        self._check: StopCheck | None = None
        self._error: BaseException | None = None

    def build(self, make: Callable[[], StopCheck]) -> None:
        try:
            self._check = make()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._built.set()

    def __call__(self, text: str) -> bool:
        if not self._built.wait(STOP_CHECK_BUILD_LIMIT_S):
            raise BackendError("the completion's stop check was never built")
        if self._check is None:
            raise BackendError(f"the completion's stop check could not be built: {self._error}")
        return self._check(text)


def generation_starts(should_stop: StopCheck) -> None:
    """Backends call this as they start on a prompt (before tokenizing it, or before sending it)."""
    if isinstance(should_stop, LateStopCheck):
        should_stop.started.set()


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
