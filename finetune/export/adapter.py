"""A PEFT LoRA adapter as a llama.cpp GGUF LoRA adapter: `Llama(model_path=base.gguf, lora_path=adapter.gguf)`.

llama.cpp's format: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha` (float32), and per
adapted weight `<gguf name>.lora_a` (r × in) and `<gguf name>.lora_b` (out × r), lora_b in the base's
row layout (see `gguf_names`). llama.cpp scales each pair by alpha / r with one alpha for the whole file, so
a per-module alpha or rank (PEFT's alpha_pattern / rank_pattern) and rsLoRA's alpha / √r are folded into
lora_b, which leaves the product exactly what PEFT computes. Only low-rank deltas can be carried: trained
biases, whole modules (`modules_to_save`), embedding LoRA and DoRA need the merged route.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import torch

from finetune.export.gguf_names import TensorNames, arch_spec
from finetune.export.metadata import ExportMetadata, open_gguf_reader

_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>A|B)(?:\.[^.]+)?\.weight$")


class AdapterError(ValueError):
    """An adapter folder that cannot be read or exported; the message names the file or tensor."""


@dataclass(frozen=True)
class LoraPair:
    module: str  # e.g. model.layers.0.self_attn.q_proj
    a: torch.Tensor  # r × in
    b: torch.Tensor  # out × r
    scale: float  # what PEFT multiplies B @ A by

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class PeftAdapter:
    directory: Path
    config: dict[str, Any]
    pairs: list[LoraPair]

    @property
    def alpha(self) -> float:
        return float(self.config.get("lora_alpha", self.config.get("r", 8)))


def read_peft_adapter(directory: Path) -> PeftAdapter:
    """The LoRA pairs of a PEFT adapter folder, each with the scale PEFT applies to it."""
    config_path = directory / "adapter_config.json"
    if not config_path.is_file():
        raise AdapterError(f"{config_path}: missing (not a PEFT adapter folder)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterError(f"{config_path}: peft_type {config.get('peft_type')!r} is not LORA")
    if config.get("use_dora"):
        raise AdapterError(f"{config_path}: DoRA adapters cannot be written as a GGUF LoRA; use --route merged")
    tensors = _read_tensors(directory)
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        bare = name.removeprefix(_PEFT_PREFIX)
        match = _LORA_KEY.match(bare)
        if match is None:
            raise AdapterError(
                f"{directory}: tensor {name!r} is not a LoRA A/B matrix (trained biases, modules_to_save, "
                "DoRA or embedding LoRA); a GGUF adapter carries only low-rank deltas: use --route merged"
            )
        pairs.setdefault(match["module"], {})[match["which"]] = tensor
    result = []
    for module, both in sorted(pairs.items(), key=lambda item: _natural_key(item[0])):
        if set(both) != {"A", "B"}:
            raise AdapterError(f"{directory}: {module} has lora_{''.join(both)} but not both A and B")
        rank = int(both["A"].shape[0])
        result.append(LoraPair(module, both["A"], both["B"], _peft_scale(config, module, rank)))
    if not result:
        raise AdapterError(f"{directory}: the adapter has no LoRA tensors")
    return PeftAdapter(directory, config, result)


def _read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    safetensors_path = directory / "adapter_model.safetensors"
    if safetensors_path.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path))
    bin_path = directory / "adapter_model.bin"
    if bin_path.is_file():
        return torch.load(bin_path, map_location="cpu", weights_only=True)
    raise AdapterError(f"{directory}: no adapter_model.safetensors (or adapter_model.bin)")


def _natural_key(module: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in module.split(".")]


def _pattern_value(patterns: dict[str, Any], module: str) -> Any:
    # PEFT matches a pattern against the module name's end or as a regular expression over the whole name.
    for pattern, value in (patterns or {}).items():
        if module == pattern or module.endswith(f".{pattern}") or re.fullmatch(pattern, module):
            return value
    return None


def _peft_scale(config: dict[str, Any], module: str, rank: int) -> float:
    alpha = _pattern_value(config.get("alpha_pattern", {}), module)
    alpha = float(config.get("lora_alpha", rank) if alpha is None else alpha)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def write_adapter_gguf(adapter: PeftAdapter, base_config: Any, out_path: Path, metadata: ExportMetadata) -> dict[str, Any]:
    """Write the GGUF adapter for a base of `base_config` (a transformers config); returns a summary."""
    spec = arch_spec(base_config)
    names = TensorNames(spec, base_config)
    alpha = adapter.alpha
    writer = gguf.GGUFWriter(out_path, spec.gguf_arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    metadata.write(writer)
    folded = 0
    for pair in adapter.pairs:
        weight_name = f"{pair.module}.weight"
        base_name = names.gguf_name(weight_name)
        lora_b = names.to_gguf_layout(weight_name, pair.b.float())
        # llama.cpp applies alpha / rank; anything else PEFT does is folded into B.
        factor = pair.scale * pair.rank / alpha
        if not math.isclose(factor, 1.0, rel_tol=0, abs_tol=1e-12):
            lora_b = lora_b * factor
            folded += 1
        writer.add_tensor(f"{base_name}.lora_a", pair.a.float().contiguous().numpy())
        writer.add_tensor(f"{base_name}.lora_b", lora_b.contiguous().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"architecture": spec.gguf_arch, "pairs": len(adapter.pairs), "alpha": alpha,
            "ranks": sorted({pair.rank for pair in adapter.pairs}), "scale_folded_into_lora_b": folded}


def check_against_base(adapter_path: Path, base_gguf: Path) -> None:
    """Refuse an adapter whose architecture, tensor names or shapes do not fit `base_gguf`: llama.cpp would
    fail to load it with a less specific message, or (shape-compatible but wrong model) silently misbehave."""
    adapter = gguf.GGUFReader(adapter_path)
    base = open_gguf_reader(base_gguf)
    adapter_arch = adapter.fields[gguf.Keys.General.ARCHITECTURE].contents()
    base_arch = base.fields[gguf.Keys.General.ARCHITECTURE].contents()
    if adapter_arch != base_arch:
        raise AdapterError(f"{base_gguf}: architecture {base_arch!r}, but the adapter is for {adapter_arch!r}")
    base_shapes = {tensor.name: [int(n) for n in tensor.shape] for tensor in base.tensors}
    for tensor in adapter.tensors:
        target, _, which = tensor.name.rpartition(".")
        if target not in base_shapes:
            raise AdapterError(f"{base_gguf}: has no tensor {target!r} that the adapter adapts")
        # GGUF shapes are [columns, rows]: lora_a is [in, r] and lora_b is [r, out] against the base's [in, out].
        in_features, out_features = base_shapes[target][0], base_shapes[target][1]
        shape = [int(n) for n in tensor.shape]
        expected = in_features if which == "lora_a" else out_features
        got = shape[0] if which == "lora_a" else shape[1]
        if got != expected:
            raise AdapterError(f"{base_gguf}: {target} is {in_features}→{out_features}, the adapter's {which} has shape {shape}")
