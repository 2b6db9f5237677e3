"""Local directories and Mix projects, their `deps/` included, as code and doc records.

Every Elixir project carries its dependencies' sources in `deps/`, so one checkout yields many packages:
the project itself and each dependency, each with its own name, version and licence. `.gitignore` files
(nested ones too) are honoured for the project; `deps/` is usually ignored there, so dependencies are
entered on purpose and each is walked with its own ignore rules.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from finetune.records import Provenance, Record, Skipped, language_of
from finetune.sources import erlang_terms, licence
from finetune.sources.archive import CODE_LANGUAGES
from finetune.sources.beam_docs import markdown_blocks, markdown_title

SOURCE = "local"
MAX_BYTES = 1_000_000  # larger "source" files are data dumps or generated tables, not code to learn from

# Build outputs, VCS data and vendored front-end assets: never source worth training on.
SKIPPED_DIRS = frozenset({".git", "_build", "node_modules", ".elixir_ls", ".hg", ".svn"})


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    licence: str


# --- package metadata ------------------------------------------------------------------------------------

_MIX_APP = re.compile(r"\bapp:\s*:\"?([A-Za-z_][A-Za-z0-9_]*)")
_MIX_VERSION = re.compile(r"\bversion:\s*(?:\"([^\"]+)\"|@([a-z_][A-Za-z0-9_]*))")


def mix_project_info(text: str) -> tuple[str, str]:
    """(app name, version) declared in a mix.exs; "" for what it does not state literally."""
    app = _MIX_APP.search(text)
    version = ""
    found = _MIX_VERSION.search(text)
    if found and found[1]:
        version = found[1]
    elif found and found[2]:  # `version: @version` with `@version "1.2.3"` elsewhere in the file
        attribute = re.search(rf"@{re.escape(found[2])}\s+\"([^\"]+)\"", text)
        version = attribute[1] if attribute else ""
    return (app[1] if app else "", version)


def hex_metadata_info(text: str) -> tuple[str, str, str]:
    """(name, version, licence) from a Hex dependency's `hex_metadata.config`; raises ValueError if malformed."""
    metadata = erlang_terms.metadata_dict(text, "hex_metadata.config")
    licences = metadata.get("licenses") or []
    names = [str(item) for item in licences if isinstance(item, str)] if isinstance(licences, list) else []
    return (_text(metadata.get("name")), _text(metadata.get("version")), licence.join(names))


