"""What an exported GGUF says about itself: prompt format, base model, stages, data and metrics.

The server reads `PROMPT_FORMAT_METADATA_KEY` from the model it loads and warns when it differs from the
format it speaks; the registry compares the base identity with the model being served. Every key lives under
the same namespace as the prompt-format key. Structured values (metrics) are JSON strings, since GGUF
arrays cannot nest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gguf

from lsp.prompt import PROMPT_FORMAT_METADATA_KEY, PROMPT_FORMAT_VERSION
from lsp.registry import sha256_file

NAMESPACE = PROMPT_FORMAT_METADATA_KEY.split(".", 1)[0]


@functools.lru_cache(maxsize=4)
def _cached_reader(path: str, _mtime_ns: int, _size: int) -> gguf.GGUFReader:
    return gguf.GGUFReader(path)


def open_gguf_reader(path: Path) -> gguf.GGUFReader:
    """A reader for `path`, shared while the file is unchanged: parsing a 50k-token vocabulary's metadata
    takes seconds, and one export reads the base several times (tokenizer, shapes, file type)."""
    stat = path.stat()
    return _cached_reader(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def key(name: str) -> str:
    return f"{NAMESPACE}.{name}"


@dataclass(frozen=True)
class BaseIdentity:
    """The base model an export belongs to; `digest_of` says what `sha256` covers."""

    name: str
    sha256: str
    digest_of: str  # "file" | "config+weights-manifest" | "hub-id"


def base_identity(source_kind: str, location: str) -> BaseIdentity:
    """A GGUF file is hashed whole (that is what a server loads); a Hugging Face folder by its config and
    its weight files' names, sizes and safetensors headers (hashing tens of GB would dominate an export)."""
    path = Path(location)
    if source_kind == "gguf":
        return BaseIdentity(path.name, sha256_file(path), "file")
    if source_kind == "dir":
        digest = hashlib.sha256()
        for name in ("config.json", "generation_config.json"):
            if (path / name).is_file():
                digest.update((path / name).read_bytes())
        for weights in sorted([*path.glob("*.safetensors"), *path.glob("*.bin")]):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
            if weights.suffix == ".safetensors":
                digest.update(_safetensors_header(weights))
        return BaseIdentity(path.name, digest.hexdigest(), "config+weights-manifest")
    return BaseIdentity(location, hashlib.sha256(location.encode()).hexdigest(), "hub-id")


def _safetensors_header(path: Path) -> bytes:
    with path.open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        return handle.read(min(size, 100 << 20))


@dataclass
class ExportMetadata:
    """Our keys in every exported file (adapter, F16 and quantized: llama_model_quantize keeps them)."""

    route: str
    base: BaseIdentity
    prompt_format: str = PROMPT_FORMAT_VERSION
    run_name: str = ""
    config_digest: str = ""
    stages: list[int] = field(default_factory=list)
    data_digests: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    lora_rank: int = 0
    lora_alpha: float = 0.0
    exported_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def write(self, writer: gguf.GGUFWriter) -> None:
        writer.add_string(PROMPT_FORMAT_METADATA_KEY, self.prompt_format)
        writer.add_string(key("export.route"), self.route)
        writer.add_string(key("export.time"), self.exported_at)
        writer.add_string(key("base.name"), self.base.name)
        writer.add_string(key("base.sha256"), self.base.sha256)
        writer.add_string(key("base.digest_of"), self.base.digest_of)
        writer.add_string(key("run.name"), self.run_name)
        writer.add_string(key("run.config_digest"), self.config_digest)
        if self.stages:
            writer.add_key_value(key("run.stages"), list(self.stages), gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32)
        writer.add_array(key("run.data_digests"), [d for d in self.data_digests if d])
        writer.add_string(key("run.metrics"), json.dumps(self.metrics, sort_keys=True) if self.metrics else "")
        if self.lora_rank:
            writer.add_uint32(key("lora.rank"), self.lora_rank)
            writer.add_float32(key("lora.alpha"), float(self.lora_alpha))
        writer.add_name(f"{self.base.name} + {self.run_name or 'adapter'} ({self.route})")
        writer.add_base_model_count(1)
        writer.add_base_model_name(0, self.base.name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_run_card(card: dict[str, Any], route: str, base: BaseIdentity) -> ExportMetadata:
    """Metadata from `runs/<name>/run_card.json` (written by `finetune train`)."""
    config = card.get("config", {})
    lora = config.get("lora", {})
    stages = card.get("stages", [])
    metrics = {
        f"stage{result['stage']}": {
            name: result[name]
            for name in ("steps", "train_loss", "heldout_loss", "heldout_perplexity", "tokens")
            if result.get(name) is not None
        }
        for result in stages
    }
    return ExportMetadata(
        route=route,
        base=base,
        prompt_format=card.get("prompt_format") or PROMPT_FORMAT_VERSION,
        run_name=str(config.get("name", "")),
        config_digest=str(card.get("config_digest", "")),
        stages=[int(result["stage"]) for result in stages],
        data_digests=[str(result.get("data_digest", "")) for result in stages],
        metrics=metrics,
        lora_rank=int(lora.get("rank", 0)),
        lora_alpha=float(lora.get("alpha", 0.0)),
    )


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """Our namespace's keys and general.* of a GGUF file, as Python values (for reports and tests)."""
    reader = gguf.GGUFReader(path)
    found: dict[str, Any] = {}
    for name, value in reader.fields.items():
        if name.startswith((f"{NAMESPACE}.", "general.", "adapter.")):
            found[name] = value.contents()
    return found
