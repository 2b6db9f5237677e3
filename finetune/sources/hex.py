"""Hex.pm: the most downloaded packages (or an allow-list), their release tarballs, one Record per file.

Wire formats:
- API (`https://hex.pm/api`): `GET /packages?sort=downloads&page=N` (100 packages a page, most downloaded
  first; an empty page ends the list) and `GET /packages/<name>` (one package with its `releases`).
- Repository (`https://repo.hex.pm`): `GET /tarballs/<name>-<version>.tar`, an uncompressed tar of
  `VERSION`, `CHECKSUM`, `metadata.config` and `contents.tar.gz`.

Checksum (hexpm/specifications, package_tarball.md): `CHECKSUM` is the hex-encoded SHA-256 of the
concatenated bytes of VERSION, the metadata file and contents.tar.gz, in that order. Version "3" names
the metadata `metadata.config` (Erlang terms); version "2" names it `metadata.exs` (Elixir terms, read
here only for its `licenses`). Hex writes the checksum in upper case; it is compared case-insensitively.
This "inner" checksum is what the tarball itself can prove; the registry's "outer" checksum (SHA-256 of
the whole .tar) is checked too when the caller knows it (`expected_sha256`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from finetune.records import Provenance, Record, Skipped
from finetune.sources import licence as licences
from finetune.sources.archive import code_records
from finetune.sources.erlang_terms import metadata_dict
from finetune.sources.http import HttpClient, HttpError

HEX_API_URL = "https://hex.pm/api"
HEX_REPO_URL = "https://repo.hex.pm"
PACKAGES_PER_PAGE = 100  # hex.pm's page size for /packages
SUPPORTED_TARBALL_VERSIONS = ("2", "3")
# hex_core's limits: a package may not unpack to more than 64 MiB (guards against gzip bombs).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


class TarballError(ValueError):
    """A Hex tarball that is malformed or fails its checksum."""


@dataclass(frozen=True)
class HexOptions:
    top: int | None = 100  # the N most downloaded packages (ignored when `packages` is given)
    packages: tuple[str, ...] = ()  # an allow-list of package names, fetched by name
    min_downloads: int = 0  # all-time downloads below which listing stops
    cache_dir: Path | None = None
    api_url: str = HEX_API_URL
    repo_url: str = HEX_REPO_URL
    requests_per_second: float = 1.5  # hex.pm allows 100 API requests a minute per IP unauthenticated
    include_prereleases: bool = False


@dataclass(frozen=True)
class HexRelease:
    name: str
    version: str
    licence: str  # from the API; the tarball's own metadata wins when it declares one
    downloads: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HexTarball:
    format_version: str
    checksum: str  # lower-case hex, verified
    metadata: dict[str, Any]
    files: dict[str, bytes]  # path inside the package → content


# -- the tarball ----------------------------------------------------------------------------------------


def inner_checksum(version: bytes, metadata: bytes, contents: bytes) -> str:
    return hashlib.sha256(version + metadata + contents).hexdigest()


def read_tarball(data: bytes, *, expected_sha256: str | None = None) -> HexTarball:
    """Unpack and verify a release tarball; TarballError says what is wrong."""
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256.lower():
        raise TarballError("outer checksum mismatch: the tarball differs from the registry's")
    outer = _tar_members(data, "outer tarball", compressed=False)
    version = outer.get("VERSION", b"").strip()
    format_version = version.decode("ascii", errors="replace")
    if format_version not in SUPPORTED_TARBALL_VERSIONS:
        raise TarballError(f"unsupported tarball VERSION {format_version!r}")
    metadata_name = "metadata.config" if format_version == "3" else "metadata.exs"
    for required in ("CHECKSUM", metadata_name, "contents.tar.gz"):
        if required not in outer:
            raise TarballError(f"{required} is missing")
    metadata_bytes = outer[metadata_name]
    computed = inner_checksum(outer["VERSION"], metadata_bytes, outer["contents.tar.gz"])
    declared = outer["CHECKSUM"].strip().decode("ascii", errors="replace").lower()
    if declared != computed:
        raise TarballError(
            f"checksum mismatch: CHECKSUM says {declared[:16]}…, contents hash to {computed[:16]}…"
        )
    metadata = _read_metadata(metadata_bytes, metadata_name)
    files = _tar_members(outer["contents.tar.gz"], "contents.tar.gz", compressed=True)
    return HexTarball(format_version, computed, metadata, files)


def _read_metadata(data: bytes, name: str) -> dict[str, Any]:
    text = data.decode("utf-8", errors="replace")
    if name == "metadata.config":
        try:
            return metadata_dict(text, name)
        except ValueError as exc:
            raise TarballError(f"bad metadata: {exc}") from None
    # Version 2 wrote Elixir terms; only the licences matter here.
    found = re.search(r"<<\"licenses\">>\s*=>\s*\[([^\]]*)\]|\"licenses\"\s*=>\s*\[([^\]]*)\]", text)
    names = re.findall(r'"([^"]+)"', (found[1] or found[2]) if found else "")
    return {"licenses": names}


def _tar_members(data: bytes, what: str, *, compressed: bool) -> dict[str, bytes]:
    """Regular files of a tar held in memory; unsafe paths are refused, sizes are capped."""
    if compressed:
        try:
            data = _gunzip_capped(data, MAX_UNPACKED_BYTES)
        except (OSError, EOFError, ValueError) as exc:
            raise TarballError(f"{what}: {exc}") from None
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if not member.isfile():
                    continue  # directories, links and devices carry no source text
                path = _safe_path(member.name)
                if path is None:
                    raise TarballError(f"{what}: unsafe path {member.name!r}")
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise TarballError(f"{what}: more than {MAX_UNPACKED_BYTES} bytes unpacked")
                extracted = archive.extractfile(member)
                members[path] = extracted.read() if extracted else b""
    except tarfile.TarError as exc:
        raise TarballError(f"{what}: not a tar archive ({exc})") from None
    return members


def _gunzip_capped(data: bytes, limit: int) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read(limit + 1)
    if len(out) > limit:
        raise ValueError(f"more than {limit} bytes when decompressed")
    return out


def _safe_path(name: str) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    cleaned = PurePosixPath(*[part for part in path.parts if part not in ("", ".")])
    return str(cleaned) if cleaned.parts else None


def tarball_licence(tarball: HexTarball) -> str:
    """The release's declared licences, else a recognised licence text shipped in the package."""
    declared = tarball.metadata.get("licenses") or tarball.metadata.get("licences") or []
    if isinstance(declared, list):
        joined = licences.join([str(name) for name in declared if isinstance(name, str)])
        if joined:
            return joined
    for name in licences.LICENCE_FILES:
        if name in tarball.files:
            found = licences.from_text(tarball.files[name].decode("utf-8", errors="replace"))
            if found:
                return found
    return ""