def app_src_info(text: str) -> tuple[str, str, str]:
    """(name, version, licence) from a rebar-style `src/<app>.app.src`; raises ValueError if malformed."""
    terms = erlang_terms.consult(text, "app.src")
    if not terms or not (isinstance(terms[0], tuple) and len(terms[0]) == 3 and terms[0][0] == "application"):
        raise ValueError("not an {application, Name, Properties} term")
    _, name, properties = terms[0]
    props = (
        dict(p for p in properties if isinstance(p, tuple) and len(p) == 2)
        if isinstance(properties, list)
        else {}
    )
    licences = props.get("licenses") or []
    names = [str(item) for item in licences if isinstance(item, str)] if isinstance(licences, list) else []
    return (str(name), _text(props.get("vsn")), licence.join(names))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _read_small(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return ""


def package_info(root: Path, inherited_licence: str = "") -> PackageInfo:
    """Name, version and licence of a package folder.

    Published metadata (`hex_metadata.config`) is what the author released under, so it wins; then the
    mix.exs declaration, a rebar `.app.src`, a licence text, and finally the enclosing project's licence
    (umbrella apps rarely repeat it).
    """
    name = version = found_licence = ""
    hex_text = _read_small(root / "hex_metadata.config")
    if hex_text:
        # A damaged metadata file: the other declarations still describe the package.
        with contextlib.suppress(ValueError):
            name, version, found_licence = hex_metadata_info(hex_text)
    mix_text = _read_small(root / "mix.exs")
    if mix_text:
        mix_app, mix_version = mix_project_info(mix_text)
        name, version = name or mix_app, version or mix_version
        found_licence = found_licence or licence.from_mix_exs(mix_text)
    for app_src in sorted((root / "src").glob("*.app.src")) if (root / "src").is_dir() else []:
        try:
            src_name, src_version, src_licence = app_src_info(_read_small(app_src))
        except ValueError:
            continue
        name, version = name or src_name, version or src_version
        found_licence = found_licence or src_licence
        break
    if not found_licence:
        found_licence = licence.from_project(root)
    return PackageInfo(name or root.name, version, found_licence or inherited_licence)


# --- reading files ---------------------------------------------------------------------------------------


def read_source(path: Path, *, max_bytes: int = MAX_BYTES, latin1_fallback: bool = False) -> str | Skipped:
    """A source file's text, or why it cannot be used (too large, binary, not UTF-8, unreadable, empty).

    Erlang sources may still be Latin-1 (the default encoding before OTP 17), hence the fallback.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Skipped(str(path), f"too large ({size} bytes > {max_bytes})")
        data = path.read_bytes()
    except OSError as error:
        return Skipped(str(path), f"unreadable: {error.strerror or error}")
    if b"\0" in data:
        return Skipped(str(path), "binary (contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if not latin1_fallback:
            return Skipped(str(path), f"not UTF-8 (byte {error.start})")
        text = data.decode("latin-1")
    if not text.strip():
        return Skipped(str(path), "empty")
    return text


# --- .gitignore ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRules:
    """The patterns of one .gitignore, which apply below its folder."""

    base: str  # folder of the .gitignore, relative to the walk root ("" for the root)
    spec: pathspec.GitIgnoreSpec

    @classmethod
    def from_lines(cls, lines: Iterable[str], base: str = "") -> IgnoreRules:
        return cls(base, pathspec.GitIgnoreSpec.from_lines(list(lines)))

    @classmethod
    def load(cls, folder: Path, base: str) -> IgnoreRules | None:
        """The folder's .gitignore (and a repository's .git/info/exclude); None when there are no patterns."""
        lines: list[str] = []
        for candidate in (folder / ".gitignore", folder / ".git" / "info" / "exclude"):
            lines += _read_small(candidate).splitlines()
        if not any(line.strip() and not line.startswith("#") for line in lines):
            return None
        return cls.from_lines(lines, base)


def is_ignored(relative: str, is_dir: bool, rules: Iterable[IgnoreRules]) -> bool:
    """Git's verdict for a path under a stack of .gitignore files, outermost first.

    A deeper .gitignore overrides a shallower one, and within a file the last matching pattern wins
    (so `!negation` re-includes); `pathspec` implements the per-file pattern rules.
    """
    verdict: bool | None = None
    for rule in rules:
        if rule.base and not relative.startswith(rule.base + "/"):
            continue
        inside = relative[len(rule.base) + 1 :] if rule.base else relative
        result = rule.spec.check_file(inside + "/" if is_dir else inside)
        if result.include is not None:
            verdict = result.include
    return bool(verdict)


# --- walking ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Package:
    root: Path
    info: PackageInfo
    project: str  # the top-level project this package was found in
    dependency: bool


def _is_mix_project(folder: Path) -> bool:
    return (folder / "mix.exs").is_file()


def _doc_page(relative_to_package: str) -> bool:
    """README at a package's root and Markdown guides (`guides/**.md`) are documentation worth keeping."""
    parts = relative_to_package.split("/")
    if not parts[-1].lower().endswith(".md"):
        return False
    if len(parts) == 1:
        return parts[0].lower() == "readme.md"
    return "guides" in parts[:-1]


