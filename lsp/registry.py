"""The model registry's on-disk format, read side: what the server needs to find the active version.

`finetune registry` (finetune/registry.py) writes this layout; the server only reads it, so the format
lives here (lsp never imports finetune). Layout under the registry root:

    registry.json                 {"format": 1}
    versions/<id>/manifest.json   one version: its GGUF files (with hashes), base, prompt format, metrics
    versions/<id>/<files>         adapter.gguf or model*.gguf, run_card.json, eval.json
    channels/<name>.json          {"version": id, "history": [older ids, oldest first], "changed_at": …}
    .lock                         writers hold an exclusive flock on it

A version is one served GGUF; its id is the first 16 hex digits of that file's sha256 (content-addressed:
the same file added twice is one version). Every file is written to a temporary name, fsynced and renamed,
so a reader sees the old state or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRY_FORMAT = 1
REGISTRY_FILE = "registry.json"
VERSIONS_DIR = "versions"
CHANNELS_DIR = "channels"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
DEFAULT_CHANNEL = "stable"
CHANNEL_NAME = r"[a-z0-9][a-z0-9_-]*"  # a channel is a file name under channels/
_HASH_CHUNK = 1 << 20
KINDS = ("adapter", "model")  # a LoRA adapter served on the base GGUF | a whole (merged) model


class RegistryError(Exception):
    """A registry that cannot be read as asked; the message names the file."""


@dataclass(frozen=True)
class VersionManifest:
    id: str
    kind: str  # one of KINDS
    entry: str  # the GGUF the server loads, relative to the version folder
    files: dict[str, dict[str, Any]]  # file name -> {"sha256": …, "bytes": …}
    prompt_format: str
    base_name: str
    base_sha256: str  # for an adapter: the sha256 of the base GGUF it was exported against
    created_at: str = ""
    source: str = ""  # where it was added from (an export folder)
    run_name: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: Path) -> VersionManifest:
        try:
            manifest = cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except TypeError as exc:
            raise RegistryError(f"{where}: not a version manifest ({exc})") from exc
        if manifest.kind not in KINDS:
            raise RegistryError(f"{where}: kind {manifest.kind!r} is not one of {', '.join(KINDS)}")
        return manifest

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ChannelState:
    channel: str
    version: str | None
    history: tuple[str, ...] = ()  # previously active versions, oldest first; rollback takes the last
    changed_at: str = ""


def version_dir(root: Path, version: str) -> Path:
    return root / VERSIONS_DIR / version


def channel_file(root: Path, channel: str) -> Path:
    return root / CHANNELS_DIR / f"{channel}.json"


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a JSON object")
    return data


def read_manifest(root: Path, version: str) -> VersionManifest:
    path = version_dir(root, version) / MANIFEST_FILE
    try:
        return VersionManifest.from_json(read_json_object(path), path)
    except FileNotFoundError as exc:
        raise RegistryError(f"no version {version!r} in {root} ({path} is missing)") from exc


def version_names(root: Path, prefix: str = "") -> list[str]:
    """The version folders that hold a manifest, sorted; writers build a version in a dot-named folder
    and rename it when complete, so those are skipped."""
    versions = root / VERSIONS_DIR
    if not versions.is_dir():
        return []
    return sorted(
        entry.name
        for entry in versions.iterdir()
        if entry.name.startswith(prefix) and not entry.name.startswith(".") and (entry / MANIFEST_FILE).is_file()
    )


def list_versions(root: Path) -> list[VersionManifest]:
    """Every version, oldest first (creation time, then id)."""
    manifests = [read_manifest(root, name) for name in version_names(root)]
    return sorted(manifests, key=lambda manifest: (manifest.created_at, manifest.id))


def read_channel(root: Path, channel: str) -> ChannelState | None:
    """The channel's state, or None when nothing was ever promoted to it."""
    path = channel_file(root, channel)
    try:
        data = read_json_object(path)
    except FileNotFoundError:
        return None
    version = data.get("version")
    history = data.get("history", [])
    if not (version is None or isinstance(version, str)) or not isinstance(history, list):
        raise RegistryError(f"{path}: 'version' must be a string or null and 'history' a list")
    return ChannelState(channel, version, tuple(str(v) for v in history), str(data.get("changed_at", "")))


def channel_signature(root: Path, channel: str) -> tuple[int, int, int] | None:
    """Changes whenever the channel file is replaced (a rename gives a new inode): cheap to poll."""
    try:
        stat = os.stat(channel_file(root, channel))
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def entry_path(root: Path, manifest: VersionManifest) -> Path:
    return version_dir(root, manifest.id) / manifest.entry


def resolve_version(root: Path, version: str) -> VersionManifest:
    """A full id or a unique prefix of one (as users type them from `finetune registry list`)."""
    versions = root / VERSIONS_DIR
    if (versions / version / MANIFEST_FILE).is_file():
        return read_manifest(root, version)
    matches = (
        sorted(p.name for p in versions.glob(f"{version}*") if (p / MANIFEST_FILE).is_file())
        if version
        else []
    )
    if len(matches) == 1:
        return read_manifest(root, matches[0])
    if not matches:
        raise RegistryError(f"no version {version!r} in {root}")
    raise RegistryError(f"version prefix {version!r} is ambiguous in {root}: {', '.join(matches)}")


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes: version ids, base identities and export reports all use it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