def records_from_tarball(tarball: HexTarball, release: HexRelease, url: str) -> Iterator[Record | Skipped]:
    """One Record per Elixir/Erlang/EEx source file of the release."""
    licence = tarball_licence(tarball) or release.licence
    app = tarball.metadata.get("app", release.name)
    where = f"{release.name}@{release.version}"

    def provenance(path: str) -> Provenance:
        return Provenance("hex", release.name, release.version, path, licence, url)

    yield from code_records(tarball.files, where, provenance, {"app": app, "downloads": release.downloads})


# -- the API --------------------------------------------------------------------------------------------


def tarball_url(repo_url: str, name: str, version: str) -> str:
    return f"{repo_url.rstrip('/')}/tarballs/{quote(name)}-{quote(version)}.tar"


def is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]  # SemVer: 1.0.0-rc.1 is a pre-release


def pick_version(package: dict[str, Any], *, include_prereleases: bool = False) -> str | None:
    """The release to take: the latest stable one (hex.pm lists releases newest first)."""
    for key in (
        ("latest_stable_version", "latest_version") if not include_prereleases else ("latest_version",)
    ):
        if isinstance(package.get(key), str) and package[key]:
            return str(package[key])
    for release in package.get("releases") or []:
        version = release.get("version") if isinstance(release, dict) else None
        if isinstance(version, str) and (include_prereleases or not is_prerelease(version)):
            return version
    return None


