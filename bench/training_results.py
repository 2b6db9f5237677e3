"""Measured training results on CPU: held-out Elixir perplexity per stage, forgetting of general English
with and without EWC anchored at the base, and the λ sweep behind the chosen λ.

Offline, on the embedded SmolLM2-135M (hf backend, CPU), with runs configured from
finetune/configs/smollm2-cpu.toml plus overrides and trained by `finetune.train.runner.run` (no loop of
its own):

1. Data, with the project's own CLI functions (`finetune.cli`): `collect otp` (the `--otp-apps`),
   `collect beam-docs`, `collect local` on the project-written Elixir (examples/, tests/idioms/corpus/),
   `collect books` on docs/idioms.md — the repository holds no real book, so its idiom guide (chapters of
   prose with before/after Elixir) is the book-like material — then `build`. The project's own files carry
   no licence file, so the build allows unknown licences (the project is Apache-2.0).
2. Held out, never trained on: the BEAM-doc modules `--heldout-modules` and the project files
   `--heldout-files`, split off the collections before the build and rendered by a build of their own;
   their stage-1 texts (with the `# File:` header training uses) are the held-out Elixir set.
3. Perplexity (`finetune.train.perplexity`, non-overlapping `--seq-len` blocks) of the base on the held-out
   Elixir (`--elixir-blocks` blocks spread evenly over it) and on the shipped general-English eval text
   (never used by the anchor, which reads its sister anchor.txt).
4. Stage 1 without EWC, and with EWC anchored at the base on general English (`ewc.general_text =
   "builtin"`) for each λ of `--lambdas`; both perplexities after each run.
5. The chosen λ (`--chosen-lambda`, else the strongest λ that keeps ≥ 90 % of the no-EWC Elixir gain, or
   the one keeping the most when none does) and no-EWC continue through stages 2 and 3 (`--resume`),
   both perplexities after each stage.
6. `training-results.json` (every number, the settings, the held-out set, timings) and the plots
   `training-results-stages.png` and `training-results-lambda.png` in `--out`; a markdown table on stdout.

Self-synthesized rehearsal is off unless `--ssr` (it would confound the EWC comparison and costs
generation time). The embedded GGUF is dequantised once into <workdir>/base (same weights and logits)
so the many runs do not each spend ~17 s on it. The base stays fp32 for training and measuring alike
(`--qlora` for the shipped config's NF4): NF4 on top of the Q4_1 weights is a worse base, and slower to
evaluate on a CPU.

Usage (the defaults are sized for ≤ 55 minutes on 2 cores at ~205 tokens/s for a 2 × 512 batch):

    nice python bench/training_results.py --workdir /tmp/training-results --out docs/img
    # a smoke run of every step in a few minutes:
    python bench/training_results.py --workdir /tmp/tr-smoke --out /tmp/tr-smoke/out --seq-len 128 \\
        --batch 1 --stage1-steps 2 --stage2-steps 1 --stage3-steps 1 --lambdas 1 --elixir-blocks 2 \\
        --english-blocks 2 --fisher-samples 1 --general-samples 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from finetune import cli  # noqa: E402
from finetune.records import Record  # noqa: E402
from finetune.store import CollectionWriter, collections, read_collection  # noqa: E402
from finetune.train.config import (  # noqa: E402
    RunConfig,
    effective_qlora,
    load_config,
    probe_environment,
    shipped_general_text,
)
from finetune.train.data import load_rows  # noqa: E402
from finetune.train.model import load_base  # noqa: E402
from finetune.train.perplexity import Perplexity, perplexity, text_blocks  # noqa: E402
from finetune.train.runner import run  # noqa: E402

CPU_CONFIG = ROOT / "finetune" / "configs" / "smollm2-cpu.toml"
PROJECT_ELIXIR = (ROOT / "examples", ROOT / "tests" / "idioms" / "corpus")
BOOK = ROOT / "docs" / "idioms.md"
DEFAULT_HELDOUT_MODULES = "Agent,Date,Path,Regex,URI"
DEFAULT_HELDOUT_FILES = "tests/idioms/corpus/rate_limiter.ex,examples/lib/shopping_cart.ex"
GAIN_KEPT_TARGET = 0.9  # EWC may cost at most 10 % of the Elixir gain
STAGE_EWC_ARM = "ewc-stages-{:g}"
RISE_TARGET = 0.5  # … and should halve the rise of general-English perplexity
ELIXIR_TARGET = 0.75  # held-out Elixir perplexity after stage 1 ≤ 0.75 × the base's
NO_EWC = "no-ewc"


# -- data --------------------------------------------------------------------------------------------------


def _split_collection(folder: Path, keep: Path, held: Path, is_held: Any) -> list[str]:
    """Copy a collection's records into `keep` or `held` (one collection each); the held-out names."""
    names: list[str] = []
    source = folder.name
    with CollectionWriter(keep, source) as kept, CollectionWriter(held, source) as out:
        for record in read_collection(folder):
            name = is_held(record)
            if name:
                out.add(record)
                names.append(name)
            else:
                kept.add(record)
    return sorted(names)


