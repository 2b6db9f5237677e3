"""The Unsloth backend's scenarios, run in a process of their own by tests/finetune/test_train_unsloth.py.

Importing Unsloth patches transformers, PEFT and TRL for the whole process, so it never happens inside the
test session; this worker trains on the tiny llama and writes what the tests check as JSON.

Usage: python -m tests.finetune.unsloth_worker WORKSPACE OUT.json
(WORKSPACE holds `tiny/` and `datasets/` as built by the test's fixture.)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from finetune.train.model import LoraOptions, ModelLoadError
from finetune.train.runner import checkpoints, load_model, run
from finetune.train.unsloth_backend import load_unsloth, unsloth_summary
from tests.finetune.test_train_runner import ELIXIR, _config

TINY_LORA = LoraOptions(r=4, alpha=8)


def _quiet(message: str) -> None:
    """Run logs are not needed: the card and files are checked."""


def three_stages(workspace: Path) -> dict[str, Any]:
    """All stages on the Unsloth backend, and the trained model's logits on a fixed text (eval, no grad)."""
    config = _config(workspace, "unsloth-full", backend="unsloth")
    card = run(config, say=_quiet)
    # The stage-3 adapter as Unsloth loads it on --resume: its logits are what plain PEFT must reproduce.
    model, tokenizer = load_model(config, "cpu", False, TINY_LORA, config.output_path / "stage3" / "adapter")
    model.eval()
    with torch.no_grad():
        ids = tokenizer(ELIXIR[0], return_tensors="pt")["input_ids"]
        logits = model(input_ids=ids).logits
    return {"card": card, "root": str(config.output_path), "text": ELIXIR[0], "logits": logits.tolist()}


def resume(workspace: Path) -> dict[str, Any]:
    """Stage 1 cut after step 4 and resumed, against the same stage run straight through."""
    reference = _config(workspace, "unsloth-reference", backend="unsloth", training={"stages": [1]})
    run(reference, say=_quiet)
    crashed = _config(workspace, "unsloth-crashed", backend="unsloth", training={"stages": [1]})
    run(crashed, say=_quiet)
    for folder in checkpoints(crashed.output_path):
        if json.loads((folder / "state.json").read_text())["step"] > 4 or "step000006" in folder.name:
            shutil.rmtree(folder)
    messages: list[str] = []
    run(crashed, resume=True, say=messages.append)
    resumed = load_file(str(crashed.output_path / "stage1" / "adapter" / "adapter_model.safetensors"))
    expected = load_file(str(reference.output_path / "stage1" / "adapter" / "adapter_model.safetensors"))
    return {
        "messages": messages,
        "same_keys": sorted(resumed) == sorted(expected),
        "max_difference": max(float((resumed[k] - expected[k]).abs().max()) for k in expected),
    }


def forward(workspace: Path) -> dict[str, Any]:
    """What the training forward of an Unsloth-loaded model does, next to the stock transformers forward."""
    model, tokenizer = load_unsloth(str(workspace / "tiny"), dtype="float32", device="cpu", quantize_4bit=False,
                                    max_seq_len=64, options=TINY_LORA, cache_dir=workspace / "cache")
    ids = tokenizer(ELIXIR[1], return_tensors="pt")["input_ids"]
    model.train()
    unsloth_out = model(input_ids=ids, labels=ids)
    unsloth_out.loss.backward()
    grads = sum(1 for name, p in model.named_parameters() if "lora_" in name and p.grad is not None)
    base = model.base_model.model
    base._unsloth_cpu_chunked_ce_active = False  # Unsloth's own switch: off gives the stock forward
    stock_out = model(input_ids=ids, labels=ids)
    base._unsloth_cpu_chunked_ce_active = True
    return {
        "summary": unsloth_summary(model),
        "peft_class": type(model).__name__,
        "gradient_checkpointing": bool(base.is_gradient_checkpointing),
        "training_logits_returned": unsloth_out.logits is not None,
        "unsloth_loss": float(unsloth_out.loss),
        "stock_loss": float(stock_out.loss),
        "stock_logits_returned": stock_out.logits is not None,
        "lora_tensors_with_gradients": grads,
    }


def refusals(workspace: Path, adapter: Path) -> dict[str, str]:
    """The messages for an adapter of another shape and for a device Unsloth does not train on here."""
    found: dict[str, str] = {}
    common = {"dtype": "float32", "quantize_4bit": False, "max_seq_len": 64, "cache_dir": workspace / "cache"}
    for name, device, options, saved in (("rank", "cpu", LoraOptions(r=8, alpha=8), adapter),
                                         ("device", "cuda", TINY_LORA, None)):
        try:
            load_unsloth(str(workspace / "tiny"), device=device, options=options, adapter=saved, **common)
            found[name] = ""
        except ModelLoadError as error:
            found[name] = str(error)
    return found


def main() -> None:
    workspace, out = Path(sys.argv[1]), Path(sys.argv[2])
    full = three_stages(workspace)
    results = {
        "three_stages": full,
        "resume": resume(workspace),
        "forward": forward(workspace),
        "refusals": refusals(workspace, Path(full["root"]) / "stage1" / "adapter"),
    }
    out.write_text(json.dumps(results, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