def all_time_downloads(package: dict[str, Any]) -> int:
    downloads = package.get("downloads")
    if isinstance(downloads, dict):
        value = downloads.get("all", 0)
        return int(value) if isinstance(value, int | float) else 0
    return 0


def release_of(package: dict[str, Any], *, include_prereleases: bool = False) -> HexRelease | None:
    version = pick_version(package, include_prereleases=include_prereleases)
    if not version or not isinstance(package.get("name"), str):
        return None
    meta = package.get("meta") if isinstance(package.get("meta"), dict) else {}
    declared = meta.get("licenses") if isinstance(meta.get("licenses"), list) else []
    return HexRelease(
        name=package["name"],
        version=version,
        licence=licences.join([str(name) for name in declared]),
        downloads=all_time_downloads(package),
        meta={"description": meta.get("description") or ""},
    )


def iter_packages(
    client: HttpClient, api_url: str, *, top: int | None, min_downloads: int = 0
) -> Iterator[dict[str, Any]]:
    """Packages most downloaded first, page by page, until `top`, `min_downloads` or the list ends."""
    taken = 0
    page = 1
    while top is None or taken < top:
        listing = client.get_json(
            f"{api_url.rstrip('/')}/packages", params={"sort": "downloads", "page": page}
        )
        if not isinstance(listing, list):
            raise HttpError(f"{api_url}/packages", f"page {page} is not a JSON list")
        if not listing:
            return
        for package in listing:
            if not isinstance(package, dict):
                continue
            if all_time_downloads(package) < min_downloads:
                return  # sorted by downloads: every later package has fewer
            yield package
            taken += 1
            if top is not None and taken >= top:
                return
        page += 1


def package_info(client: HttpClient, api_url: str, name: str) -> dict[str, Any]:
    info = client.get_json(f"{api_url.rstrip('/')}/packages/{quote(name)}")
    if not isinstance(info, dict):
        raise HttpError(f"{api_url}/packages/{name}", "package info is not a JSON object")
    return info


def collect_release(client: HttpClient, release: HexRelease, repo_url: str) -> Iterator[Record | Skipped]:
    """Download (or reuse), verify and unpack one release."""
    where = f"{release.name}@{release.version}"
    url = tarball_url(repo_url, release.name, release.version)
    try:
        data = client.download_bytes(url)
        tarball = read_tarball(data)
    except (HttpError, TarballError) as exc:
        yield Skipped(where, str(exc))
        return
    yield from records_from_tarball(tarball, release, url)


def _releases(client: HttpClient, options: HexOptions) -> Iterator[HexRelease | Skipped]:
    if options.packages:
        for name in options.packages:
            try:
                info = package_info(client, options.api_url, name)
            except HttpError as exc:
                yield Skipped(f"hex:{name}", str(exc))
                continue
            release = release_of(info, include_prereleases=options.include_prereleases)
            yield release or Skipped(f"hex:{name}", "no usable release")
        return
    try:
        for package in iter_packages(
            client, options.api_url, top=options.top, min_downloads=options.min_downloads
        ):
            release = release_of(package, include_prereleases=options.include_prereleases)
            yield release or Skipped(f"hex:{package.get('name', '?')}", "no usable release")
    except HttpError as exc:
        yield Skipped("hex:packages", f"listing stopped: {exc}")


def collect(
    options: HexOptions | None = None, *, client: HttpClient | None = None
) -> Iterator[Record | Skipped]:
    """Records for the code files of the chosen Hex packages' latest stable releases."""
    options = options or HexOptions()
    owned = client is None
    http = client or HttpClient(cache_dir=options.cache_dir, requests_per_second=options.requests_per_second)
    try:
        for item in _releases(http, options):
            if isinstance(item, Skipped):
                yield item
            else:
                yield from collect_release(http, item, options.repo_url)
    finally:
        if owned:
            http.close()
