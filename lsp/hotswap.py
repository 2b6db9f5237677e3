"""Blue-green model swaps: serve the registry channel's version, and switch when it changes.

`ModelManager` owns what the completion engine serves. It polls the channel file's signature (a stat),
and on a change resolves the version to serve (a pin wins over the channel), builds its backend on a
thread of its own while the old backend keeps answering, then hands it to the engine. Work already
submitted to the old backend finishes there; the engine closes the old one behind that work (see
`CompletionEngine.set_backend`). A version that cannot be served leaves the old backend in place and is
reported once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lsp.backends.base import Backend, BackendError
from lsp.completion.engine import CompletionEngine
from lsp.config import ModelSettings
from lsp.models import ModelSpec, build_backend, plan_model
from lsp.prompt import PROMPT_FORMAT_VERSION
from lsp.registry import (
    RegistryError,
    VersionManifest,
    channel_signature,
    list_versions,
    read_channel,
    read_manifest,
    resolve_version,
)

logger = logging.getLogger(__name__)

Report = Callable[[str, str], None]  # (level, message)
BackendFactory = Callable[[ModelSettings, ModelSpec], Backend]
# Settings that only choose the registry version; changing them needs no reload of the same version.
_REGISTRY_FIELDS = ("registry", "channel", "registry_poll_ms", "pin")


def registry_root(settings: ModelSettings, workspace: Path | None) -> Path | None:
    """The registry folder: '~' expanded, a relative path taken from the workspace root; None = off."""
    if not settings.registry:
        return None
    root = Path(settings.registry).expanduser()
    if not root.is_absolute() and workspace is not None:
        root = workspace / root
    return root


def load_key(settings: ModelSettings) -> ModelSettings:
    """The settings a loaded backend depends on (everything but the registry choice)."""
    return dataclasses.replace(
        settings, **{name: ModelSettings.__dataclass_fields__[name].default for name in _REGISTRY_FIELDS}
    )


def target_version(root: Path | None, channel: str, pin: str) -> VersionManifest | None:
    """The version to serve: the pinned one, else the channel's; None = the base. RegistryError if unreadable."""
    if root is None:
        return None
    if pin:
        return resolve_version(root, pin)
    state = read_channel(root, channel)
    if state is None or state.version is None:
        return None
    return read_manifest(root, state.version)


def pin_argument(arguments: Sequence[Any] | None) -> Any:
    """The version in `workspace/executeCommand` arguments: `["id"]`, `[{"version": "id"}]`, `[null]`, `[]`
    (checked by `ModelManager.pin_version`)."""
    if not arguments:
        return None
    first = arguments[0]
    return first.get("version") if isinstance(first, dict) else first


def _version_id(version: VersionManifest | None) -> str | None:
    return version.id if version is not None else None


