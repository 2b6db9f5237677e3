"""The tokenizer part of a model GGUF: carried over from a base GGUF, or written from a Hugging Face tokenizer.

A base that came from a GGUF keeps its `tokenizer.*` metadata byte for byte (values and types), so the
exported model tokenizes exactly as the base did. From a Hugging Face fast tokenizer we write llama.cpp's
`gpt2` (byte-level BPE) vocabulary: that covers SmolLM2, Qwen2.5 and Mistral's Tekken (Devstral). llama.cpp
picks its pre-tokenizer regex by the name in `tokenizer.ggml.pre`; it is recognised from the tokenizer's own
pre-tokenizer settings, or given, and the export's verification re-tokenizes text with llama.cpp to catch a
wrong one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import gguf

from finetune.export.gguf_names import UnsupportedModelError

_TOKENIZER_PREFIX = "tokenizer."
# Distinguishing pieces of the split regexes of known tokenizer families (checked in this order).
_TEKKEN_PIECE = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTIONS_PIECE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"


def copy_tokenizer_fields(base: gguf.GGUFReader, writer: gguf.GGUFWriter) -> int:
    """Copy every `tokenizer.*` key of `base` unchanged; returns how many."""
    copied = 0
    for name, field in base.fields.items():
        if not name.startswith(_TOKENIZER_PREFIX):
            continue
        main_type = field.types[0]
        if main_type == gguf.GGUFValueType.ARRAY:
            sub_type = field.types[-1]
            if sub_type == gguf.GGUFValueType.STRING:
                # Raw bytes: a token need not be valid UTF-8 on its own.
                values: list[Any] = [bytes(field.parts[index]) for index in field.data]
            else:
                values = field.contents()
            writer.add_key_value(name, values, main_type, sub_type)
        elif main_type == gguf.GGUFValueType.STRING:
            writer.add_key_value(name, bytes(field.parts[-1]), main_type)
        else:
            writer.add_key_value(name, field.contents(), main_type)
        copied += 1
    return copied


def detect_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str | None:
    """llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json, or None when not recognised."""
    parts = _pre_tokenizer_parts(tokenizer_json.get("pre_tokenizer") or {})
    regexes = [part.get("pattern", {}).get("Regex", "") for part in parts if part.get("type") == "Split"]
    digits_single = any(part.get("type") == "Digits" and part.get("individual_digits") for part in parts)
    byte_level_regex = any(part.get("type") == "ByteLevel" and part.get("use_regex", True) for part in parts)
    joined = "|".join(regexes)
    if _TEKKEN_PIECE in joined:
        return "tekken"
    if _CONTRACTIONS_PIECE in joined:
        if r"\p{N}{1,3}" in joined:
            return "llama-bpe"
        if r"\p{N}|" in joined or joined.endswith(r"\p{N}"):
            return "qwen2"
        return None
    if not regexes and byte_level_regex:
        return "smollm" if digits_single else "gpt-2"
    return None


def _pre_tokenizer_parts(node: dict[str, Any]) -> list[dict[str, Any]]:
    if node.get("type") == "Sequence":
        return [part for child in node.get("pretokenizers", []) for part in _pre_tokenizer_parts(child)]
    return [node] if node else []


def write_hf_tokenizer(tokenizer: Any, vocab_size: int, writer: gguf.GGUFWriter, pre: str | None = None) -> str:
    """Write a Hugging Face fast tokenizer as llama.cpp's byte-level BPE vocabulary; returns the pre name.

    The vocabulary is padded to the model's `vocab_size` (embedding rows without a token become unused
    placeholders), added special tokens become control tokens, and merges, special ids, add-BOS/EOS flags and
    the chat template come from the tokenizer's own files through gguf's SpecialVocab.
    """
    with tempfile.TemporaryDirectory(prefix="export-tokenizer-") as scratch:
        tokenizer.save_pretrained(scratch)
        tokenizer_json_path = Path(scratch) / "tokenizer.json"
        if not tokenizer_json_path.is_file():
            raise UnsupportedModelError("the tokenizer has no tokenizer.json (a slow tokenizer): export from a GGUF base")
        tokenizer_json = json.loads(tokenizer_json_path.read_text(encoding="utf-8"))
        model = tokenizer_json.get("model", {})
        decoder = (tokenizer_json.get("decoder") or {}).get("type")
        if model.get("type") != "BPE" or model.get("byte_fallback") or decoder != "ByteLevel":
            raise UnsupportedModelError(
                f"tokenizer {model.get('type')!r} with decoder {decoder!r} is not byte-level BPE; export from a "
                "GGUF base of this model so its tokenizer is carried over"
            )
        name = pre or detect_pre_tokenizer(tokenizer_json)
        if name is None:
            raise UnsupportedModelError(
                "unrecognised pre-tokenizer in tokenizer.json; pass --tokenizer-pre with llama.cpp's name for it "
                "(e.g. llama-bpe, qwen2, tekken, smollm, gpt-2)"
            )
        tokens, types = _vocabulary(tokenizer_json, vocab_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(name)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        gguf.SpecialVocab(scratch, load_merges=True, n_vocab=vocab_size).add_to_gguf(writer, quiet=True)
    return name


def _vocabulary(tokenizer_json: dict[str, Any], vocab_size: int) -> tuple[list[str], list[int]]:
    by_id: dict[int, str] = {int(index): text for text, index in tokenizer_json["model"]["vocab"].items()}
    kinds: dict[int, gguf.TokenType] = {}
    for added in tokenizer_json.get("added_tokens", []):
        by_id[int(added["id"])] = added["content"]
        kinds[int(added["id"])] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    if max(by_id) >= vocab_size:
        raise UnsupportedModelError(f"the tokenizer has token id {max(by_id)} but the model only {vocab_size} embeddings")
    tokens, types = [], []
    for index in range(vocab_size):
        if index in by_id:
            tokens.append(by_id[index])
            types.append(int(kinds.get(index, gguf.TokenType.NORMAL)))
        else:
            tokens.append(f"[PAD{index}]")
            types.append(int(gguf.TokenType.UNUSED))
    return tokens, types
