"""Completions for eval problems through the server's own backends, prompt format and post-processing.

One generation per sample, scored two ways:
- **raw** (MultiPL-E's protocol): the text cut at the problem's stop tokens; the model must close the
  function and the module itself;
- **post-processed** (what the editor would show): the server's `postprocess` with the cursor in the
  function body of a file whose function and module are already closed below it (as when a body is written
  into an existing stub), so the closers are the suffix and are appended after the completion.

The prompt is the server's format (`lsp.prompt.render_completion_prompt`) with the problem as the prefix of
a file `<name>.exs` and no suffix, so a fine-tuned model sees what it was trained on and the raw protocol
stays MultiPL-E's (nothing after the cursor).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from finetune.eval.problems import cut_at_stop_tokens
from lsp.backends.base import Backend, BackendError, GenerationParams
from lsp.completion.postprocess import close_open_blocks, postprocess
from lsp.config import ModelSettings
from lsp.models import create_backend, plan_model
from lsp.prompt import Prompt, PromptInput, render_completion_prompt
from lsp.registry import resolve_version


@dataclass(frozen=True)
class GenerationSettings:
    samples: int = 1
    temperature: float = 0.0
    max_tokens: int = 384
    time_budget_ms: int = 0  # 0 = none; a sample that hits it is scored as it stands


@dataclass(frozen=True)
class Sample:
    raw: str  # cut at the stop tokens: MultiPL-E's completion
    processed: str  # post-processed + the skeleton's closers
    generated_tokens: int
    seconds: float
    stop_reason: str


@dataclass
class ProblemSamples:
    name: str
    samples: list[Sample] = field(default_factory=list)


def skeleton_closers(prompt: str) -> str:
    """What closes the blocks a prompt leaves open ("\\n  end\\nend" after `defmodule … def f do`)."""
    closed = close_open_blocks(prompt, "", "")
    return closed[len(prompt.rstrip()) :] if closed is not None else ""


def problem_prompt(name: str, prompt: str, backend: Backend) -> Prompt:
    return render_completion_prompt(PromptInput(path=f"{name}.exs", prefix=prompt), backend.info().fim)


def process(raw_text: str, prompt: str) -> str:
    """The completion the server would offer in the closed stub, followed by the stub's closers."""
    closers = skeleton_closers(prompt)
    offered = postprocess(raw_text, prompt, closers + "\n").text
    return offered + closers


def generate_samples(
    backend: Backend,
    name: str,
    prompt: str,
    stop_tokens: Sequence[str],
    settings: GenerationSettings,
    cancel: threading.Event | None = None,
) -> ProblemSamples:
    rendered = problem_prompt(name, prompt, backend)
    params = GenerationParams(settings.max_tokens, settings.temperature, settings.time_budget_ms)
    result = ProblemSamples(name)
    stop_check: Callable[[str], bool] = lambda text: any(token in text for token in stop_tokens)  # noqa: E731
    for _ in range(settings.samples):
        started = time.perf_counter()
        generation = backend.generate(rendered, params, stop_check, cancel or threading.Event())
        result.samples.append(
            Sample(
                raw=cut_at_stop_tokens(generation.text, stop_tokens),
                processed=process(generation.text, prompt),
                generated_tokens=generation.generated_tokens,
                seconds=time.perf_counter() - started,
                stop_reason=generation.stop_reason,
            )
        )
    return result


# -- which model ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """`--model GGUF [--adapter GGUF]`, `--registry VERSION` (with `--registry-root`), or `--endpoint URL`."""

    model: Path | None = None
    adapter: Path | None = None
    registry_version: str = ""
    registry_root: Path | None = None
    endpoint: str = ""
    endpoint_model: str = ""
    threads: int = 0
    n_ctx: int = 4096
    name: str = ""  # shown instead of the derived label (model_choices sets it so that no two clash)

    def label(self) -> str:
        if self.name:
            return self.name
        if self.endpoint:
            return f"{self.endpoint_model or 'model'} @ {self.endpoint}"
        if self.registry_version:
            return f"registry {self.registry_version}"
        base = self.model.name if self.model is not None else "embedded"
        return f"{base} + {self.adapter.name}" if self.adapter is not None else base


def gguf_paths(choice: ModelChoice) -> tuple[Path, Path | None]:
    """(model GGUF, LoRA GGUF or None) of a choice that is not an endpoint; a registry version is checked
    against its recorded base (BackendError / RegistryError say what is wrong)."""
    settings = ModelSettings(path=str(choice.model or ""), threads=choice.threads, n_ctx=choice.n_ctx)
    if choice.registry_version:
        if choice.registry_root is None:
            raise ValueError("--registry VERSION needs the registry folder (--registry-root or $DEVSTRAL_REGISTRY)")
        spec = plan_model(settings, choice.registry_root, resolve_version(choice.registry_root, choice.registry_version))
        lora = spec.lora_path
    else:
        spec = plan_model(settings, None, None)
        lora = choice.adapter
    if spec.model_path is None:
        raise BackendError(f"{choice.label()}: no GGUF model")
    if lora is not None and not lora.is_file():
        raise BackendError(f"adapter file not found: {lora}")
    return spec.model_path, lora


def open_backend(choice: ModelChoice) -> Backend:
    """The backend for a model choice; BackendError / RegistryError say what is wrong."""
    if choice.endpoint:
        settings = ModelSettings(backend="openai_compat", url=choice.endpoint, name=choice.endpoint_model,
                                 timeout_s=120.0, n_ctx=choice.n_ctx)
        return create_backend(settings)
    return create_backend(ModelSettings(threads=choice.threads, n_ctx=choice.n_ctx), *gguf_paths(choice))


def distinct_names(paths: Sequence[Path]) -> list[str]:
    """The shortest trailing parts of each path that tell them apart: exports are all `adapter.gguf`,
    so two of them show as `s1/export/adapter.gguf` and `s3/export/adapter.gguf`."""
    for depth in range(1, max((len(path.parts) for path in paths), default=0) + 1):
        names = ["/".join(path.parts[-depth:]) for path in paths]
        if len(set(names)) == len(names):
            return names
    return [str(path) for path in paths]


def model_choices(
    base: Path | None,
    adapters: Sequence[Path] = (),
    registry_versions: Sequence[str] = (),
    registry_root: Path | None = None,
    endpoint: str = "",
    endpoint_model: str = "",
    threads: int = 0,
    include_base: bool = True,
) -> list[ModelChoice]:
    """The models one `finetune eval` compares: the base (unless left out), the base with each adapter,
    then each registry version — so every adapter is measured next to its base on the same work."""
    if endpoint:
        if adapters or registry_versions:
            raise ValueError("--endpoint serves one model: it cannot be combined with --adapter or --registry")
        return [ModelChoice(endpoint=endpoint, endpoint_model=endpoint_model)]
    choices = [ModelChoice(model=base, threads=threads)] if include_base else []
    base_label = base.name if base is not None else "embedded"
    choices += [
        ModelChoice(model=base, adapter=adapter, threads=threads, name=f"{base_label} + {shown}")
        for adapter, shown in zip(adapters, distinct_names(adapters), strict=True)
    ]
    choices += [ModelChoice(registry_version=version, registry_root=registry_root, threads=threads)
                for version in registry_versions]
    if not choices:
        raise ValueError("--no-base with no --adapter or --registry leaves no model to evaluate")
    return choices