class ModelManager:
    """The served model: loads, swaps and reports; the server wires it to settings, polling and requests."""

    def __init__(
        self,
        engine: CompletionEngine,
        show: Report,
        log: Report,
        create: BackendFactory = build_backend,
    ) -> None:
        self.engine = engine
        self._show = show
        self._log = log
        self._create = create
        self.settings = ModelSettings()
        self._served_key: ModelSettings | None = None  # load_key of the settings the served backend was built with
        self.root: Path | None = None
        self.pin = ""  # a version id or prefix; "" = follow the channel
        self.active: VersionManifest | None = None  # None = the base (or nothing loaded)
        self.loading = False
        self.last_error: str | None = None
        # The base itself cannot be loaded: completions are off until the settings change.
        self.model_error: str | None = None
        self._signature: tuple[int, int, int] | None = None
        self._reported: set[tuple[str | None, str]] = set()
        self._lock = asyncio.Lock()  # one load at a time
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- reporting --------------------------------------------------------------------------------------
    def _fail(self, version: str | None, message: str, show: bool = True) -> None:
        """Record a failure; the user is told once per (version, reason)."""
        self.last_error = message
        self._log("error", message)
        if show and (version, message) not in self._reported:
            self._reported.add((version, message))
            self._show("error", message)

    def registry_status(self, with_versions: bool = False) -> dict[str, Any]:
        """The `registry` block of `devstralElixir/status`; `with_versions` adds what a version picker
        shows (the registry is read from disk, so only on request)."""
        status: dict[str, Any] = {
            "root": str(self.root) if self.root is not None else None,
            "channel": self.settings.channel,
            "activeVersion": _version_id(self.active),
            "pinned": self.pin or None,
            "loading": self.loading,
            "lastError": self.last_error,
        }
        if with_versions:
            status.update(self._versions())
        return status

    def _versions(self) -> dict[str, Any]:
        """The channel's version and history, and every version newest first; an unreadable registry
        lists nothing and says why."""
        listed: dict[str, Any] = {"channelVersion": None, "channelHistory": [], "versions": [], "versionsError": None}
        if self.root is None or not self.root.is_dir():
            return listed
        try:
            state = read_channel(self.root, self.settings.channel)
            manifests = list_versions(self.root)
        except (RegistryError, OSError) as exc:
            return {**listed, "versionsError": str(exc)}
        if state is not None:
            listed.update(channelVersion=state.version, channelHistory=list(state.history))
        listed["versions"] = [
            {"id": m.id, "kind": m.kind, "runName": m.run_name, "createdAt": m.created_at,
             "promptFormat": m.prompt_format, "baseName": m.base_name}
            for m in reversed(manifests)
        ]
        return listed

    # -- loading ----------------------------------------------------------------------------------------
    def _build(self, settings: ModelSettings, root: Path | None, version: VersionManifest | None) -> Backend:
        return self._create(settings, plan_model(settings, root, version))

    async def _load(self, version: VersionManifest | None) -> str | None:
        """Build `version`'s backend beside the served one and switch to it; the error message, or None."""
        self.loading = True
        settings = self.settings
        try:
            # Not the engine's worker: that one keeps generating on the old backend meanwhile.
            backend = await asyncio.to_thread(self._build, settings, self.root, version)
        except Exception as exc:  # BackendError, or anything unexpected: report, never crash
            if not isinstance(exc, BackendError):
                logger.exception("model load failed")
            return str(exc)
        finally:
            self.loading = False
        if self._closed:
            backend.close()
            return "the server is shutting down"
        previous = self.active
        had_backend = self.engine.backend is not None
        self.engine.set_backend(backend)
        self.active = version
        self._served_key = load_key(settings)
        self.model_error = None
        self.last_error = None
        info = backend.info()
        mode = "FIM" if info.fim else "prefix-only (no FIM tokens in the vocabulary)"
        what = f"version {version.id} ({version.kind})" if version is not None else "the base model"
        was = (
            f"; was version {previous.id}"
            if previous is not None
            else "; was the base model"
            if had_backend
            else ""
        )
        self._log("info", f"model {info.model} loaded via {info.backend}: serving {what}{was}; {mode}")
        if info.prompt_format and info.prompt_format != PROMPT_FORMAT_VERSION:
            self._show(
                "warning",
                f"model {info.model} was trained for prompt format {info.prompt_format}; this server "
                f"speaks {PROMPT_FORMAT_VERSION}. Completions may be poor.",
            )
        return None

    async def _switch(self, force: bool | None, show: bool = True) -> str | None:
        """Serve the target version if it is not served already; the failure message, or None.

        `force` reloads even the served version (the base settings changed) and falls back to the base
        when the target cannot be served, since the old backend no longer matches the settings. None
        decides under the lock, so settings that arrive while the same load runs do not load it twice.
        """
        async with self._lock:
            if force is None:
                force = self.engine.backend is None or load_key(self.settings) != self._served_key
            try:
                target = target_version(self.root, self.settings.channel, self.pin)
            except RegistryError as exc:
                self._fail(None, f"model registry: {exc}", show)
                if not force:
                    return str(exc)
                target = None
            if (
                not force
                and self.engine.backend is not None
                and _version_id(target) == _version_id(self.active)
            ):
                self.last_error = None  # e.g. rolled back from a version that failed to the served one
                return None
            error = await self._load(target)
            if error is None:
                return None
            # Keep the old backend unless it no longer matches the settings (or there is none).
            keep = not force and self.engine.backend is not None
            if target is not None or keep:
                what = f"version {target.id}" if target is not None else "the base model"
                self._fail(
                    _version_id(target),
                    f"cannot serve {what} from {self._source()}: {error}"
                    + (". Still serving the previous model." if keep else ""),
                    show,
                )
            if keep:
                return error
            if target is not None:
                fallback = await self._load(None)
                if fallback is None:
                    return error
                error = fallback
            # The base itself failed: nothing sensible is left to serve.
            self.engine.set_backend(None)
            self.active = None
            self.model_error = error
            self._fail(None, f"{error}. Completions are off until the model setting is fixed.", show)
            return error

    def _source(self) -> str:
        return "its pin" if self.pin else f"channel '{self.settings.channel}'"

    # -- entry points -----------------------------------------------------------------------------------
    async def configure(self, settings: ModelSettings, workspace: Path | None) -> None:
        """New model settings: serve what they name, reloading only when the backend depends on them."""
        self.settings = settings
        self.root = registry_root(settings, workspace)
        self.pin = settings.pin
        self._reported.clear()  # a settings change is a fresh attempt: say again what fails
        if self.root is not None and not self.root.is_dir():
            self._show("warning", f"model registry {self.root} does not exist (yet); serving the base model")
        self._signature = self._read_signature()
        await self._switch(force=None)

    def _read_signature(self) -> tuple[int, int, int] | None:
        return channel_signature(self.root, self.settings.channel) if self.root is not None else None

    async def poll(self) -> None:
        """One look at the channel (a stat); a change loads its version unless a pin holds."""
        if self.root is None:
            return
        signature = self._read_signature()
        if signature == self._signature:
            return
        self._signature = signature
        if not self.pin:
            await self._switch(force=False)

    async def pin_version(self, version: str | None) -> dict[str, Any]:
        """Serve `version` (an id or unique prefix) whatever the channel says; None follows the channel.

        RegistryError for an unknown version, BackendError when it cannot be served; either way nothing
        changes. Returns the registry status after the swap.
        """
        if version is not None and not isinstance(version, str):
            raise RegistryError(f"a version must be an id (a string) or null, got {version!r}")
        pin = ""
        if version:
            if self.root is None:
                raise RegistryError(
                    f"cannot pin version {version!r}: no registry configured (set 'model.registry')"
                )
            pin = resolve_version(self.root, version).id
        previous, self.pin = self.pin, pin
        # The requester gets the error in the response; no message box as well.
        error = await self._switch(force=False, show=False)
        if error is not None:
            self.pin = previous
            raise BackendError(error)
        self._log("info", f"model: pinned to version {pin}" if pin else f"model: following {self._source()}")
        return self.registry_status()

    # -- lifetime ---------------------------------------------------------------------------------------
    def start_watching(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.settings.registry_poll_ms / 1000)
            try:
                await self.poll()
            except Exception as exc:  # the watcher must outlive any one bad look at the registry
                logger.exception("registry poll failed")
                self._log("error", f"model registry poll failed: {exc}")

    def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
