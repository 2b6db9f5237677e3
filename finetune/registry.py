"""`finetune registry`: the write side of the model registry that the running server hot-swaps from.

The layout and the read side live in `lsp/registry.py` (the server reads them; lsp never imports finetune).
This module adds versions, moves channels and removes versions, keeping three guarantees:

- every change becomes visible through one rename (a version folder built under a dot-temp name, a channel
  file written to a temp file, fsynced, `os.replace`d), so a reader — and a crash at any point — sees the
  old state or the new one, never a half-written version or channel;
- writers hold an exclusive `flock` on `<root>/.lock` (with the holder's pid in it), so concurrent writers
  serialise instead of losing updates; readers take no lock;
- dot-temp leftovers of a crashed writer are removed by the next writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.atomic import fsync_dir, fsync_tree, write_json
from lsp.prompt import PROMPT_FORMAT_METADATA_KEY, PROMPT_FORMAT_VERSION
from lsp.registry import (
    CHANNEL_NAME,
    CHANNELS_DIR,
    DEFAULT_CHANNEL,
    LOCK_FILE,
    MANIFEST_FILE,
    REGISTRY_FILE,
    REGISTRY_FORMAT,
    VERSIONS_DIR,
    ChannelState,
    RegistryError,
    VersionManifest,
    channel_file,
    list_versions,
    read_channel,
    read_json_object,
    read_manifest,
    resolve_version,
    sha256_file,
    version_dir,
    version_names,
)

__all__ = [
    "DEFAULT_ROOT",
    "ROOT_ENV",
    "GgufFacts",
    "Registry",
    "RegistryError",
    "choose_entry",
    "facts_from_metadata",
]

ROOT_ENV = "DEVSTRAL_REGISTRY"
DEFAULT_ROOT = Path("~/.local/share/devstral-elixir/registry")
ID_LENGTH = 16
VERSION_PREFIX = re.compile(rf"[0-9a-f]{{1,{ID_LENGTH}}}")
# The names `finetune export` writes (finetune/export/pipeline.py; not imported: it pulls in torch helpers).
ADAPTER_FILE = "adapter.gguf"
MODEL_FILES = ("model-q4_k_m.gguf", "model-q8_0.gguf", "model-f16.gguf", "model-bf16.gguf")  # smallest first
REPORT_FILE = "export_report.json"
SIDE_FILES = ("run_card.json", REPORT_FILE, "eval.json")  # copied beside the GGUF when the folder has them
TMP_MARK = ".tmp-"  # every temporary name is ".<something>.tmp-<random>"
GGUF_MAGIC = b"GGUF"
NAMESPACE = PROMPT_FORMAT_METADATA_KEY.split(".", 1)[0]
_LOCK_POLL_S = 0.05
_CHUNK = 1 << 20


# -- pure helpers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GgufFacts:
    """What a GGUF says about itself that the registry records."""

    kind: str
    prompt_format: str
    base_name: str
    base_sha256: str
    base_digest_of: str
    run_name: str
    metrics: dict[str, Any] = field(default_factory=dict)


def facts_from_metadata(metadata: dict[str, Any]) -> GgufFacts:
    """`metadata` as `read_gguf_metadata` returns it. A GGUF not written by `finetune export` has none of our
    keys: its prompt format is "" and its base unknown (promote then refuses it without --force)."""

    def ours(name: str) -> str:
        return str(metadata.get(f"{NAMESPACE}.{name}", "") or "")

    try:
        metrics = json.loads(ours("run.metrics") or "{}")
    except ValueError:
        metrics = {}
    return GgufFacts(
        kind="adapter" if metadata.get("general.type") == "adapter" else "model",
        prompt_format=str(metadata.get(PROMPT_FORMAT_METADATA_KEY, "") or ""),
        base_name=ours("base.name") or str(metadata.get("general.base_model.0.name", "") or ""),
        base_sha256=ours("base.sha256"),
        base_digest_of=ours("base.digest_of"),
        run_name=ours("run.name"),
        metrics=metrics if isinstance(metrics, dict) else {},
    )


def choose_entry(names: set[str], file: str | None) -> str | None:
    """The GGUF of an export folder holding `names` that one version serves: `file` when given, else the
    adapter, else the smallest quantization. None when nothing fits."""
    if file is not None:
        return file if file in names else None
    for name in (ADAPTER_FILE, *MODEL_FILES):
        if name in names:
            return name
    return None


def expected_kind(name: str) -> str | None:
    """The kind an export file name promises (a mismatch with the GGUF's own type is refused)."""
    if name == ADAPTER_FILE:
        return "adapter"
    return "model" if name in MODEL_FILES else None


def check_channel_name(channel: str) -> str:
    if not re.fullmatch(CHANNEL_NAME, channel):
        raise RegistryError(
            f"channel name {channel!r} is invalid: use lower-case letters, digits, '-' and '_' "
            "(starting with a letter or digit)"
        )
    return channel


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TMP_MARK in name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy and hash in one pass: the hash is of the bytes that landed in the registry."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_json(path, data, temp_mark=TMP_MARK, sort_keys=True)


def _read_gguf_facts(path: Path) -> GgufFacts:
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise RegistryError(f"{path}: not a GGUF file")
    # Imported here: promote, rollback and remove never parse a GGUF, and `gguf` costs a fraction of a second.
    from finetune.export.metadata import read_gguf_metadata

    try:
        return facts_from_metadata(read_gguf_metadata(path))
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise RegistryError(f"{path}: unreadable GGUF ({exc})") from exc


# -- the registry ------------------------------------------------------------------------------------------


class Registry:
    """One registry folder. Writers lock `<root>/.lock`; readers (`list`, `show`) do not."""

    def __init__(self, root: Path, lock_timeout_s: float = 30.0) -> None:
        self.root = Path(root).expanduser()
        self.lock_timeout_s = lock_timeout_s
        self._lock_depth = 0  # promote(path) adds under the lock it already holds

    # -- reads ---------------------------------------------------------------------------------------------

    def list(self) -> list[tuple[VersionManifest, list[str]]]:
        """Every version, oldest first, with the channels it is active in."""
        self._config()
        active: dict[str, list[str]] = {}
        for channel, state in self._channel_states():
            if state.version:
                active.setdefault(state.version, []).append(channel)
        return [(manifest, active.get(manifest.id, [])) for manifest in list_versions(self.root)]

    def show(self, version: str) -> dict[str, Any]:
        """The manifest, the run card, export report and eval copied beside it, and the channels using it."""
        self._config()
        manifest = self._resolve(version)
        folder = version_dir(self.root, manifest.id)
        active, history = self._uses(manifest.id)
        shown: dict[str, Any] = {
            "manifest": manifest.as_json(),
            "path": str(folder),
            "channels": {"active": active, "history": history},
        }
        for key_, name in (
            ("run_card", "run_card.json"),
            ("export_report", REPORT_FILE),
            ("eval", "eval.json"),
        ):
            shown[key_] = read_json_object(folder / name) if (folder / name).is_file() else None
        return shown

    # -- writes --------------------------------------------------------------------------------------------

    def add(self, source: Path, file: str | None = None) -> VersionManifest:
        """Register the GGUF of an export folder (or a single GGUF); returns its version (the existing one
        when the same file was added before)."""
        with self._writing():
            return self._add(Path(source).expanduser(), file)

    def promote(
        self,
        target: str | Path,
        channel: str = DEFAULT_CHANNEL,
        *,
        served_base: Path | None = None,
        force: bool = False,
    ) -> ChannelState:
        """Make `target` (a version id or unique prefix, or a path to add first) the channel's active
        version, after checking its prompt format and, for an adapter, its base against the served base."""
        check_channel_name(channel)
        with self._writing():
            manifest = self._target(target)
            self._check_entry(manifest)
            problems, base_used = self._problems(manifest, served_base)
            if problems and not force:
                raise RegistryError(
                    f"refusing to promote {manifest.id} to channel {channel!r}: "
                    + "; ".join(problems)
                    + " (pass --force to promote anyway)"
                )
            config = self._config()
            if base_used is not None and config.get("served_base") != base_used:
                self._write_config({**config, "served_base": base_used})  # the next promote checks against it
            current = read_channel(self.root, channel)
            if current is not None and current.version == manifest.id:
                return current
            history: tuple[str, ...] = ()
            if current is not None:
                history = (*current.history, current.version) if current.version else current.history
            return self._write_channel(channel, manifest.id, history, forced=bool(problems))

    def rollback(self, channel: str = DEFAULT_CHANNEL) -> ChannelState:
        """Make the channel's previous version active again (the last entry of its history)."""
        check_channel_name(channel)
        with self._writing():
            state = read_channel(self.root, channel)
            path = channel_file(self.root, channel)
            if state is None:
                raise RegistryError(f"channel {channel!r} was never promoted ({path} does not exist)")
            if not state.history:
                raise RegistryError(
                    f"channel {channel!r} has no earlier version to roll back to (active: {state.version}; {path})"
                )
            previous = state.history[-1]
            if not (version_dir(self.root, previous) / MANIFEST_FILE).is_file():
                raise RegistryError(
                    f"cannot roll back channel {channel!r} to {previous}: that version was removed from {self.root}"
                )
            return self._write_channel(channel, previous, state.history[:-1], forced=False)

    def remove(self, version: str, force: bool = False) -> None:
        """Delete a version that no channel uses (active or in its history), or any version with force."""
        with self._writing():
            manifest = self._resolve(version)
            active, history = self._uses(manifest.id)
            if (active or history) and not force:
                uses = [f"active in {', '.join(active)}"] if active else []
                uses += [f"in the history of {', '.join(history)}"] if history else []
                raise RegistryError(
                    f"version {manifest.id} is {' and '.join(uses)} (channels in {self.root / CHANNELS_DIR}); "
                    "promote or roll back first, or pass --force"
                )
            versions = self.root / VERSIONS_DIR
            # Renamed away first: a crash mid-delete leaves a dot-temp folder (cleaned later), never a
            # half-deleted folder under the id.
            doomed = versions / f".{manifest.id}.remove{TMP_MARK}{secrets.token_hex(4)}"
            os.rename(version_dir(self.root, manifest.id), doomed)
            fsync_dir(versions)
            shutil.rmtree(doomed)

    # -- internals -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the lock; on first entry create the layout and remove a crashed writer's leftovers."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        path = self.root / LOCK_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot open the registry for writing ({exc})") from exc
        try:
            self._acquire(descriptor, path)
            self._lock_depth = 1
            try:
                self._prepare()
                yield
            finally:
                self._lock_depth = 0
        finally:
            os.close(descriptor)  # releases the flock

    def _acquire(self, descriptor: int, path: Path) -> None:
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip()
                    raise RegistryError(
                        f"{path} is locked by another writer (pid {holder or 'unknown'}); waited "
                        f"{self.lock_timeout_s:g} s"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        # The pid is written only once the lock is held, so it names the holder, not a waiter.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)

    def _prepare(self) -> None:
        config = self._config()
        for name in (VERSIONS_DIR, CHANNELS_DIR):
            (self.root / name).mkdir(exist_ok=True)
        if not (self.root / REGISTRY_FILE).is_file():
            self._write_config(config)
        self._clean_temps()

    def _clean_temps(self) -> None:
        """Only a writer holding the lock creates temporaries, so any found now are a crashed writer's."""
        for folder in (self.root / VERSIONS_DIR, self.root / CHANNELS_DIR, self.root):
            for entry in folder.iterdir():
                if not is_temp_name(entry.name):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _config(self) -> dict[str, Any]:
        path = self.root / REGISTRY_FILE
        if not path.is_file():
            return {"format": REGISTRY_FORMAT}
        config = read_json_object(path)
        if config.get("format") != REGISTRY_FORMAT:
            raise RegistryError(
                f"{path}: format {config.get('format')!r}; this finetune handles format {REGISTRY_FORMAT}"
            )
        return config

    def _write_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.root / REGISTRY_FILE, config)

    def _version_names(self, prefix: str = "") -> list[str]:
        return version_names(self.root, prefix)

    def _channel_states(self) -> list[tuple[str, ChannelState]]:
        channels = self.root / CHANNELS_DIR
        if not channels.is_dir():
            return []
        states = []
        for path in sorted(channels.glob("*.json")):
            if path.name.startswith("."):
                continue
            state = read_channel(self.root, path.stem)
            if state is not None:
                states.append((path.stem, state))
        return states

    def _uses(self, version: str) -> tuple[list[str], list[str]]:
        """The channels where `version` is active, and those whose history holds it."""
        states = self._channel_states()
        active = [channel for channel, state in states if state.version == version]
        history = [channel for channel, state in states if version in state.history]
        return active, history

    def _resolve(self, version: str) -> VersionManifest:
        # Checked first: resolve_version globs the prefix, so "*" would otherwise match any version.
        if not VERSION_PREFIX.fullmatch(version):
            raise RegistryError(f"{version!r} is not a version id or id prefix (hex digits) in {self.root}")
        return resolve_version(self.root, version)

    def _target(self, target: str | Path) -> VersionManifest:
        """A str is a version id (prefix) when one matches, else a path to add; a Path is always a path."""
        if isinstance(target, str):
            if VERSION_PREFIX.fullmatch(target) and self._version_names(target):
                return self._resolve(target)
            if not Path(target).expanduser().exists():
                return self._resolve(target)
        return self._add(Path(target).expanduser(), None)

    def _add(self, source: Path, file: str | None) -> VersionManifest:
        if file is not None and (not file or Path(file).name != file):
            raise RegistryError(f"--file {file!r}: give a file name inside the export folder")
        if source.is_dir():
            names = {entry.name for entry in source.iterdir() if entry.is_file()}
            entry_name = choose_entry(names, file)
            if entry_name is None:
                found = ", ".join(sorted(name for name in names if name.endswith(".gguf"))) or "none"
                wanted = file or f"{ADAPTER_FILE} or one of {', '.join(MODEL_FILES)}"
                raise RegistryError(f"{source}: no {wanted} in this folder (GGUF files there: {found})")
            gguf_path = source / entry_name
            side = [source / name for name in SIDE_FILES if name in names]
        elif source.is_file():
            if file is not None:
                raise RegistryError(f"--file {file!r} applies to an export folder; {source} is a file")
            gguf_path, side = source, []
            if gguf_path.name in (MANIFEST_FILE, *SIDE_FILES):
                raise RegistryError(
                    f"{source}: a GGUF cannot be registered under the name {gguf_path.name!r}"
                )
        else:
            raise RegistryError(f"{source}: no such file or folder")

        digest = sha256_file(gguf_path)
        _check_report(source, gguf_path, digest)
        version = digest[:ID_LENGTH]
        if (version_dir(self.root, version) / MANIFEST_FILE).is_file():
            return read_manifest(self.root, version)  # content-addressed: the same file is one version
        facts = _read_gguf_facts(gguf_path)
        promised = expected_kind(gguf_path.name)
        if promised is not None and promised != facts.kind:
            raise RegistryError(
                f"{gguf_path}: the name says {promised} but the GGUF's general.type says {facts.kind}"
            )

        versions = self.root / VERSIONS_DIR
        building = Path(tempfile.mkdtemp(prefix=f".add{TMP_MARK}", dir=versions))
        try:
            building.chmod(0o755)  # mkdtemp makes it private; a server running as another user reads it
            if _copy_hashing(gguf_path, building / gguf_path.name) != digest:
                raise RegistryError(f"{gguf_path}: changed while it was being copied; add it again")
            files = {gguf_path.name: {"sha256": digest, "bytes": gguf_path.stat().st_size}}
            for path in side:
                shutil.copyfile(path, building / path.name)
                files[path.name] = {
                    "sha256": sha256_file(building / path.name),
                    "bytes": path.stat().st_size,
                }
            manifest = VersionManifest(
                id=version,
                kind=facts.kind,
                entry=gguf_path.name,
                files=files,
                prompt_format=facts.prompt_format,
                base_name=facts.base_name,
                base_sha256=facts.base_sha256,
                created_at=_now(),
                source=str(source.resolve()),
                run_name=facts.run_name,
                metrics=facts.metrics,
            )
            (building / MANIFEST_FILE).write_text(
                json.dumps(manifest.as_json(), indent=2) + "\n", encoding="utf-8"
            )
            fsync_tree(building)
            os.rename(building, version_dir(self.root, version))
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        fsync_dir(versions)
        return manifest

    def _check_entry(self, manifest: VersionManifest) -> None:
        """The entry is present at its recorded size (hashing a multi-GB model on every promote is too slow)."""
        path = version_dir(self.root, manifest.id) / manifest.entry
        expected = manifest.files.get(manifest.entry, {}).get("bytes")
        if not path.is_file() or (expected is not None and path.stat().st_size != expected):
            raise RegistryError(f"version {manifest.id}: {path} is missing or not {expected} bytes")

    def _problems(
        self, manifest: VersionManifest, served_base: Path | None
    ) -> tuple[list[str], dict[str, str] | None]:
        """Why serving this version would be wrong (empty when it is fine), and the served base checked."""
        problems = []
        if manifest.prompt_format != PROMPT_FORMAT_VERSION:
            says = (
                repr(manifest.prompt_format)
                if manifest.prompt_format
                else f"nothing (no {PROMPT_FORMAT_METADATA_KEY} key)"
            )
            problems.append(f"its prompt format is {says} but the server speaks {PROMPT_FORMAT_VERSION!r}")
        # A merged model carries its own weights; only an adapter depends on the base it is applied to.
        if manifest.kind != "adapter":
            return problems, None
        try:
            base_path, base_sha256 = self._served_base(served_base)
        except RegistryError as exc:
            return [*problems, str(exc)], None
        if manifest.base_sha256 != base_sha256:
            problems.append(self._base_mismatch(manifest, base_path, base_sha256))
        return problems, {"path": str(base_path), "sha256": base_sha256, "name": base_path.name}

    def _base_mismatch(self, manifest: VersionManifest, base_path: Path, base_sha256: str) -> str:
        message = (
            f"it was exported against base {manifest.base_name or '(unknown)'!r} with sha256 "
            f"{manifest.base_sha256 or '(none recorded)'} but the served base {base_path} has sha256 {base_sha256}"
        )
        entry = version_dir(self.root, manifest.id) / manifest.entry
        digest_of = _read_gguf_facts(entry).base_digest_of
        if digest_of and digest_of != "file":
            # Exported from a Hugging Face base: its identity is a digest of config and weight names, which no
            # GGUF hash can equal.
            message += f" (the export recorded a digest of the base's {digest_of}, not of a GGUF file)"
        return message

    def _served_base(self, served_base: Path | None) -> tuple[Path, str]:
        """The base GGUF adapters are served on: the argument, else the one recorded, else the embedded model."""
        config = self._config()
        recorded = config.get("served_base") or {}
        if served_base is not None:
            path, where = Path(served_base).expanduser(), "--base"
        elif recorded.get("path"):
            path, where = Path(recorded["path"]), f"served_base in {self.root / REGISTRY_FILE}"
        else:
            from lsp.models import embedded_model_path

            found = embedded_model_path()
            if found is None:
                raise RegistryError(
                    "no served base to check the adapter against: pass --base PATH "
                    "(the embedded model is not installed)"
                )
            path, where = found, "the embedded model"
        path = path.resolve()
        if not path.is_file():
            raise RegistryError(f"served base {path} ({where}): no such file")
        return path, self._base_sha256(config, path)

    def _base_sha256(self, config: dict[str, Any], path: Path) -> str:
        """Hashing a multi-GB base takes a while: the hash is kept in registry.json by (path, size, mtime)."""
        stat = path.stat()
        cached = (config.get("sha256_cache") or {}).get(str(path)) or {}
        if (
            cached.get("size") == stat.st_size
            and cached.get("mtime_ns") == stat.st_mtime_ns
            and cached.get("sha256")
        ):
            return str(cached["sha256"])
        sha256 = sha256_file(path)
        cache = {
            **(config.get("sha256_cache") or {}),
            str(path): {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256},
        }
        self._write_config({**config, "sha256_cache": cache})
        return sha256

    def _write_channel(
        self, channel: str, version: str, history: tuple[str, ...], *, forced: bool
    ) -> ChannelState:
        changed_at = _now()
        write_json_atomic(
            channel_file(self.root, channel),
            {"version": version, "history": list(history), "changed_at": changed_at, "forced": forced},
        )
        return ChannelState(channel, version, history, changed_at)


def _check_report(source: Path, gguf_path: Path, digest: str) -> None:
    """An export folder's report lists its files' hashes: a GGUF that differs was altered after export."""
    report_path = source / REPORT_FILE if source.is_dir() else None
    if report_path is None or not report_path.is_file():
        return
    recorded = (read_json_object(report_path).get("files") or {}).get(gguf_path.name) or {}
    if recorded.get("sha256") and recorded["sha256"] != digest:
        raise RegistryError(
            f"{gguf_path}: sha256 {digest} differs from {recorded['sha256']} recorded in {report_path}"
        )
