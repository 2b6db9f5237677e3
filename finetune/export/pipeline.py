"""`finetune export`: a trained adapter → GGUF files that the server loads, checked against torch.

    adapter route (default):  PEFT adapter → adapter.gguf (for Llama(model_path=base.gguf, lora_path=...))
    merged route:             base + adapter merged in torch → model-f16.gguf → model-q8_0 / model-q4_k_m

Verification (on by default): the torch model and the exported file score the same fixed Elixir prompts;
top-1 agreement must reach 99 % (the largest logit difference is reported). The adapter is checked on a
16-bit copy of the base, since a quantized base GGUF disagrees with the dequantized torch weights by itself
(llama.cpp quantizes activations for its quantized matrix products); its numbers on the served base are
reported next to the base's own. Quantized files are checked by their held-out perplexity relative to F16.

Everything is written to a temporary folder beside `out` and renamed into place when complete, with
`export_report.json` (the numbers, file hashes, metadata); a failed check publishes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gguf

from finetune.atomic import fsync_tree, replace_dir, write_json
from finetune.export.adapter import AdapterError, check_against_base, read_peft_adapter, write_adapter_gguf
from finetune.export.gguf_names import UnsupportedModelError
from finetune.export.heldout import HELDOUT_ELIXIR
from finetune.export.merged import OUTTYPES, merge_adapter, write_model_gguf
from finetune.export.metadata import (
    ExportMetadata,
    base_identity,
    from_run_card,
    open_gguf_reader,
    sha256_file,
)
from finetune.export.quantize import QUANT_TYPES, quantize_gguf
from finetune.export.verify import (
    FIXED_PROMPTS,
    Q4_K_M_PERPLEXITY_TARGET,
    VerificationError,
    compare_logits,
    encode_prompts,
    gguf_logits,
    open_gguf,
    perplexity,
    tokenization_mismatches,
    torch_logits,
    windows,
)
from lsp.prompt import PROMPT_FORMAT_VERSION

ROUTES = ("adapter", "merged")
REPORT_NAME = "export_report.json"
ADAPTER_FILE = "adapter.gguf"
HELDOUT_WINDOW = 256
# GGUF file types whose weights torch's dequantized copy reproduces (up to 16-bit rounding).
_FLOAT_FILE_TYPES = {int(gguf.LlamaFileType.ALL_F32), int(gguf.LlamaFileType.MOSTLY_F16), int(gguf.LlamaFileType.MOSTLY_BF16)}

Loader = Callable[[], tuple[Any, Any]]


class ExportError(RuntimeError):
    """Bad input or a failed check; the message names the file, setting or numbers."""


@dataclass(frozen=True)
class ExportOptions:
    adapter: Path
    base: str
    out: Path
    route: str = "adapter"
    quants: tuple[str, ...] = ()
    outtype: str = "f16"
    run_card: Path | None = None
    verify: bool = True
    heldout: tuple[Path, ...] = ()
    base_gguf: Path | None = None  # the GGUF an adapter will be served on, when the base is not one
    tokenizer_pre: str | None = None
    threads: int | None = None
    overwrite: bool = False
    dtype: str = "auto"
    prompts: tuple[str, ...] = field(default=FIXED_PROMPTS)

    def problems(self) -> list[str]:
        found = []
        if self.route not in ROUTES:
            found.append(f"--route {self.route!r}: choose adapter or merged")
        if self.quants and self.route != "merged":
            found.append("--quant applies to the merged route (an adapter is applied to a base GGUF as it is)")
        found += [f"--quant {q!r}: choose from {', '.join(QUANT_TYPES)}" for q in self.quants if q not in QUANT_TYPES]
        if self.outtype not in OUTTYPES:
            found.append(f"--outtype {self.outtype!r}: choose from {', '.join(OUTTYPES)}")
        if not (self.adapter / "adapter_config.json").is_file():
            found.append(f"--adapter {self.adapter}: no adapter_config.json there (not a PEFT adapter folder)")
        if self.base_gguf is not None and not self.base_gguf.is_file():
            found.append(f"--base-gguf {self.base_gguf}: no such file")
        found += [f"--heldout {path}: no such file or folder" for path in self.heldout if not path.exists()]
        if self.out.exists() and not self.overwrite:
            found.append(f"--out {self.out}: already exists (pass --overwrite to replace it)")
        return found


def options_from_run(run_dir: Path, **settings: Any) -> ExportOptions:
    """Options for the run in `run_dir`: its last stage's adapter, its base and its run card."""
    card_path = run_dir / "run_card.json"
    if not card_path.is_file():
        raise ExportError(f"--run {run_dir}: no run_card.json (not a finished `finetune train` run)")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    adapter = settings.pop("adapter", None) or _last_adapter(run_dir, card)
    base = settings.pop("base", None) or card.get("config", {}).get("model", {}).get("base")
    if not base:
        raise ExportError(f"{card_path}: config.model.base is missing; pass --base")
    route = settings.get("route", "adapter")
    out = settings.pop("out", None) or run_dir / f"export-{route}"
    return ExportOptions(adapter=Path(adapter), base=str(base), out=Path(out), run_card=card_path, **settings)


