"""Licence detection shared by the sources: SPDX ids from declarations and from licence texts.

Declared licences (mix.exs `licenses:`, Hex metadata, GitHub's `licenseInfo.spdxId`) win over texts; a
licence text is recognised by phrases that only its family uses. Unknown stays "" — the builder's
allow-list drops it unless the user allows unknown licences explicitly.
"""

from __future__ import annotations

import re
from pathlib import Path

# Common spellings → SPDX ids.
_ALIASES = {
    "mit": "MIT",
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd-2": "BSD-2-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "bsd-3": "BSD-3-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "isc": "ISC",
    "mpl-2.0": "MPL-2.0",
    "mpl 2.0": "MPL-2.0",
    "mozilla public license 2.0": "MPL-2.0",
    "epl-1.0": "EPL-1.0",
    "epl-2.0": "EPL-2.0",
    "unlicense": "Unlicense",
    "the unlicense": "Unlicense",
    "0bsd": "0BSD",
    "cc0-1.0": "CC0-1.0",
    "wtfpl": "WTFPL",
    "gpl": "GPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "gplv2": "GPL-2.0-only",
    "gplv3": "GPL-3.0-only",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "lgpl": "LGPL-3.0-only",
    "agpl-3.0": "AGPL-3.0-only",
    "agpl": "AGPL-3.0-only",
}

# Phrases that identify a licence text (checked in order: the more specific first).
_TEXT_MARKERS: list[tuple[str, str]] = [
    ("GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL-3.0-only"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL-3.0-only"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL-3.0-only"),
    ("Mozilla Public License Version 2.0", "MPL-2.0"),
    ("Eclipse Public License - v 2.0", "EPL-2.0"),
    ("Eclipse Public License - v 1.0", "EPL-1.0"),
    ("Apache License", "Apache-2.0"),
    ("This is free and unencumbered software released into the public domain", "Unlicense"),
    ("Permission is hereby granted, free of charge, to any person obtaining a copy", "MIT"),
    ("Permission to use, copy, modify, and/or distribute this software for any", "ISC"),
    ("Neither the name of", "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms", "BSD-2-Clause"),
]

LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "COPYING", "COPYING.md")


def normalise(name: str) -> str:
    """An SPDX id for a declared licence name; unknown names are kept as written (trimmed)."""
    key = re.sub(r"\s+", " ", name.strip().strip("\"'")).lower()
    if not key:
        return ""
    return _ALIASES.get(key) or _ALIASES.get(key.replace(" license", "")) or name.strip()


def join(names: list[str]) -> str:
    """Several declared licences: the user may pick any, so they are alternatives ("OR")."""
    ids = sorted({normalise(n) for n in names if normalise(n)})
    return " OR ".join(ids)


def from_text(text: str) -> str:
    head = text[:4000]
    for marker, spdx in _TEXT_MARKERS:
        if marker.lower() in head.lower():
            if spdx == "GPL-3.0-only" and "Version 2" in head:
                return "GPL-2.0-only"
            if spdx == "LGPL-3.0-only" and "Version 2.1" in head:
                return "LGPL-2.1-only"
            return spdx
    return ""


_MIX_LICENSES = re.compile(r"licen[cs]es:\s*\[([^\]]*)\]", re.S)


def from_mix_exs(text: str) -> str:
    """`licenses: ["MIT"]` in a mix.exs `package` block."""
    found = _MIX_LICENSES.search(text)
    if not found:
        return ""
    return join(re.findall(r'"([^"]+)"', found[1]))


def from_project(root: Path) -> str:
    """A project's licence: mix.exs declaration first, then a licence file."""
    mix = root / "mix.exs"
    if mix.is_file():
        declared = from_mix_exs(mix.read_text(encoding="utf-8", errors="replace"))
        if declared:
            return declared
    for name in LICENCE_FILES:
        path = root / name
        if path.is_file():
            found = from_text(path.read_text(encoding="utf-8", errors="replace"))
            if found:
                return found
    return ""
