"""The Unsloth backend: the base and its LoRA adapter loaded through Unsloth's `FastLanguageModel`.

Only loading differs from the hf backend. `FastLanguageModel.from_pretrained` loads the base (NF4 when
asked) and `get_peft_model(..., use_gradient_checkpointing="unsloth")` attaches an ordinary PEFT LoRA
adapter; the result is a `PeftModel` that the shared training loop, EWC, SSR and checkpoints use as they
use the hf backend's, and adapters are saved as plain PEFT folders that either backend loads.

On a GPU Unsloth patches the model with its fused kernels. Without one, Unsloth 2026.10 falls back to its
CPU backend (stock transformers + PEFT with Unsloth's dtype policy, bitsandbytes CPU 4-bit, gradient
checkpointing and a chunked cross-entropy loss), which is how CI runs this path.

Unsloth loads Hugging Face folders and hub ids, not GGUF files: a GGUF base (and "embedded") is first
dequantised by the hf backend's loader and written once as a plain Hugging Face folder in `cache_dir`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from finetune.train.model import (
    LoraOptions,
    ModelLoadError,
    _check_targets,
    load_base,
    parse_dtype,
    resolve_base,
)

GRADIENT_CHECKPOINTING = "unsloth"
NOT_INSTALLED = "Unsloth is not installed (make setup installs it; see docs/training.md)"


def unsloth_installed() -> bool:
    """Whether the package is there, without importing it (the import patches transformers and TRL)."""
    return importlib.util.find_spec("unsloth") is not None


def hf_base_location(base: str, cache_dir: Path, dtype: torch.dtype | str | None = "auto") -> tuple[str, bool]:
    """(what `FastLanguageModel.from_pretrained` loads, whether it is local) for a configured base.

    Hub ids and Hugging Face folders are used as they are. A GGUF file is converted once into
    `cache_dir/<name>-<key>`, the key naming the file (path, size, modification time) and the dtype, so a
    changed GGUF or dtype gets a new folder and a repeated run reuses the old one.
    """
    source = resolve_base(base)
    if source.kind != "gguf":
        return source.location, source.kind == "dir"
    gguf = Path(source.location).resolve()
    stat = gguf.stat()
    identity = f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}|{parse_dtype(dtype)}"
    target = cache_dir / f"{gguf.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return str(target), True
    cache_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_base(str(gguf), dtype=dtype, device="cpu", quantize_4bit=False)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache_dir))
    try:
        model.save_pretrained(str(scratch))
        tokenizer.save_pretrained(str(scratch))
        del model
        # The folder appears complete or not at all; a rank that lost the race uses the winner's.
        scratch.rename(target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return str(target), True


def fast_language_model() -> Any:
    """Unsloth's `FastLanguageModel` (importing Unsloth selects its GPU or CPU backend)."""
    if not unsloth_installed():
        raise ModelLoadError(NOT_INSTALLED)
    from unsloth import FastLanguageModel

    return FastLanguageModel


def unsloth_device() -> str:
    """The torch device type Unsloth trains on here: "cpu" on its CPU fallback."""
    import unsloth

    return str(getattr(unsloth, "DEVICE_TYPE_TORCH", getattr(unsloth, "DEVICE_TYPE", "cuda")))


