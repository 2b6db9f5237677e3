"""`finetune train` on a tiny llama: three stages continuing one adapter, EWC between them, checkpoints,
exact resumption, the run card, metrics and plots — and the CLI reporting a bad config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402

from finetune.train.config import config_from_dict  # noqa: E402
from finetune.train.runner import checkpoints, run  # noqa: E402
from lsp.prompt import PROMPT_FORMAT_VERSION  # noqa: E402
from tests.finetune.tiny_model import build_tiny_llama  # noqa: E402

ELIXIR = [
    "defmodule Math do\n  def add(a, b), do: a + b\n  def double(x), do: x * 2\nend\n",
    "Enum.map([1, 2, 3], fn x -> x * 2 end)\n|> Enum.sum()\n",
    "defmodule Cart do\n  def total(items), do: Enum.sum(items)\nend\n",
]


def _row(stage: int, task: str, path: str, **fields) -> dict:
    return {"stage": stage, "task": task, "prompt_format": PROMPT_FORMAT_VERSION,
            "provenance": {"source": "local", "package": "shop", "path": path}, "meta": {}, **fields}


def _datasets(root: Path) -> Path:
    rows = {
        1: [_row(1, "causal_code", f"lib/f{i}.ex", text=f"# File: lib/f{i}.ex\n{ELIXIR[i % 3]}") for i in range(24)],
        2: [_row(2, "fim", f"lib/g{i}.ex", prompt=f"# File: lib/g{i}.ex\ndef add(a, b), do: ", completion="a + b\n")
            for i in range(16)],
        3: [{**_row(3, "iex_eval", f"book/{i}", prompt="# What does this evaluate to?\n1 + 2\n", completion="3\n"),
             "meta": {"difficulty": {"score": i / 16}, "curriculum_index": i}} for i in range(16)],
    }
    for stage, items in rows.items():
        folder = root / f"stage{stage}"
        folder.mkdir(parents=True)
        (folder / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    build_tiny_llama(root / "tiny")
    _datasets(root / "datasets")
    return root


def _config(workspace: Path, name: str, **overrides):
    data = {
        "name": name, "backend": "hf", "device": "cpu", "output_dir": str(workspace / "runs" / name),
        "model": {"base": str(workspace / "tiny"), "dtype": "float32", "max_seq_len": 64},
        "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "qlora": False, "compute_dtype": "float32"},
        "training": {
            "stages": [1, 2, 3],
            "stage1": {"max_steps": 6, "lr": 5e-3, "batch_size": 2, "warmup": 0.0},
            "stage2": {"max_steps": 4, "lr": 5e-3, "batch_size": 2, "warmup": 0.0},
            "stage3": {"max_steps": 4, "lr": 5e-3, "batch_size": 2, "warmup": 0.0, "pacing": "competence"},
        },
        "ewc": {"enabled": True, "lambda": 10.0, "fisher_samples": 4},
        "ssr": {"stages": [3], "examples_per_task": 2, "shots": 1, "synthesized": 3, "keep": 2, "clusters": 1,
                "max_new_tokens": 8},
        "checkpoints": {"every_steps": 2, "keep_last": 10},
        "data": {"datasets": str(workspace / "datasets"), "held_out": 0.2},
        "logging": {"every_steps": 1, "tensorboard": False},
    }
    return config_from_dict(data, overrides)


def _adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter_model.safetensors"))


def _metric_rows(root: Path) -> list[dict[str, str]]:
    """The run's metrics.csv as one dict per row."""
    metrics = (root / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in metrics[1:]]


def test_three_stages_continue_one_adapter_with_ewc(workspace: Path):
    config = _config(workspace, "full")
    card = run(config, say=lambda message: None)
    root = config.output_path
    assert [s["stage"] for s in card["stages"]] == [1, 2, 3]
    assert card["prompt_format"] == PROMPT_FORMAT_VERSION and card["versions"]["torch"]
    stage1 = card["stages"][0]
    assert stage1["packing_efficiency"] > 0.5 and stage1["heldout_loss"] is not None
    adapters = [_adapter(root / f"stage{n}" / "adapter") for n in (1, 2, 3)]
    assert adapters[0].keys() == adapters[2].keys(), "one adapter through all stages"
    assert any(not torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0]), "stage 2 trained it further"
    rows = _metric_rows(root)
    assert all(float(r["ewc_penalty"]) == 0 for r in rows if r["stage"] == "1"), "no penalty before a consolidation"
    assert any(float(r["ewc_penalty"]) > 0 for r in rows if r["stage"] == "2"), "EWC pulls stage 2 back"
    assert all((root / f"stage{n}.png").stat().st_size > 0 for n in (1, 2, 3))
    assert json.loads((root / "run_card.json").read_text())["config_digest"] == config.digest()
    # SSR ran before stage 3 on stage 2's one task: the base model sampled, its answers were parsed
    # (a random tiny model rarely writes "Output:", so few or none survive).
    ssr = card["stages"][2]["ssr"]
    assert ssr["sampled"] == 3 and 0 <= ssr["kept"] <= ssr["parsed"] <= 3
    assert card["stages"][0]["ssr"] == {}


