"""Training speed of the hf and Unsloth backends on the embedded SmolLM2, and packing efficiency on real data.

Stage-1 rows are built in the benchmark from the Debian OTP sources (`finetune collect otp` + `finetune
build`, tokenizer report off) unless `--datasets` points at existing ones. Then, for each backend and for
the dense (fp32) and the NF4 QLoRA base, the same packed batches go through `steps` optimizer steps of the
real stage loop's pieces (LoRA r=8 on all projections, gradient checkpointing, train mode); tokens/s
excludes a first warm-up step. The variants take turns step by step, so load from other work on the machine
hits all of them alike; the hf models are built before Unsloth is imported (it patches transformers).
Without a GPU, Unsloth runs its CPU fallback (stock transformers + PEFT, chunked cross-entropy).
Packing efficiency = share of non-pad tokens in the packed blocks (target ≥ 95 %).

Usage: python bench/train_step.py [--datasets DIR] [--seq-len 512] [--batch 2] [--steps 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from finetune.dataset.build import BuildOptions, build_datasets  # noqa: E402
from finetune.sources import otp  # noqa: E402
from finetune.store import CollectionWriter  # noqa: E402
from finetune.train.data import (  # noqa: E402
    PackingOptions,
    collate_packed,
    load_rows,
    pack_rows,
    prepare_model_for_packing,
)
from finetune.train.model import LoraOptions, adapter_parameters, attach_lora, bnb_4bit_available, load_base  # noqa: E402
from finetune.train.unsloth_backend import load_unsloth, unsloth_installed, unsloth_summary  # noqa: E402

LORA = LoraOptions(r=8, alpha=16)


def otp_datasets(scratch: Path) -> Path:
    raw = scratch / "raw"
    with CollectionWriter(raw, "otp") as writer:
        writer.add_all(otp.collect(otp.DEFAULT_ROOT, apps=("stdlib", "kernel")))
    out = scratch / "datasets"
    build_datasets(BuildOptions(raw=raw, out=out, workers=os.cpu_count() or 1, tokenizer_report=False))
    return out


def hf_model(base_4bit: bool) -> Any:
    model, _ = load_base("embedded", dtype="float32", device="cpu", quantize_4bit=base_4bit)
    return attach_lora(model, LORA)


def unsloth_model(base_4bit: bool, cache: Path, seq_len: int) -> Any:
    # The GGUF becomes a Hugging Face folder once (in `cache`), as in a run's output folder.
    model, _ = load_unsloth("embedded", dtype="float32", device="cpu", quantize_4bit=base_4bit, max_seq_len=seq_len,
                            options=LORA, cache_dir=cache)
    return model


class Stepper:
    """One variant's model and optimizer, stepped through the same batches as the others."""

    def __init__(self, model: Any) -> None:
        prepare_model_for_packing(model)
        model.train()  # as the stage loop does: a loaded model is in eval mode, where checkpointing is off
        self.model = model
        self.params = adapter_parameters(model)
        self.optimizer = torch.optim.AdamW(self.params.values(), lr=1e-4)
        self.times: list[float] = []
        self.tokens = 0

    def step(self, inputs: dict[str, torch.Tensor], timed: bool) -> None:
        started = time.perf_counter()
        self.model(**inputs).loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if timed:
            self.times.append(time.perf_counter() - started)
            self.tokens += int(inputs["input_ids"].numel())

    def result(self) -> dict[str, float]:
        return {"tokens_per_s": round(self.tokens / sum(self.times), 1),
                "seconds_per_step": round(sum(self.times) / len(self.times), 2)}


def measure(steppers: dict[str, Stepper], blocks: list[dict], batch: int, steps: int) -> dict[str, dict]:
    """Every variant takes step k before any takes step k+1, so a change in the machine's load hits all alike."""
    for step in range(steps + 1):
        inputs = collate_packed(blocks[step * batch : (step + 1) * batch])
        for stepper in steppers.values():
            stepper.step(inputs, timed=step > 0)  # the first step warms up kernels and allocators
    return {name: stepper.result() for name, stepper in steppers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        datasets = args.datasets or otp_datasets(Path(tmp))
        rows = load_rows(datasets, 1)
        _, tokenizer = load_base("embedded", dtype="float32", device="cpu")
        packed = pack_rows(rows, tokenizer, PackingOptions(seq_len=args.seq_len))
    blocks = [{"input_ids": b.input_ids, "position_ids": b.position_ids, "labels": b.labels} for b in packed.blocks]
    needed = (args.steps + 1) * args.batch
    variants = {"dense_fp32": False, "qlora_nf4": True} if bnb_4bit_available() else {"dense_fp32": False}
    # hf models are built before Unsloth is imported (it patches transformers process-wide).
    steppers = {f"hf/{name}": Stepper(hf_model(q)) for name, q in variants.items()}
    summaries: dict[str, Any] = {}
    if unsloth_installed():
        with tempfile.TemporaryDirectory() as cache:
            for name, q in variants.items():
                steppers[f"unsloth/{name}"] = Stepper(unsloth_model(q, Path(cache), args.seq_len))
                summaries[name] = unsloth_summary(steppers[f"unsloth/{name}"].model)
    load_before = os.getloadavg()[0]
    measured = measure(steppers, blocks[:needed], args.batch, args.steps)
    results = {name: measured[f"hf/{name}"] for name in variants}
    unsloth: dict[str, Any] = {"status": "not installed (make setup installs it)"}
    if summaries:
        unsloth = {name: {**measured[f"unsloth/{name}"], "unsloth": summaries[name]} for name in variants}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "model": "embedded SmolLM2-135M (GGUF dequantised to fp32), LoRA r=8 on all projections",
        "seq_len": args.seq_len, "batch": args.batch, "steps": args.steps,
        # Other work on the machine slows every variant alike (they are interleaved), but not the totals.
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "packing": {"rows": len(rows), "blocks": len(packed.blocks),
                    "efficiency": round(packed.packing_efficiency, 4), "target": 0.95},
        "hf_backend": results,
        "unsloth_backend": unsloth,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