def build_data(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Collections → held-out split → training datasets and the held-out Elixir text."""
    collected, raw, held_raw = workdir / "collected", workdir / "raw", workdir / "heldout-raw"
    datasets, held_datasets = workdir / "datasets", workdir / "heldout-datasets"
    info_path = workdir / "data.json"
    if info_path.exists() and datasets.is_dir() and not args.rebuild:
        return json.loads(info_path.read_text(encoding="utf-8"))
    for folder in (collected, raw, held_raw, datasets, held_datasets):
        shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    apps = [a for a in args.otp_apps.split(",") if a]
    cli.collect_otp(out=collected, root=Path(args.otp_root), app_name=apps or None)
    cli.collect_beam_docs(out=collected, elixir="elixir")
    cli.collect_local(paths=list(PROJECT_ELIXIR), out=collected, deps=False)
    cli.collect_books(paths=[BOOK], out=collected, licence="Apache-2.0", title="Make idiomatic: the rules")
    modules = {m for m in args.heldout_modules.split(",") if m}
    files = {str((ROOT / f).resolve()) for f in args.heldout_files.split(",") if f}

    def held_out(record: Record) -> str:
        if record.provenance.source == "beam_docs" and record.meta.get("module") in modules:
            return f"beam_docs:{record.meta['module']}"
        if record.provenance.source == "local" and _local_file(record) in files:
            return str(Path(_local_file(record)).relative_to(ROOT))
        return ""

    held: list[str] = []
    for folder in collections(collected):
        held += _split_collection(folder, raw, held_raw, held_out)
    missing = sorted(modules - {h.split(":", 1)[1] for h in held if h.startswith("beam_docs:")})
    missing += sorted(str(Path(f).relative_to(ROOT)) for f in files if str(Path(f).relative_to(ROOT)) not in held)
    if missing:
        raise SystemExit(f"held-out items not found in the collections: {missing}")
    common = {"licence": None, "allow_unknown_licence": True, "eval_problems": None, "tokenizer": "",
              "workers": 0}
    cli.build(raw=raw, out=datasets, cache=workdir / "cache" / "build", **common)
    cli.build(raw=held_raw, out=held_datasets, cache=workdir / "cache" / "heldout-build", **common)
    rows = sorted(load_rows(held_datasets, 1), key=lambda r: (r["provenance"].get("path", ""), r.get("text", "")))
    heldout_text = workdir / "heldout-elixir.txt"
    heldout_text.write_text("\n\n".join(r["text"] for r in rows), encoding="utf-8")
    card = json.loads((datasets / "card.json").read_text(encoding="utf-8"))
    info = {
        "collections": {name: source.get("records") for name, source in card["sources"].items()},
        "samples_per_stage": card["samples"],
        "tokens_per_stage": card.get("tokens"),
        "heldout": held,
        "heldout_text": str(heldout_text),
        "heldout_chars": len(heldout_text.read_text(encoding="utf-8")),
        "book": str(BOOK.relative_to(ROOT)),
        "seconds": round(time.perf_counter() - started, 1),
    }
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _local_file(record: Record) -> str:
    # The local source names a folder it was given as the package and records paths inside it.
    folder = {f.name: f for f in PROJECT_ELIXIR}.get(record.provenance.package)
    return str((folder / record.provenance.path).resolve()) if folder else ""


# -- the base and its measurement --------------------------------------------------------------------------


def materialise_base(workdir: Path) -> Path:
    """The embedded GGUF dequantised once into an HF folder: identical weights, loaded in a second."""
    folder = workdir / "base"
    if (folder / "config.json").is_file():
        return folder
    model, tokenizer = load_base("embedded", dtype="float32", device="cpu")
    partial = workdir / "base.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(folder)
    return folder


def spread(blocks: list[list[int]], count: int) -> list[list[int]]:
    """`count` blocks evenly spaced over the text (all when 0), so every held-out file gets its share
    instead of the first few in order."""
    if count <= 0 or count >= len(blocks):
        return blocks
    return [blocks[i * len(blocks) // count] for i in range(count)]


class Evaluator:
    """One copy of the base, with adapters swapped in by their weights: every measurement reads the same
    held-out Elixir and general-English blocks."""

    def __init__(self, config: RunConfig, args: argparse.Namespace, heldout_text: Path) -> None:
        quantize = effective_qlora(config, probe_environment())
        self.base, self.tokenizer = load_base(config.model.base, dtype=config.model.dtype, device="cpu",
                                              quantize_4bit=quantize)
        self.batch = args.eval_batch
        self.pad = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                       else self.tokenizer.eos_token_id)
        elixir = text_blocks(heldout_text.read_text(encoding="utf-8"), self.tokenizer, args.seq_len)
        self.sets = {
            "elixir": spread(elixir, args.elixir_blocks),
            "english": spread(text_blocks(shipped_general_text("eval").read_text(encoding="utf-8"),
                                          self.tokenizer, args.seq_len), args.english_blocks),
        }
        self.peft: Any = None

    def tokens(self) -> dict[str, int]:
        return {name: sum(len(b) for b in blocks) for name, blocks in self.sets.items()}

    def measure(self, adapter: Path | None) -> dict[str, Any]:
        started = time.perf_counter()
        model = self.base if adapter is None else self._with_adapter(adapter)
        results: dict[str, Perplexity] = {name: perplexity(model, blocks, self.batch, self.pad)
                                          for name, blocks in self.sets.items()}
        out: dict[str, Any] = {name: round(r.perplexity, 4) for name, r in results.items()}
        out["nll"] = {name: round(r.mean_nll, 5) for name, r in results.items()}
        out["eval_seconds"] = round(time.perf_counter() - started, 1)
        return out

    def _with_adapter(self, adapter: Path) -> Any:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        if self.peft is None:
            self.peft = get_peft_model(self.base, LoraConfig.from_pretrained(str(adapter)))
        result = set_peft_model_state_dict(self.peft, load_file(str(adapter / "adapter_model.safetensors")))
        if result.unexpected_keys:
            raise ValueError(f"{adapter}: adapter does not fit the evaluation model: {result.unexpected_keys[:3]}")
        return self.peft

    def measure_base(self) -> dict[str, Any]:
        if self.peft is None:
            return self.measure(None)
        with self.peft.disable_adapter():
            return self.measure(None)


# -- runs --------------------------------------------------------------------------------------------------


def arm_config(args: argparse.Namespace, workdir: Path, base: Path, arm: str, lam: float | None,
               anchor: bool = True) -> RunConfig:
    """The shipped CPU config with this experiment's sizes; `lam` None = EWC off (and no anchor);
    `anchor` False = EWC between stages only."""
    stages = {}
    for stage, steps in ((1, args.stage1_steps), (2, args.stage2_steps), (3, args.stage3_steps)):
        stages[f"stage{stage}"] = {"max_steps": steps, "batch_size": args.batch, "grad_accum": 1}
    if args.stage1_lr:
        stages["stage1"]["lr"] = args.stage1_lr
    if args.stage23_lr:
        stages["stage2"]["lr"] = stages["stage3"]["lr"] = args.stage23_lr
    ewc: dict[str, Any] = {"enabled": False, "general_text": ""}
    if lam is not None:
        ewc = {"enabled": True, "lambda": lam, "general_text": "builtin" if anchor else "",
               "general_samples": args.general_samples,
               "fisher_samples": args.fisher_samples}
    overrides = {
        "name": arm, "output_dir": str(workdir / "runs" / arm),
        "model": {"base": str(base), "max_seq_len": args.seq_len},
        # fp32, not the config's NF4 "auto": re-quantising the Q4_1 weights to NF4 raised the base's own
        # English perplexity (37.9 → 45.2 on 128-token blocks) and ran evaluation ~4× slower on this CPU.
        "lora": {"qlora": args.qlora},
        "training": {"stages": [1, 2, 3], **stages},
        "ewc": ewc,
        "ssr": {"stages": [3] if args.ssr else []},
        # Stage-end checkpoints only: they are what the next stage resumes from.
        "checkpoints": {"every_steps": 1_000_000, "keep_last": 1},
        # The runner's own held-out split (2 % of the training files) is measured on a few examples; the
        # held-out Elixir set of this experiment is measured here.
        "data": {"datasets": str(workdir / "datasets"), "held_out": 0.02, "heldout_examples": 4},
        "logging": {"tensorboard": False, "plots": True, "every_steps": 5},
    }
    return load_config(CPU_CONFIG, overrides)


def train(config: RunConfig, stage: int, log: Path) -> dict[str, Any]:
    started = time.perf_counter()
    if stage == 1:
        shutil.rmtree(config.output_path, ignore_errors=True)
    with log.open("a", encoding="utf-8") as handle:
        def say(message: str) -> None:
            handle.write(f"{message}\n")
            handle.flush()

        card = run(config, stages=[stage], resume=stage > 1, say=say)
    result = next(r for r in card["stages"] if r["stage"] == stage)
    return {"train_loss": round(result["train_loss"], 4), "steps": result["steps"], "tokens": result["tokens"],
            "train_seconds": round(result["seconds"], 1), "run_seconds": round(time.perf_counter() - started, 1),
            "adapter": result["adapter"]}


def choose_lambda(base: dict[str, Any], plain: dict[str, Any], sweep: list[dict[str, Any]]) -> float:
    """The strongest λ keeping ≥ 90 % of the no-EWC Elixir gain; else the one keeping the most."""
    for row in sweep:
        row.update(effects(base, plain, row))
    keeping = [row for row in sweep if row["gain_kept"] is not None and row["gain_kept"] >= GAIN_KEPT_TARGET]
    if keeping:
        return max(keeping, key=lambda row: row["lambda"])["lambda"]
    return max(sweep, key=lambda row: row["gain_kept"] if row["gain_kept"] is not None else -math.inf)["lambda"]


def effects(base: dict[str, Any], plain: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Elixir gain kept and English rise relative to the no-EWC run (perplexity differences)."""
    gain_plain = base["elixir"] - plain["elixir"]
    rise_plain = plain["english"] - base["english"]
    gain, rise = base["elixir"] - row["elixir"], row["english"] - base["english"]
    return {
        "elixir_vs_base": round(row["elixir"] / base["elixir"], 4),
        "english_rise": round(rise, 4),
        "gain_kept": round(gain / gain_plain, 4) if gain_plain > 0 else None,
        "rise_ratio": round(rise / rise_plain, 4) if rise_plain > 0 else None,
    }


# -- report ------------------------------------------------------------------------------------------------


def plot(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results["base"]
    written = []
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for arm, rows in results["stages"].items():
        label = arm_label(arm)
        xs = [0] + [r["stage"] for r in rows]
        for axis, key in zip(axes, ("elixir", "english"), strict=True):
            axis.plot(xs, [base[key]] + [r[key] for r in rows], marker="o", label=label)
    axes[0].axhline(ELIXIR_TARGET * base["elixir"], color="grey", linestyle="--", label="0.75 × base (target)")
    for axis, title in zip(axes, ("held-out Elixir perplexity", "general-English perplexity"), strict=True):
        axis.set_xticks([0, 1, 2, 3], ["base", "stage 1", "stage 2", "stage 3"])
        axis.set_title(title)
        axis.legend()
    written.append(save_figure(figure, out / "training-results-stages.png"))

    sweep = results["sweep"]
    plain = results["stages"][NO_EWC][0]
    lambdas = [row["lambda"] for row in sweep]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, title in ((axes[0], "english", "general-English perplexity after stage 1"),
                             (axes[1], "elixir", "held-out Elixir perplexity after stage 1")):
        axis.plot(lambdas, [row[key] for row in sweep], marker="o", label="EWC anchored at the base")
        axis.axhline(plain[key], color="C1", linestyle="--", label="no EWC")
        axis.axhline(base[key], color="grey", linestyle=":", label="base")
        axis.set_xscale("log")
        axis.set_xlabel("λ")
        axis.set_title(title)
        axis.legend()
    written.append(save_figure(figure, out / "training-results-lambda.png"))
    return written


def arm_label(arm: str) -> str:
    """Legend label: "no-ewc", "ewc-0.1" (anchored at the base), "ewc-stages-1" (between stages only)."""
    if arm == NO_EWC:
        return "no EWC"
    if arm.startswith("ewc-stages-"):
        return f"EWC λ={arm.removeprefix('ewc-stages-')}, between stages only"
    return f"EWC λ={arm.removeprefix('ewc-')}, anchored at the base"


def save_figure(figure: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def markdown(results: dict[str, Any]) -> str:
    base = results["base"]
    lines = ["| run | after | held-out Elixir ppl | × base | general-English ppl | rise vs base |",
             "|---|---|---|---|---|---|",
             f"| base | – | {base['elixir']:.3f} | 1.000 | {base['english']:.3f} | – |"]
    for arm, rows in results["stages"].items():
        for row in rows:
            lines.append(f"| {arm} | stage {row['stage']} | {row['elixir']:.3f} | {row['elixir'] / base['elixir']:.3f} "
                         f"| {row['english']:.3f} | {row['english'] - base['english']:+.3f} |")
    lines += ["", "| λ (stage 1) | held-out Elixir ppl | × base | general-English ppl | rise | rise / no-EWC rise "
              "| Elixir gain kept |", "|---|---|---|---|---|---|---|"]
    for row in results["sweep"]:
        ratio = "–" if row["rise_ratio"] is None else f"{row['rise_ratio']:.3f}"
        kept = "–" if row["gain_kept"] is None else f"{row['gain_kept']:.3f}"
        lines.append(f"| {row['lambda']:g} | {row['elixir']:.3f} | {row['elixir_vs_base']:.3f} | {row['english']:.3f} "
                     f"| {row['english_rise']:+.3f} | {ratio} | {kept} |")
    lines.append(f"\nChosen λ = {results['chosen_lambda']:g}; total {results['seconds'] / 60:.1f} minutes.")
    return "\n".join(lines)


def stage_ewc_arm(args: argparse.Namespace, workdir: Path, base_dir: Path, evaluator: Evaluator,
                  log: Path) -> tuple[str, list[dict[str, Any]]]:
    """EWC between stages only: no anchor at the base, so stage 1 trains as without EWC and stages 2-3 are
    held by the finished stages' Fisher."""
    lam = args.stage_ewc_lambda
    arm = STAGE_EWC_ARM.format(lam)
    config = arm_config(args, workdir, base_dir, arm, lam, anchor=False)
    rows = []
    for stage in (1, 2, 3):
        row = {"stage": stage, **train(config, stage, log)}
        row.update(evaluator.measure(Path(row["adapter"])))
        rows.append(row)
        print(f"{arm} stage {stage}: {row}", flush=True)
    return arm, rows


def extend(args: argparse.Namespace, workdir: Path, base_dir: Path, evaluator: Evaluator, log: Path) -> None:
    """Add the --stage-ewc-lambda arm to an earlier run's results (same data and sizes) and redraw."""
    if args.stage_ewc_lambda is None:
        raise SystemExit("--extend needs --stage-ewc-lambda")
    results = json.loads(args.extend.read_text(encoding="utf-8"))
    for name in ("seq_len", "batch", "stage1_steps", "stage2_steps", "stage3_steps", "stage1_lr", "stage23_lr"):
        if results["settings"].get(name) != getattr(args, name):
            raise SystemExit(f"--{name.replace('_', '-')} differs from {args.extend} "
                             f"({getattr(args, name)} vs {results['settings'].get(name)})")
    started = time.perf_counter()
    arm, rows = stage_ewc_arm(args, workdir, base_dir, evaluator, log)
    for row in rows:
        row["elixir_vs_base"] = round(row["elixir"] / results["base"]["elixir"], 4)
    rows[0].update(effects(results["base"], results["stages"][NO_EWC][0], rows[0]))
    results["stages"][arm] = rows
    results.setdefault("extended", []).append({"arm": arm, "date": time.strftime("%Y-%m-%d"),
                                               "seconds": round(time.perf_counter() - started, 1)})
    results["plots"] = plot(results, args.out)
    (args.out / "training-results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="collections, datasets, base, runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="JSON and plots")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--stage1-steps", type=int, default=60)
    parser.add_argument("--stage2-steps", type=int, default=30)
    parser.add_argument("--stage3-steps", type=int, default=30)
    parser.add_argument("--stage1-lr", type=float, default=0.0, help="0 = the shipped config's")
    parser.add_argument("--stage23-lr", type=float, default=0.0, help="stages 2 and 3; 0 = the shipped config's")
    parser.add_argument("--extend", type=Path, default=None,
                        help="an earlier run's training-results.json: run only the --stage-ewc-lambda arm and add it")
    parser.add_argument("--stage-ewc-lambda", type=float, default=None,
                        help="an arm with EWC between stages only (no base anchor), through all three stages")
    parser.add_argument("--lambdas", default="0.01,0.1,1,10", help="the EWC λ sweep of stage 1")
    parser.add_argument("--chosen-lambda", type=float, default=None, help="continue stages 2-3 with this λ")
    parser.add_argument("--fisher-samples", type=int, default=16, help="examples for each stage's Fisher")
    parser.add_argument("--general-samples", type=int, default=64, help="blocks of general English for the anchor")
    parser.add_argument("--elixir-blocks", type=int, default=32, help="held-out Elixir blocks measured (0 = all)")
    parser.add_argument("--english-blocks", type=int, default=0, help="general-English blocks measured (0 = all)")
    parser.add_argument("--eval-batch", type=int, default=2)
    parser.add_argument("--heldout-modules", default=DEFAULT_HELDOUT_MODULES)
    parser.add_argument("--heldout-files", default=DEFAULT_HELDOUT_FILES)
    parser.add_argument("--otp-apps", default="stdlib", help="comma-separated; empty = every OTP application")
    parser.add_argument("--otp-root", default="/usr/lib/erlang/lib")
    parser.add_argument("--ssr", action="store_true", help="self-synthesized rehearsal before stage 3")
    parser.add_argument("--qlora", action="store_true", help="NF4 base (as the shipped config's auto) not fp32")
    parser.add_argument("--rebuild", action="store_true", help="collect and build again")
    args = parser.parse_args()
    started = time.perf_counter()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log = workdir / "training.log"
    data = build_data(args, workdir)
    base_dir = materialise_base(workdir)
    lambdas = sorted(float(x) for x in args.lambdas.split(",") if x)
    plain_config = arm_config(args, workdir, base_dir, NO_EWC, None)
    evaluator = Evaluator(plain_config, args, Path(data["heldout_text"]))
    if args.extend is not None:
        extend(args, workdir, base_dir, evaluator, log)
        return
    base = evaluator.measure_base()
    print(f"base: {base}", flush=True)

    stages: dict[str, list[dict[str, Any]]] = {}
    stages[NO_EWC] = [{"stage": 1, **train(plain_config, 1, log)}]
    stages[NO_EWC][0].update(evaluator.measure(Path(stages[NO_EWC][0]["adapter"])))
    print(f"{NO_EWC} stage 1: {stages[NO_EWC][0]}", flush=True)
    sweep = []
    for lam in lambdas:
        config = arm_config(args, workdir, base_dir, f"ewc-{lam:g}", lam)
        row = {"lambda": lam, **train(config, 1, log)}
        row.update(evaluator.measure(Path(row["adapter"])))
        sweep.append(row)
        print(f"λ={lam:g} stage 1: {row}", flush=True)
    chosen = choose_lambda(base, stages[NO_EWC][0], sweep)
    if args.chosen_lambda is not None:
        chosen = args.chosen_lambda
    arms = {NO_EWC: plain_config, f"ewc-{chosen:g}": arm_config(args, workdir, base_dir, f"ewc-{chosen:g}", chosen)}
    if chosen not in lambdas:
        stages[f"ewc-{chosen:g}"] = [{"stage": 1, **train(arms[f"ewc-{chosen:g}"], 1, log)}]
        stages[f"ewc-{chosen:g}"][0].update(evaluator.measure(Path(stages[f"ewc-{chosen:g}"][0]["adapter"])))
    else:
        stages[f"ewc-{chosen:g}"] = [{"stage": 1, **{k: v for k, v in next(r for r in sweep if r["lambda"] == chosen).items()
                                                   if k != "lambda"}}]
    for stage in (2, 3):
        for arm, config in arms.items():
            row = {"stage": stage, **train(config, stage, log)}
            row.update(evaluator.measure(Path(row["adapter"])))
            stages[arm].append(row)
            print(f"{arm} stage {stage}: {row}", flush=True)

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
                   f"({torch.get_num_threads()} threads), Python {platform.python_version()}",
        "model": "embedded SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised), hf backend, CPU",
        "qlora": effective_qlora(plain_config, probe_environment()),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "lora": asdict(plain_config.lora),
        "data": data,
        "eval_tokens": evaluator.tokens(),
        "base": base,
        "sweep": sweep,
        "chosen_lambda": chosen,
        "stages": stages,
        "targets": {"elixir_after_stage1_vs_base": ELIXIR_TARGET, "rise_ratio": RISE_TARGET,
                    "gain_kept": GAIN_KEPT_TARGET},
        "seconds": round(time.perf_counter() - started, 1),
    }
    for rows in stages.values():
        rows[0].update(effects(base, stages[NO_EWC][0], rows[0]))
        for row in rows[1:]:
            row["elixir_vs_base"] = round(row["elixir"] / base["elixir"], 4)
    results["plots"] = plot(results, args.out)
    (args.out / "training-results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
