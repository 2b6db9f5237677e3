"""A torch causal LM (a merged adapter, or a plain base) as a llama.cpp model GGUF in F16 or BF16.

Hyper-parameters come from the transformers config (with `attention.key_length/value_length` when a head is
not hidden/heads wide, as in Mistral Small / Devstral, and the RoPE base and scaling); tensors are renamed
and, for the llama architecture, Q/K rows permuted (`gguf_names`). Matrices are stored in the chosen 16-bit
type, vectors (norms, biases) in F32, as llama.cpp's converter does. Tensors are converted and written one
at a time after the header, so a large model needs no second copy in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

from finetune.export.gguf_names import TensorNames, UnsupportedModelError, arch_spec
from finetune.export.metadata import ExportMetadata, open_gguf_reader
from finetune.export.tokenizer import copy_tokenizer_fields, write_hf_tokenizer


@dataclass(frozen=True)
class OutType:
    torch_dtype: torch.dtype
    file_type: gguf.LlamaFileType
    ggml_type: gguf.GGMLQuantizationType


OUTTYPES: dict[str, OutType] = {
    "f16": OutType(torch.float16, gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "bf16": OutType(torch.bfloat16, gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16),
}


def merge_adapter(peft_model: Any) -> Any:
    """The base with the adapter's B·A·scale added into its weights (in the weights' own dtype)."""
    return peft_model.merge_and_unload()


def rope_settings(config: Any) -> tuple[float, dict[str, Any]]:
    """(RoPE base, scaling parameters) from a transformers 5 `rope_parameters` or an older `rope_theta` +
    `rope_scaling`."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    if not params:
        params = dict(getattr(config, "rope_scaling", None) or {})
        params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    theta = float(params.get("rope_theta", getattr(config, "rope_theta", None) or 10000.0))
    kind = params.get("rope_type", params.get("type", "default")) or "default"
    return theta, {**params, "rope_type": kind}


def add_hyperparameters(writer: gguf.GGUFWriter, config: Any) -> None:
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(getattr(config, "num_key_value_heads", None) or heads))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    theta, rope = rope_settings(config)
    writer.add_rope_freq_base(theta)
    kind = rope["rope_type"]
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        original = rope.get("original_max_position_embeddings")
        if original:
            writer.add_rope_scaling_orig_ctx_len(int(original))
    elif kind != "default":
        raise UnsupportedModelError(f"config rope_type {kind!r} is not supported by the GGUF writer (default, linear, yarn)")


def _model_tensors(model: torch.nn.Module, names: TensorNames) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(GGUF name, HF name, tensor) for every weight llama.cpp needs; a tied lm_head is left out."""
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if "rotary_emb" in hf_name or (tied and hf_name == "lm_head.weight"):
            continue
        yield names.gguf_name(hf_name), hf_name, tensor


def _stored(tensor: torch.Tensor, hf_name: str, names: TensorNames, outtype: OutType) -> np.ndarray:
    rows = names.to_gguf_layout(hf_name, tensor.detach())
    if rows.ndim < 2:
        return rows.to(torch.float32).contiguous().numpy()
    converted = rows.to(outtype.torch_dtype).contiguous()
    if outtype.torch_dtype == torch.bfloat16:  # numpy has no bfloat16: store the raw bytes
        return converted.view(torch.int16).numpy().view(np.uint8)
    return converted.numpy()


def write_model_gguf(
    model: torch.nn.Module,
    out_path: Path,
    metadata: ExportMetadata,
    *,
    outtype: str = "f16",
    tokenizer: Any = None,
    base_gguf: Path | None = None,
    tokenizer_pre: str | None = None,
) -> dict[str, Any]:
    """Write `model` as a GGUF; the tokenizer comes from `base_gguf` when given, else from `tokenizer`."""
    if outtype not in OUTTYPES:
        raise UnsupportedModelError(f"outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    kind = OUTTYPES[outtype]
    config = model.config
    spec = arch_spec(config)
    names = TensorNames(spec, config)
    writer = gguf.GGUFWriter(out_path, spec.gguf_arch)
    writer.add_type(gguf.GGUFType.MODEL)
    add_hyperparameters(writer, config)
    writer.add_file_type(int(kind.file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if base_gguf is not None:
        pre = "carried over from the base GGUF"
        copy_tokenizer_fields(open_gguf_reader(base_gguf), writer)
    elif tokenizer is not None:
        pre = write_hf_tokenizer(tokenizer, int(config.vocab_size), writer, tokenizer_pre)
    else:
        raise UnsupportedModelError("a model GGUF needs a tokenizer: give the tokenizer or a base GGUF")
    metadata.write(writer)
    tensors = list(_model_tensors(model, names))
    for name, _hf_name, tensor in tensors:
        matrix = tensor.ndim >= 2
        itemsize = 2 if matrix else 4
        shape = list(tensor.shape)
        if matrix and kind.torch_dtype == torch.bfloat16:
            writer.add_tensor_info(name, [*shape[:-1], shape[-1] * 2], np.dtype(np.uint8), tensor.numel() * 2,
                                   raw_dtype=kind.ggml_type)
        else:
            dtype = np.dtype(np.float16) if matrix else np.dtype(np.float32)
            writer.add_tensor_info(name, shape, dtype, tensor.numel() * itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _name, hf_name, tensor in tensors:
        writer.write_tensor_data(_stored(tensor, hf_name, names, kind))
    writer.close()
    return {"architecture": spec.gguf_arch, "outtype": outtype, "tensors": len(tensors), "tokenizer_pre": pre}
