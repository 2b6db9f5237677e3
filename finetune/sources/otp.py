"""Erlang/OTP's own sources from an OTP install (Debian's `erlang-src`: `/usr/lib/erlang/lib/<app>-<vsn>/`).

Each application is a package: `src/**.erl`, `src/**.hrl` (private headers) and `include/**.hrl`.
Files that a tool wrote (yecc/leex parsers, ASN.1 compiler output, wx bindings, tables) are skipped:
they teach the generator's style, not Erlang's, and some are megabytes of tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from finetune.records import Provenance, Record, Skipped
from finetune.sources.local import MAX_BYTES, read_source

SOURCE = "otp"
DEFAULT_ROOT = Path("/usr/lib/erlang/lib")
LICENCE = "Apache-2.0"  # OTP's licence since OTP 18

# yecc and leex splice their skeletons in with -file attributes that name them, or point back at the grammar.
_PARSER_GENERATOR = re.compile(r'^-file\("[^"]*(?:yeccpre\.hrl|leexinc\.hrl|\.yrl|\.xrl)",', re.M)
# Marker comments that generators put in the header. Anchored to comment lines so that prose such as
# "a crash report is generated if ..." in ordinary code does not count.
_GENERATED_HEADER = re.compile(
    r"^\s*%+.*?("
    r"do not (?:edit|modify)"
    r"|auto-?generated"
    r"|automatically generated"
    r"|this (?:file )?(?:is|was) (?:a )?generated"
    r"|generated (?:from the file|by the erlang asn\.1)"
    r")"
    r"|^\s*%+\s*generated (?:by|from)\b",
    re.I | re.M,
)
HEADER_CHARS = 2000  # generator markers sit at the top of the file


def generated_reason(text: str) -> str | None:
    """Why a source looks machine-written, or None for hand-written code."""
    parser = _PARSER_GENERATOR.search(text)
    if parser:
        return f"generated parser ({parser[0].rstrip(',')})"
    marker = _GENERATED_HEADER.search(text[:HEADER_CHARS])
    if marker:
        return f"generated ({marker[0].strip()[:80]})"
    return None


def split_app_dir(name: str) -> tuple[str, str]:
    """`stdlib-4.2` → ("stdlib", "4.2"); a folder without a version gives ("name", "")."""
    app, dash, version = name.rpartition("-")
    if dash and app and version[:1].isdigit():
        return app, version
    return name, ""


def otp_release(root: Path) -> str:
    """The full OTP version (e.g. "25.2.3") of the install that `root` (…/lib) belongs to, or ""."""
    for version_file in sorted(root.parent.glob("releases/*/OTP_VERSION")):
        try:
            return version_file.read_text(encoding="utf-8").strip()
        except OSError:
            continue
    return ""


def source_files(app_dir: Path) -> list[Path]:
    """An application's Erlang sources and headers, in a stable order."""
    found: set[Path] = set()
    src = app_dir / "src"
    if src.is_dir():
        found.update(src.rglob("*.erl"))
        found.update(src.rglob("*.hrl"))
    include = app_dir / "include"
    if include.is_dir():
        found.update(include.rglob("*.hrl"))
    return sorted(path for path in found if path.is_file())


def collect(
    root: Path | str = DEFAULT_ROOT,
    *,
    apps: Sequence[str] | None = None,
    max_bytes: int = MAX_BYTES,
) -> Iterator[Record | Skipped]:
    """One code record per hand-written OTP source file under `root` (optionally only the named apps)."""
    root = Path(root)
    if not root.is_dir():
        yield Skipped(str(root), "no OTP installation here (install erlang-src)")
        return
    release = otp_release(root)
    for app_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        app, version = split_app_dir(app_dir.name)
        if apps is not None and app not in apps:
            continue
        for path in source_files(app_dir):
            yield _file_record(path, app_dir, app, version, release, max_bytes)


def _file_record(
    path: Path, app_dir: Path, app: str, version: str, release: str, max_bytes: int
) -> Record | Skipped:
    text = read_source(path, max_bytes=max_bytes, latin1_fallback=True)
    if isinstance(text, Skipped):
        return text
    reason = generated_reason(text)
    if reason:
        return Skipped(str(path), reason)
    return Record(
        kind="code",
        language="erlang",
        text=text,
        provenance=Provenance(
            source=SOURCE,
            package=app,
            version=version,
            path=path.relative_to(app_dir).as_posix(),
            licence=LICENCE,
        ),
        meta={"otp_version": release} if release else {},
    )
