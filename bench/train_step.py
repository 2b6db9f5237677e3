"""Training speed of the hf backend on the embedded SmolLM2, and packing efficiency on real data.

Stage-1 rows are built in the benchmark from the Debian OTP sources (`finetune collect otp` + `finetune
build`, tokenizer report off) unless `--datasets` points at existing ones. Then, for the dense (fp32) and
the NF4 QLoRA base, the same packed batches go through `steps` optimizer steps of the real stage loop's
pieces (LoRA r=8 on all projections, gradient checkpointing); tokens/s excludes a first warm-up step.
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


def otp_datasets(scratch: Path) -> Path:
    raw = scratch / "raw"
    with CollectionWriter(raw, "otp") as writer:
        writer.add_all(otp.collect(otp.DEFAULT_ROOT, apps=("stdlib", "kernel")))
    out = scratch / "datasets"
    build_datasets(BuildOptions(raw=raw, out=out, workers=os.cpu_count() or 1, tokenizer_report=False))
    return out


def measure(base_4bit: bool, blocks: list[dict], batch: int, steps: int) -> dict:
    model, _ = load_base("embedded", dtype="float32", device="cpu", quantize_4bit=base_4bit)
    model = attach_lora(model, LoraOptions(r=8, alpha=16))
    prepare_model_for_packing(model)
    params = adapter_parameters(model)
    optimizer = torch.optim.AdamW(params.values(), lr=1e-4)
    times, tokens = [], 0
    for step in range(steps + 1):
        chunk = blocks[step * batch : (step + 1) * batch]
        inputs = collate_packed(chunk)
        started = time.perf_counter()
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # the first step warms up kernels and allocators
            times.append(time.perf_counter() - started)
            tokens += int(inputs["input_ids"].numel())
    return {"tokens_per_s": round(tokens / sum(times), 1), "seconds_per_step": round(sum(times) / len(times), 2)}


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
    results = {"dense_fp32": measure(False, blocks[:needed], args.batch, args.steps)}
    if bnb_4bit_available():
        results["qlora_nf4"] = measure(True, blocks[:needed], args.batch, args.steps)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "model": "embedded SmolLM2-135M (GGUF dequantised to fp32), LoRA r=8 on all projections",
        "seq_len": args.seq_len, "batch": args.batch, "steps": args.steps,
        "packing": {"rows": len(rows), "blocks": len(packed.blocks),
                    "efficiency": round(packed.packing_efficiency, 4), "target": 0.95},
        "hf_backend": results,
        "unsloth_backend": "not installed on this machine",
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
