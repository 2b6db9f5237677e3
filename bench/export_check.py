"""Export fidelity: logit agreement of exported GGUFs with torch, and what quantization costs in perplexity.

Runs both export routes of `finetune export` on one adapter and prints, per file, top-1 agreement and the
largest logit difference against the torch model on the fixed Elixir prompts, and for the merged route the
held-out perplexity of F16, Q8_0 and Q4_K_M with their ratios to F16 (target Q4_K_M ≤ 1.05×). Held-out
text: the project-written Elixir of examples/lib/*.ex. Without `--adapter`, an adapter with random lora_B
(r=8, alpha 16, seeded) stands in for a trained one, so that the check has something to see.

Usage: python bench/export_check.py [--base embedded] [--adapter DIR] [--scale 0.02] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from finetune.export.pipeline import ExportOptions, export  # noqa: E402
from finetune.train.model import LoraOptions, attach_lora, load_base, randomize_lora_b, save_adapter  # noqa: E402


def random_adapter(model: Any, out: Path, scale: float, seed: int) -> Path:
    peft_model = attach_lora(copy.deepcopy(model), LoraOptions(r=8, alpha=16, gradient_checkpointing=False))
    randomize_lora_b(peft_model, scale, seed)
    return save_adapter(peft_model, out)


def _row(name: str, entry: dict[str, Any]) -> str:
    ppl = f"{entry['perplexity']:.3f}" if "perplexity" in entry else "-"
    ratio = f"{entry['perplexity_ratio']:.3f}" if "perplexity_ratio" in entry else "-"
    return (f"| {name} | {entry['top1_agreement']:.2%} | {entry['max_abs_diff']:.3f} | {ppl} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--scale", type=float, default=0.02, help="std of the random lora_B (no --adapter)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout", type=Path, default=ROOT / "examples" / "lib")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)  # the export does the same for its own passes
    started = time.perf_counter()
    model, tokenizer = load_base(args.base)
    load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="export-check-") as scratch_name:
        scratch = Path(scratch_name)
        adapter = args.adapter or random_adapter(model, scratch / "adapter", args.scale, args.seed)
        reports = {}
        for route, quants in (("adapter", ()), ("merged", ("q8_0", "q4_k_m"))):
            options = ExportOptions(adapter=adapter, base=args.base, out=scratch / f"export-{route}", route=route, quants=quants,
                                    heldout=(args.heldout,), threads=args.threads)
            reports[route] = export(options, say=lambda message: print(f"  {message}", file=sys.stderr),
                                    load=lambda: (copy.deepcopy(model), tokenizer))
    adapter_checks = reports["adapter"]["logits"]
    merged = reports["merged"]
    print(f"\nbase {args.base} (loaded in {load_seconds:.0f} s); adapter "
          f"{args.adapter or f'random lora_B x{args.scale} (seed {args.seed})'}; held-out {args.heldout}")
    print(f"adapter moves the torch model: top-1 changes on "
          f"{1 - reports['adapter']['adapter_effect']['top1_agreement']:.1%} of positions\n")
    print("| file | top-1 agreement with torch | max abs logit diff | held-out perplexity | ratio to F16 |")
    print("|---|---|---|---|---|")
    print(_row("adapter.gguf on an F16 base (the gate)", adapter_checks["f16_base"]))
    if "served_base" in adapter_checks:
        print(_row("adapter.gguf on the served base GGUF", adapter_checks["served_base"]))
        print(_row("served base GGUF alone (vs torch base)", adapter_checks["served_base_without_adapter"]))
    print(_row("model-f16.gguf (the gate)", merged["logits"]["f16"]))
    for quant, entry in merged["quantized"].items():
        print(_row(f"model-{quant}.gguf ({entry['fallback_tensors']} fallback tensors)", entry))
    print(f"\nseconds: adapter route {reports['adapter']['seconds']}, merged route {merged['seconds']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "reports": reports}, indent=2, default=str))


if __name__ == "__main__":
    main()