def test_resume_continues_exactly_where_a_crash_left_off(workspace: Path):
    reference = _config(workspace, "reference", training={"stages": [1]})
    run(reference, say=lambda message: None)
    crashed = _config(workspace, "crashed", training={"stages": [1]})
    run(crashed, say=lambda message: None)
    root = crashed.output_path
    # Make it look as if the process died after step 4: newer checkpoints and the stage output are gone.
    for folder in checkpoints(root):
        if json.loads((folder / "state.json").read_text())["step"] > 4 or "step000006" in folder.name:
            import shutil

            shutil.rmtree(folder)
    assert json.loads((checkpoints(root)[-1] / "state.json").read_text())["step"] == 4
    messages: list[str] = []
    run(crashed, resume=True, say=messages.append)
    assert any("resuming at step 4" in m for m in messages), messages
    resumed = _adapter(root / "stage1" / "adapter")
    expected = _adapter(reference.output_path / "stage1" / "adapter")
    for key in expected:
        assert torch.allclose(resumed[key], expected[key], atol=1e-6), f"{key} differs after resume"


def test_the_cli_reports_every_config_problem_at_once(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('backend = "hf"\n[lora]\nrank = -1\n[training]\nstages = [4]\n[training.stage1]\nlr = 5\n')
    done = subprocess.run([sys.executable, "-m", "finetune.cli", "train", "--config", str(bad)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    for key in ("lora.rank", "training.stages", "training.stage1.lr"):
        assert key in done.stderr, done.stderr


def _toml(workspace: Path, name: str, steps: int) -> Path:
    path = workspace / f"{name}.toml"
    path.write_text(f"""
name = "{name}"
backend = "hf"
device = "cpu"
output_dir = "{workspace / "runs" / name}"

[model]
base = "{workspace / "tiny"}"
dtype = "float32"
max_seq_len = 64

[lora]
rank = 4
alpha = 8
dropout = 0.0
qlora = false
compute_dtype = "float32"

[training]
stages = [1]

[training.stage1]
max_steps = {steps}
lr = 1e-3
batch_size = 2
warmup = 0.0

[ewc]
enabled = false

[checkpoints]
every_steps = 5
keep_last = 3

[data]
datasets = "{workspace / "datasets"}"
held_out = 0.2

[logging]
every_steps = 1
tensorboard = false
plots = false
""")
    return path


@pytest.mark.slow
def test_kill_9_mid_stage_then_resume_finishes_the_stage(workspace: Path):
    import signal
    import time

    config = _toml(workspace, "killed", steps=400)
    root = workspace / "runs" / "killed"
    command = [sys.executable, "-m", "finetune.cli", "train", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(checkpoints(root)) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = checkpoints(root)
    assert saved, "the run wrote checkpoints before it was killed"
    last_step = json.loads((saved[-1] / "state.json").read_text())["step"]
    assert 0 < last_step < 400, "killed mid-stage"
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert f"resuming at step {last_step}" in done.stderr + done.stdout
    card = json.loads((root / "run_card.json").read_text())
    assert card["stages"][0]["steps"] == 400
    steps = [int(line.split(",")[1]) for line in (root / "metrics.csv").read_text().splitlines()[1:]]
    assert steps[-1] == 400 and set(range(1, 401)) <= set(steps), "every step ran; only the last interval repeats"


@pytest.mark.slow
def test_two_process_ddp_ranks_end_with_identical_adapters(workspace: Path):
    """The same command under torchrun (2 CPU processes, gloo): both ranks hold the same adapter."""
    config = _toml(workspace, "ddp", steps=6)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "finetune.cli", "train", "--config", str(config)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((workspace / "runs" / "ddp" / "run_card.json").read_text())
    stage = card["stages"][0]
    assert stage["world_size"] == 2
    digests = stage["rank_adapter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (workspace / "runs" / "ddp" / "stage1" / "adapter" / "adapter_model.safetensors").exists()