def _last_adapter(run_dir: Path, card: dict[str, Any]) -> Path:
    stages = sorted(card.get("stages", []), key=lambda result: result.get("stage", 0))
    for result in reversed(stages):
        recorded = Path(result.get("adapter") or "")
        for candidate in (recorded, run_dir / f"stage{result.get('stage')}" / "adapter"):
            if str(candidate) and (candidate / "adapter_config.json").is_file():
                return candidate
    found = sorted(run_dir.glob("stage*/adapter/adapter_config.json"))
    if not found:
        raise ExportError(f"--run {run_dir}: no stage adapter found (stage<N>/adapter/adapter_config.json)")
    return found[-1].parent


def export(options: ExportOptions, *, say: Callable[[str], None] = print, load: Loader | None = None) -> dict[str, Any]:
    """Export as `options` say; returns the report (also written to `<out>/export_report.json`).

    `load` returns a fresh (model, tokenizer) of the base; by default the base is loaded by
    `finetune.train.model.load_base` (tests pass a copy of an already loaded one)."""
    problems = options.problems()
    if problems:
        raise ExportError("\n".join(problems))
    from finetune.train.model import ModelLoadError, load_base, resolve_base

    try:
        source = resolve_base(options.base)
    except ModelLoadError as exc:
        raise ExportError(f"--base: {exc}") from exc
    base_gguf = Path(source.location) if source.kind == "gguf" else options.base_gguf
    try:
        adapter = read_peft_adapter(options.adapter)
    except AdapterError as exc:
        raise ExportError(str(exc)) from exc
    card = json.loads(options.run_card.read_text(encoding="utf-8")) if options.run_card else None
    identity = base_identity(source.kind, source.location)
    metadata = (
        from_run_card(card, options.route, identity) if card
        else ExportMetadata(route=options.route, base=identity, lora_rank=max(p.rank for p in adapter.pairs),
                            lora_alpha=adapter.alpha)
    )
    if metadata.prompt_format != PROMPT_FORMAT_VERSION:
        say(f"warning: the run was trained on prompt format {metadata.prompt_format!r}, the server speaks "
            f"{PROMPT_FORMAT_VERSION!r}; the files say {metadata.prompt_format!r} and the server will warn")
    load = load or (lambda: load_base(options.base, dtype=options.dtype))
    started = time.perf_counter()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{options.out.name}.tmp-", dir=options.out.parent))
    try:
        with _torch_threads(options.threads):
            report = _run(options, adapter, metadata, base_gguf, load, scratch, say)
        report["seconds"] = round(time.perf_counter() - started, 1)
        (scratch / REPORT_NAME).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        fsync_tree(scratch)
        replace_dir(scratch, options.out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if options.run_card is not None:
        _record_in_run_card(options.run_card, options.route, options.out, report)
    return report


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """`--threads` also bounds torch's reference pass: on a busy machine, fewer threads than cores avoids
    workers waiting on descheduled peers (measured here: 1 thread 1.2 s, 2 threads 23 s under load)."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run(options: ExportOptions, adapter: Any, metadata: ExportMetadata, base_gguf: Path | None, load: Loader,
         scratch: Path, say: Callable[[str], None]) -> dict[str, Any]:
    job = _Job(options, adapter, metadata, base_gguf, load, scratch, say)
    report = job.run_adapter() if options.route == "adapter" else job.run_merged()
    report.update({
        "route": options.route, "base": options.base, "adapter": str(options.adapter),
        "metadata": metadata.as_dict(),
        "files": {name: _describe(scratch / name) for name in sorted(os.listdir(scratch))},
    })
    return report


def _describe(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


@dataclass
class _Job:
    options: ExportOptions
    adapter: Any
    metadata: ExportMetadata
    base_gguf: Path | None
    load: Loader
    scratch: Path
    say: Callable[[str], None]

    # -- adapter route -------------------------------------------------------------------------------------
    def run_adapter(self) -> dict[str, Any]:
        from peft import PeftModel

        out = self.scratch / ADAPTER_FILE
        # Without the check only the base's config is needed, not its weights.
        model, tokenizer = self.load() if self.options.verify else (None, None)
        config = model.config if model is not None else _base_config(self.options.base)
        try:
            summary = write_adapter_gguf(self.adapter, config, out, self.metadata)
        except UnsupportedModelError as exc:
            raise ExportError(str(exc)) from exc
        if self.base_gguf is not None:
            try:
                check_against_base(out, self.base_gguf)
            except AdapterError as exc:
                raise ExportError(str(exc)) from exc
        self.say(f"adapter → {ADAPTER_FILE}: {summary['pairs']} LoRA pairs, alpha {summary['alpha']}")
        report: dict[str, Any] = {"adapter_gguf": summary, "served_base": str(self.base_gguf) if self.base_gguf else None}
        if not self.options.verify:
            return report
        ids = encode_prompts(tokenizer, self.options.prompts, _max_tokens(config))
        peft_model = PeftModel.from_pretrained(model, str(self.options.adapter), is_trainable=False)
        reference = torch_logits(peft_model, ids)
        with peft_model.disable_adapter():
            base_reference = torch_logits(peft_model, ids)
        # How far the adapter moves the base: a check that cannot tell them apart would be worthless.
        report["adapter_effect"] = compare_logits(base_reference, reference).as_dict(gate=False)
        base_model = peft_model.unload()
        checks: dict[str, Any] = {}
        float_base = self.base_gguf if self.base_gguf is not None and _is_float_gguf(self.base_gguf) else None
        with contextlib.ExitStack() as stack:
            if float_base is None:
                # A temporary 16-bit base that matches the torch weights, removed before publishing.
                float_base = self.scratch / "base-f16.check.gguf"
                stack.callback(float_base.unlink, missing_ok=True)
                write_model_gguf(base_model, float_base, replace(self.metadata, route="base"), outtype="f16",
                                 tokenizer=tokenizer, base_gguf=self.base_gguf, tokenizer_pre=self.options.tokenizer_pre)
            checks["f16_base"] = self._score(float_base, ids, reference, lora=out, gate=True)
            if self.base_gguf is not None and self.base_gguf != float_base:
                checks["served_base"] = self._score(self.base_gguf, ids, reference, lora=out)
                checks["served_base_without_adapter"] = self._score(self.base_gguf, ids, base_reference)
        report["logits"] = checks
        gate = checks["f16_base"]
        self.say(f"adapter check: top-1 agreement {gate['top1_agreement']:.2%}, max |Δlogit| {gate['max_abs_diff']:.3f}"
                 + (f"; on the served base {checks['served_base']['top1_agreement']:.2%} (base alone "
                    f"{checks['served_base_without_adapter']['top1_agreement']:.2%})" if "served_base" in checks else ""))
        if not gate["passed"]:
            raise ExportError(f"adapter check failed: {json.dumps(checks)}; export with --no-verify to skip the check")
        return report

    # -- merged route --------------------------------------------------------------------------------------
    def run_merged(self) -> dict[str, Any]:
        from peft import PeftModel

        model, tokenizer = self.load()
        merged = merge_adapter(PeftModel.from_pretrained(model, str(self.options.adapter), is_trainable=False))
        main_name = f"model-{self.options.outtype}.gguf"
        main = self.scratch / main_name
        try:
            summary = write_model_gguf(merged, main, self.metadata, outtype=self.options.outtype, tokenizer=tokenizer,
                                       base_gguf=self.base_gguf, tokenizer_pre=self.options.tokenizer_pre)
        except UnsupportedModelError as exc:
            raise ExportError(str(exc)) from exc
        self.say(f"merged → {main_name}: {summary['tensors']} tensors, tokenizer {summary['tokenizer_pre']}")
        report: dict[str, Any] = {"model_gguf": summary}
        ids = encode_prompts(tokenizer, self.options.prompts, _max_tokens(merged.config))
        window = min(HELDOUT_WINDOW, _max_tokens(merged.config))
        heldout = windows(tokenizer, self._heldout_texts(), window) if self.options.verify else []
        reference = None
        if self.options.verify:
            reference = torch_logits(merged, ids)
            # The gate compares like with like: torch on the weights as stored in the file. Rounding a float32
            # model to 16 bits moves near-tied logits by itself; that cost is reported beside it.
            if _round_matrices(merged, OUTTYPES[self.options.outtype].torch_dtype):
                stored_reference = torch_logits(merged, ids)
            else:
                stored_reference = reference
            check = self._score(main, ids, stored_reference, heldout=heldout, gate=True,
                                also=reference if stored_reference is not reference else None)
            with contextlib.closing(open_gguf(main, threads=self.options.threads)) as llm:
                mismatched = tokenization_mismatches(llm, tokenizer, [*self.options.prompts, *self._heldout_texts()])
            check["tokenization_mismatches"] = mismatched
            report["logits"] = {self.options.outtype: check}
            self.say(f"{main_name}: top-1 agreement {check['top1_agreement']:.2%}, max |Δlogit| "
                     f"{check['max_abs_diff']:.3f}, held-out perplexity {check['perplexity']:.3f}")
            # A tokenizer carried over from the base GGUF is the base's by definition; one we wrote must match.
            wrote_tokenizer = self.base_gguf is None
            if not check["passed"] or (mismatched and wrote_tokenizer):
                raise ExportError(f"{main_name} check failed: {json.dumps(check)}; export with --no-verify to skip it")
        quantized: dict[str, Any] = {}
        for quant in self.options.quants:
            target = self.scratch / f"model-{quant}.gguf"
            entry: dict[str, Any] = {"file": target.name, **quantize_gguf(main, target, quant, self.options.threads)}
            if self.options.verify:
                entry.update(self._score(target, ids, reference, heldout=heldout, generate=True))
                entry["perplexity_ratio"] = entry["perplexity"] / report["logits"][self.options.outtype]["perplexity"]
                if quant == "q4_k_m":
                    entry["perplexity_target"] = Q4_K_M_PERPLEXITY_TARGET
                    entry["meets_target"] = entry["perplexity_ratio"] <= Q4_K_M_PERPLEXITY_TARGET
                self.say(f"{target.name}: perplexity {entry['perplexity']:.3f} "
                         f"({entry['perplexity_ratio']:.3f}× {self.options.outtype}), "
                         f"top-1 agreement with torch {entry['top1_agreement']:.2%}")
            quantized[quant] = entry
        report["quantized"] = quantized
        return report

    # -- shared --------------------------------------------------------------------------------------------
    def _score(self, path: Path, ids: Sequence[Sequence[int]], reference: Any, *, lora: Path | None = None,
               heldout: Sequence[Sequence[int]] = (), generate: bool = False, gate: bool = False,
               also: Any = None) -> dict[str, Any]:
        """Logit agreement of `path` (+ `lora`) with `reference` (and with the full-precision `also`), and
        optionally held-out perplexity and a short greedy generation."""
        longest = max([len(x) for x in [*ids, *heldout]] + [64])
        with contextlib.closing(open_gguf(path, lora_path=lora, n_ctx=longest + 32, threads=self.options.threads)) as llm:
            logits = gguf_logits(llm, ids)
            result = compare_logits(reference, logits).as_dict(gate=gate)
            if also is not None:
                result["vs_full_precision"] = compare_logits(also, logits).as_dict(gate=False)
            if heldout:
                result["perplexity"] = perplexity(llm, heldout)
            if generate:
                llm.reset()
                completion = llm.create_completion(self.options.prompts[0][:120], max_tokens=16, temperature=0.0)
                result["generated"] = completion["choices"][0]["text"]
        return result

    def _heldout_texts(self) -> list[str]:
        if not self.options.heldout:
            return list(HELDOUT_ELIXIR)
        texts = []
        for path in self.options.heldout:
            files = sorted([*path.rglob("*.ex"), *path.rglob("*.exs")]) if path.is_dir() else [path]
            texts += [file.read_text(encoding="utf-8", errors="replace") for file in files]
        if not texts:
            raise ExportError(f"--heldout {', '.join(map(str, self.options.heldout))}: no .ex/.exs files")
        return texts


def _base_config(base: str) -> Any:
    from transformers import AutoConfig

    from finetune.train.model import resolve_base

    source = resolve_base(base)
    if source.kind == "gguf":
        path = Path(source.location)
        return AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    return AutoConfig.from_pretrained(source.location, local_files_only=source.kind == "dir")


def _round_matrices(model: Any, dtype: Any) -> int:
    """Round the model's matrices to `dtype` and back, in place (the file stores them so; vectors stay
    float32 there too); returns how many changed type on the way."""
    import torch

    rounded = 0
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2 and parameter.dtype != dtype:
                parameter.copy_(parameter.to(dtype).to(parameter.dtype))
                rounded += 1
    return rounded


def _max_tokens(config: Any) -> int:
    """Check sequences stay inside the model's trained context."""
    return min(512, int(getattr(config, "max_position_embeddings", 512) or 512))


def _is_float_gguf(path: Path) -> bool:
    field_ = open_gguf_reader(path).fields.get(gguf.Keys.General.FILE_TYPE)
    return field_ is not None and int(field_.contents()) in _FLOAT_FILE_TYPES


# -- atomic output ----------------------------------------------------------------------------------------
def _record_in_run_card(card_path: Path, route: str, out: Path, report: dict[str, Any]) -> None:
    """Add the export's numbers to the run card (atomically)."""
    card = json.loads(card_path.read_text(encoding="utf-8"))
    summary = {key: report[key] for key in ("logits", "quantized", "adapter_effect", "seconds") if key in report}
    card.setdefault("exports", {})[route] = {"out": str(out), "files": sorted(report["files"]), **copy.deepcopy(summary)}
    write_json(card_path, card, default=str)


__all__ = ["ROUTES", "ExportError", "ExportOptions", "VerificationError", "export", "options_from_run"]