def _file_record(path: Path, package: _Package, max_bytes: int) -> Record | Skipped | None:
    relative = path.relative_to(package.root).as_posix()
    language = language_of(path.name)
    if language in CODE_LANGUAGES:
        kind = "code"
    elif language == "markdown" and _doc_page(relative):
        kind = "doc"
    else:
        return None
    text = read_source(path, max_bytes=max_bytes, latin1_fallback=language == "erlang")
    if isinstance(text, Skipped):
        return text
    provenance = Provenance(
        source=SOURCE,
        package=package.info.name,
        version=package.info.version,
        path=relative,
        licence=package.info.licence,
    )
    meta: dict[str, object] = {"project": package.project, "dependency": package.dependency}
    if kind == "code":
        return Record(kind="code", language=language or "", text=text, provenance=provenance, meta=meta)
    meta["title"] = markdown_title(text) or path.stem
    return Record(
        kind="doc",
        language="markdown",
        text=text,
        provenance=provenance,
        meta=meta,
        blocks=markdown_blocks(text),
    )


def _walk_package(
    root: Path,
    project: str,
    dependency: bool,
    include_deps: bool,
    max_bytes: int,
    inherited_licence: str = "",
) -> Iterator[Record | Skipped]:
    info = package_info(root, inherited_licence)
    package = _Package(root, info, project or info.name, dependency)
    yield from _walk_folder(root, "", package, [], include_deps, max_bytes)


def _walk_folder(
    folder: Path,
    relative: str,
    package: _Package,
    rules: list[IgnoreRules],
    include_deps: bool,
    max_bytes: int,
) -> Iterator[Record | Skipped]:
    own_rules = IgnoreRules.load(folder, relative)
    if own_rules is not None:
        rules = [*rules, own_rules]
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        yield Skipped(str(folder), f"unreadable folder: {error.strerror or error}")
        return
    for entry in entries:
        child_relative = f"{relative}/{entry.name}" if relative else entry.name
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if entry.name in SKIPPED_DIRS or (entry.name == "static" and folder.name == "priv"):
                continue
            if entry.name == "deps" and _is_mix_project(folder):
                # Dependencies are packages of their own, whatever the project's .gitignore says.
                if include_deps and folder == package.root:
                    yield from _walk_deps(path, package.project, max_bytes)
                continue
            if is_ignored(child_relative, True, rules):
                continue
            if _is_mix_project(path):  # an umbrella app: its own name/version, the umbrella's licence
                info = package_info(path, package.info.licence)
                nested = _Package(path, info, package.project, package.dependency)
                yield from _walk_folder(path, child_relative, nested, rules, include_deps, max_bytes)
            else:
                yield from _walk_folder(path, child_relative, package, rules, include_deps, max_bytes)
        elif entry.is_file() and not is_ignored(child_relative, False, rules):
            item = _file_record(path, package, max_bytes)
            if item is not None:
                yield item


def _walk_deps(deps: Path, project: str, max_bytes: int) -> Iterator[Record | Skipped]:
    try:
        packages = sorted(p for p in deps.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError as error:
        yield Skipped(str(deps), f"unreadable folder: {error.strerror or error}")
        return
    for dep in packages:
        # Mix fetches the whole tree into the top-level deps/, so a dependency's own deps/ is not walked.
        yield from _walk_package(dep, project, True, False, max_bytes)


def _enclosing_package_root(path: Path) -> Path:
    for folder in path.parents:
        if _is_mix_project(folder) or any((folder / name).is_file() for name in licence.LICENCE_FILES):
            return folder
    return path.parent


def collect(
    paths: Iterable[Path | str], include_deps: bool = True, *, max_bytes: int = MAX_BYTES
) -> Iterator[Record | Skipped]:
    """Code records (.ex/.exs/.erl/.hrl/.eex/.heex) and doc records (README.md, guides/**.md).

    A folder is a package (named after its mix.exs `app`, else the folder); with `include_deps`, each
    folder under a Mix project's `deps/` is a package of its own. A single file is attributed to the
    nearest enclosing project folder.
    """
    for given in paths:
        path = Path(given).expanduser().resolve()
        if path.is_dir():
            yield from _walk_package(path, "", False, include_deps, max_bytes)
        elif path.is_file():
            root = _enclosing_package_root(path)
            info = package_info(root)
            item = _file_record(path, _Package(root, info, info.name, False), max_bytes)
            yield item if item is not None else Skipped(str(path), "not a source or documentation file")
        else:
            yield Skipped(str(given), "no such file or folder")