def load_unsloth(
    base: str,
    *,
    dtype: torch.dtype | str | None,
    device: str,
    quantize_4bit: bool,
    max_seq_len: int,
    options: LoraOptions,
    cache_dir: Path,
    adapter: Path | None = None,
) -> tuple[Any, Any]:
    """(PEFT model, tokenizer): the base through `FastLanguageModel`, LoRA through its `get_peft_model`.

    With `adapter` (a checkpoint's adapter folder on --resume) the fresh adapter takes the saved weights,
    so a resumed run goes through exactly the same Unsloth setup as a new one. `dtype` "auto" lets
    Unsloth choose (bfloat16 where the hardware has it).
    """
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    fast = fast_language_model()
    found = unsloth_device()
    if torch.device(device).type != found:
        raise ModelLoadError(
            f"Unsloth trains on {found} on this machine, but the run asks for device {device!r}: "
            f"set device = \"auto\" or \"{found}\", or use backend = \"hf\""
        )
    location, local = hf_base_location(base, cache_dir, dtype)
    wanted = parse_dtype(dtype)
    checkpointing: str | bool = GRADIENT_CHECKPOINTING if options.gradient_checkpointing else False
    model, tokenizer = fast.from_pretrained(
        model_name=location,
        max_seq_length=max_seq_len,
        dtype=None if wanted == "auto" else wanted,
        load_in_4bit=quantize_4bit,
        # One device per process, as in the hf backend: DDP needs each rank to own its whole model.
        device_map={"": device},
        local_files_only=local,
        use_gradient_checkpointing=checkpointing,
    )
    _check_targets(model, options.target_modules)
    seed = {} if options.seed is None else {"random_state": options.seed}
    model = fast.get_peft_model(
        model,
        r=options.r,
        target_modules=list(options.target_modules),
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        bias=options.bias,
        use_gradient_checkpointing=checkpointing,
        use_rslora=options.use_rslora,
        max_seq_length=max_seq_len,
        **seed,
    )
    _enable_chunked_training_loss(model)
    if adapter is not None:
        load_adapter_weights(model, adapter, options)
    return model, tokenizer


def load_adapter_weights(model: Any, directory: Path, options: LoraOptions) -> None:
    """Copy a saved PEFT adapter's tensors into `model`'s adapter of the same shape."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    config_path, weights_path = directory / "adapter_config.json", directory / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelLoadError(f"no adapter in {directory} (adapter_config.json or adapter_model.safetensors missing)")
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    shape = (saved.get("r"), saved.get("lora_alpha"), sorted(saved.get("target_modules") or []))
    expected = (options.r, options.alpha, sorted(options.target_modules))
    if shape != expected:
        raise ModelLoadError(
            f"adapter in {directory} has rank/alpha/targets {shape}, the run configures {expected}"
        )
    weights = load_file(str(weights_path))
    result = set_peft_model_state_dict(model, weights)
    missing = [key for key in result.missing_keys if "lora_" in key]
    if missing or result.unexpected_keys:
        raise ModelLoadError(
            f"adapter in {directory} does not fit the model: {len(missing)} LoRA tensors missing, "
            f"{len(result.unexpected_keys)} unexpected"
        )


def _owner_of(model: Any, attribute: str) -> Any:
    """The module in the PEFT wrapper chain that holds `attribute` itself (PEFT forwards reads inward)."""
    inner = getattr(model, "base_model", None)
    for candidate in (model, inner, getattr(inner, "model", None)):
        if candidate is not None and attribute in vars(candidate):
            return candidate
    return None


def _enable_chunked_training_loss(model: Any) -> bool:
    """On the CPU fallback, compute training losses with Unsloth's chunked cross-entropy.

    Unsloth installs it on the model but its SFTTrainer switches it on only around a training step; this
    loop is the trainer, so it stays on. It applies only to forwards with labels and gradients (training
    and the EWC Fisher); evaluation and generation run the stock forward with its logits.
    """
    owner = _owner_of(model, "_unsloth_cpu_chunked_ce")
    if owner is None or not owner._unsloth_cpu_chunked_ce:
        return False
    owner._unsloth_cpu_chunked_ce_active = True
    return True


def unsloth_summary(model: Any) -> dict[str, Any]:
    """What Unsloth did to `model`, read back from the markers it leaves (for the run card and tests)."""
    import unsloth

    checkpointing = None
    for marker in ("_unsloth_gradient_checkpointing", "_unsloth_cpu_gradient_checkpointing"):
        owner = _owner_of(model, marker)
        if owner is not None:
            checkpointing = getattr(owner, marker)
            break
    chunked = _owner_of(model, "_unsloth_cpu_chunked_ce_active")
    return {
        "version": unsloth.__version__,
        "device": unsloth_device(),
        "gradient_checkpointing": checkpointing,
        "chunked_cross_entropy": bool(chunked is not None and chunked._unsloth_cpu_chunked_ce_active),
    }
