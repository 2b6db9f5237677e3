"""Which Hugging Face architectures we export, their GGUF tensor names, and the Q/K head permutation.

llama.cpp's `llama` architecture applies RoPE to interleaved pairs of each head's dimensions, while Hugging
Face's Llama/Mistral weights are laid out for "rotate half" (the first half of a head pairs with the second).
Converting a model therefore permutes the output rows of q_proj and k_proj (weights and biases), and a LoRA
adapter's lora_B (its output rows) the same way; lora_A is untouched. Qwen2 runs NEOX-style RoPE in
llama.cpp, which is the rotate-half layout already, so nothing is permuted there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gguf
import torch


class UnsupportedModelError(ValueError):
    """A model, tensor or setting the exporter cannot write; the message names it."""


@dataclass(frozen=True)
class ArchSpec:
    hf_model_type: str
    gguf_arch: str  # general.architecture
    model_arch: gguf.MODEL_ARCH
    permute_qk: bool


# Mistral in Hugging Face format is the llama architecture for llama.cpp (as in its own converter).
ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", "llama", gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "mistral": ArchSpec("mistral", "llama", gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "qwen2": ArchSpec("qwen2", "qwen2", gguf.MODEL_ARCH.QWEN2, permute_qk=False),
}


def arch_spec(config: Any) -> ArchSpec:
    """The spec for a transformers config (or a plain dict of one); an unsupported one is named."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    spec = ARCHITECTURES.get(str(model_type))
    if spec is None:
        architectures = config.get("architectures") if isinstance(config, dict) else getattr(config, "architectures", None)
        raise UnsupportedModelError(
            f"unsupported architecture {model_type!r} ({', '.join(architectures or []) or 'no architectures listed'}); "
            f"export supports: {', '.join(sorted(ARCHITECTURES))}"
        )
    return spec


def permute_rows_for_rope(rows: torch.Tensor, n_head: int) -> torch.Tensor:
    """Reorder each head's output rows from rotate-half pairs (i, i + d/2) to interleaved (2i, 2i + 1)."""
    out_features = rows.shape[0]
    if out_features % (2 * n_head):
        raise UnsupportedModelError(f"cannot permute {out_features} rows into {n_head} heads of even size")
    half = out_features // n_head // 2
    return rows.reshape(n_head, 2, half, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


class TensorNames:
    """Hugging Face module/tensor names → GGUF names, and the row permutation each needs."""

    def __init__(self, spec: ArchSpec, config: Any) -> None:
        self.spec = spec
        self.n_head = int(config.num_attention_heads)
        self.n_head_kv = int(getattr(config, "num_key_value_heads", None) or self.n_head)
        self._map = gguf.get_tensor_name_map(spec.model_arch, int(config.num_hidden_layers))

    def gguf_name(self, hf_name: str) -> str:
        """`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`; unknown names are an error."""
        name = self._map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UnsupportedModelError(f"tensor {hf_name!r} has no GGUF name for the {self.spec.gguf_arch} architecture")
        return name

    def rope_heads(self, hf_name: str) -> int | None:
        """The head count to permute this tensor's output rows by, or None when it is left as it is."""
        if not self.spec.permute_qk:
            return None
        module = hf_name.rsplit(".", 1)[0] if hf_name.endswith((".weight", ".bias")) else hf_name
        if module.endswith("q_proj"):
            return self.n_head
        if module.endswith("k_proj"):
            return self.n_head_kv
        return None

    def to_gguf_layout(self, hf_name: str, rows: torch.Tensor) -> torch.Tensor:
        """A weight, bias or lora_B of `hf_name` (output rows first) in llama.cpp's layout."""
        heads = self.rope_heads(hf_name)
        return rows if heads is None else permute_rows_for_rope(rows, heads)
