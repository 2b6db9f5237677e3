"""GitHub: Elixir repositories found by GraphQL search, fetched as tarballs at a pinned commit.

Wire formats:
- `POST <api>/graphql` with `search(query: "language:Elixir stars:>N pushed:>DATE license:mit",
  type: REPOSITORY, first: 50, after: cursor)`; pages follow `pageInfo { hasNextPage endCursor }`.
  GitHub's search qualifiers take one licence each, so there is one search per allowed licence and
  repositories found twice are taken once. Every query also asks for `rateLimit { remaining resetAt }`
  so the collector waits for the reset before the budget runs out (the HTTP client also honours the
  `x-ratelimit-*` and `retry-after` headers).
- `GET <api>/repos/{owner}/{repo}/tarball/{oid}`: a gzip tar whose single top folder
  (`owner-repo-shortsha/`) holds the tree. Asking by commit oid makes the download immutable, so the
  cache can keep it forever.

The token is read from an environment variable (GITHUB_TOKEN by default), sent only in the
Authorization header, never logged and never part of the cache.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from finetune.records import Provenance, Record, Skipped
from finetune.sources import SourceSetupError
from finetune.sources import licence as licences
from finetune.sources.archive import code_records
from finetune.sources.http import HttpClient, HttpError

GITHUB_API_URL = "https://api.github.com"
PERMISSIVE_LICENCES = ("mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "isc")
# Folders whose files are someone else's code or build output, not the repository's own source.
VENDORED_DIRS = frozenset(
    {
        "deps",
        "_build",
        "vendor",
        "vendored",
        "third_party",
        "node_modules",
        ".git",
        ".elixir_ls",
        "cover",
        "tmp",
    }
)
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
GRAPHQL_ATTEMPTS = 4  # for GraphQL-level failures (RATE_LIMITED, transient errors in a 200 reply)

SEARCH_QUERY = """
query($searchQuery: String!, $first: Int!, $after: String) {
  rateLimit { remaining resetAt cost }
  search(query: $searchQuery, type: REPOSITORY, first: $first, after: $after) {
    repositoryCount
    pageInfo { hasNextPage endCursor }
    nodes {
      ... on Repository {
        nameWithOwner
        stargazerCount
        pushedAt
        isFork
        isArchived
        licenseInfo { spdxId }
        defaultBranchRef { name target { oid } }
      }
    }
  }
}
"""


class GitHubTokenMissing(SourceSetupError):
    """No token in the configured environment variable: GitHub's GraphQL API refuses anonymous calls."""


class GraphQLError(SourceSetupError):
    pass


@dataclass(frozen=True)
class GitHubOptions:
    language: str = "Elixir"
    min_stars: int = 50
    pushed_after: str = "2022-01-01"  # YYYY-MM-DD
    licences: tuple[str, ...] = PERMISSIVE_LICENCES  # GitHub licence keys (lower case SPDX)
    max_repos: int | None = 100  # in all, across the licence searches
    page_size: int = 50  # GitHub's maximum for search is 100
    token_env: str = "GITHUB_TOKEN"
    api_url: str = GITHUB_API_URL
    graphql_url: str | None = None  # default: <api_url>/graphql
    cache_dir: Path | None = None
    requests_per_second: float = 1.0  # well under GitHub's secondary limits for content requests
    include_forks: bool = False


@dataclass(frozen=True)
class Repository:
    name_with_owner: str
    stars: int
    licence: str  # SPDX id, "" when GitHub could not tell
    branch: str
    oid: str  # the default branch's head commit
    pushed_at: str = ""


def read_token(variable: str, environ: Mapping[str, str] | None = None) -> str:
    token = (environ if environ is not None else os.environ).get(variable, "").strip()
    if not token:
        raise GitHubTokenMissing(
            f"no GitHub token: set the environment variable {variable} to a personal access token "
            "(no scopes are needed for public repositories)"
        )
    return token


def search_query(options: GitHubOptions, licence: str) -> str:
    """The search string for one licence; archived repositories are left out (dead code)."""
    parts = [
        f"language:{options.language}",
        f"stars:>{options.min_stars}",
        f"pushed:>{options.pushed_after}",
        f"license:{licence}",
        "archived:false",
        "sort:stars",
    ]
    if options.include_forks:
        parts.append("fork:true")
    return " ".join(parts)


def parse_github_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def graphql(client: HttpClient, url: str, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """`data` of a GraphQL reply; waits out RATE_LIMITED errors, raises GraphQLError for the rest."""
    problem = ""
    for attempt in range(GRAPHQL_ATTEMPTS):
        reply = client.request("POST", url, json_body={"query": query, "variables": dict(variables)})
        try:
            body = reply.json()
        except ValueError:
            raise GraphQLError(f"{reply.url}: reply is not JSON") from None
        errors = (body.get("errors") or []) if isinstance(body, dict) else []
        data = body.get("data") if isinstance(body, dict) else None
        if not errors and isinstance(data, dict):
            _respect_rate_limit_field(client, data, url)
            return data
        messages = "; ".join(str(error.get("message", error)) for error in errors if isinstance(error, dict))
        problem = messages or "reply has no data"
        if any(isinstance(error, dict) and error.get("type") == "RATE_LIMITED" for error in errors):
            reset = reply.headers.get("x-ratelimit-reset")
            when = float(reset) if reset else client.now() + 60.0 * (attempt + 1)
            client.wait_until(when + 1.0, "GraphQL rate limit", url)
            continue
        if isinstance(data, dict) and any(value is not None for value in data.values()):
            return data  # partial data with errors (e.g. a node that timed out): use what came
        raise GraphQLError(f"{reply.url}: {problem}")
    raise GraphQLError(f"{url}: gave up after {GRAPHQL_ATTEMPTS} attempts: {problem}")


def _respect_rate_limit_field(client: HttpClient, data: Mapping[str, Any], url: str) -> None:
    """Wait for the reset when the budget cannot pay for another query of the same cost."""
    limit = data.get("rateLimit")
    if not isinstance(limit, dict):
        return
    remaining, cost, reset_at = limit.get("remaining"), limit.get("cost") or 1, limit.get("resetAt")
    if isinstance(remaining, int) and remaining < cost and isinstance(reset_at, str):
        client.wait_until(parse_github_time(reset_at) + 1.0, "GraphQL rate limit budget spent", url)


def repository_from_node(node: Mapping[str, Any]) -> Repository | None:
    """A search result as a Repository; None for non-repository or empty (no default branch) nodes."""
    name = node.get("nameWithOwner")
    branch = node.get("defaultBranchRef")
    if not isinstance(name, str) or not isinstance(branch, dict):
        return None
    target = branch.get("target") if isinstance(branch.get("target"), dict) else {}
    oid = target.get("oid")
    if not isinstance(oid, str) or not oid:
        return None
    licence_info = node.get("licenseInfo") if isinstance(node.get("licenseInfo"), dict) else {}
    spdx = licence_info.get("spdxId") or ""
    return Repository(
        name_with_owner=name,
        stars=int(node.get("stargazerCount") or 0),
        licence="" if spdx in ("", "NOASSERTION") else licences.normalise(str(spdx)),
        branch=str(branch.get("name") or ""),
        oid=oid,
        pushed_at=str(node.get("pushedAt") or ""),
    )


def search_repositories(
    client: HttpClient, graphql_url: str, query: str, *, page_size: int = 50, limit: int | None = None
) -> Iterator[Repository | Skipped]:
    """Repositories matching `query`, following the cursor until the results or `limit` run out."""
    cursor: str | None = None
    found = 0
    while limit is None or found < limit:
        data = graphql(
            client, graphql_url, SEARCH_QUERY, {"searchQuery": query, "first": page_size, "after": cursor}
        )
        search = data.get("search") or {}
        for node in search.get("nodes") or []:
            if not isinstance(node, dict) or not node:
                continue  # `... on Repository` leaves other result types empty
            repository = repository_from_node(node)
            if repository is None:
                yield Skipped(
                    f"github:{node.get('nameWithOwner', '?')}", "no default branch (empty repository)"
                )
                continue
            yield repository
            found += 1
            if limit is not None and found >= limit:
                return
        page = search.get("pageInfo") or {}
        cursor = page.get("endCursor")
        if not page.get("hasNextPage") or not cursor:
            return


def tarball_url(api_url: str, name_with_owner: str, ref: str) -> str:
    owner, _, name = name_with_owner.partition("/")
    return f"{api_url.rstrip('/')}/repos/{quote(owner)}/{quote(name)}/tarball/{quote(ref)}"


def is_vendored(path: str) -> bool:
    """Dependencies, build output and vendored copies, anywhere in the tree."""
    parts = PurePosixPath(path).parts
    if any(part in VENDORED_DIRS for part in parts[:-1]):
        return True
    return "priv/static" in path or "assets/vendor" in path


def strip_top_folder(name: str) -> str | None:
    """`owner-repo-sha/lib/a.ex` → `lib/a.ex`; None for the top folder itself or an unsafe path."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        return None
    return str(PurePosixPath(*path.parts[1:]))


def tarball_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path without the top folder, content) for each regular file of a GitHub tarball."""
    unpacked = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            if not member.isfile():
                continue
            path = strip_top_folder(member.name)
            if path is None:
                continue
            unpacked += member.size
            if unpacked > MAX_UNPACKED_BYTES:
                raise tarfile.TarError(f"more than {MAX_UNPACKED_BYTES} bytes unpacked")
            extracted = archive.extractfile(member)
            yield path, extracted.read() if extracted else b""


def _licence_from_files(files: Mapping[str, bytes]) -> str:
    if "mix.exs" in files:
        declared = licences.from_mix_exs(files["mix.exs"].decode("utf-8", errors="replace"))
        if declared:
            return declared
    for name in licences.LICENCE_FILES:
        if name in files:
            found = licences.from_text(files[name].decode("utf-8", errors="replace"))
            if found:
                return found
    return ""


def records_from_tarball(data: bytes, repository: Repository) -> Iterator[Record | Skipped]:
    """One Record per code file outside vendored folders."""
    where = f"{repository.name_with_owner}@{repository.oid[:12]}"
    try:
        files = dict(tarball_files(data))
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield Skipped(where, f"bad tarball: {exc}")
        return
    licence = repository.licence or _licence_from_files(files)
    name, oid = repository.name_with_owner, repository.oid

    def provenance(path: str) -> Provenance:
        return Provenance("github", name, oid, path, licence, f"https://github.com/{name}/blob/{oid}/{path}")

    meta = {"stars": repository.stars, "branch": repository.branch, "pushed_at": repository.pushed_at}
    yield from code_records(files, where, provenance, meta, skip=is_vendored)


def collect_repository(
    client: HttpClient, api_url: str, repository: Repository
) -> Iterator[Record | Skipped]:
    url = tarball_url(api_url, repository.name_with_owner, repository.oid)
    try:
        data = client.download_bytes(url)
    except HttpError as exc:
        yield Skipped(f"{repository.name_with_owner}@{repository.oid[:12]}", str(exc))
        return
    yield from records_from_tarball(data, repository)


def make_client(options: GitHubOptions, token: str, **client_options: Any) -> HttpClient:
    """An HttpClient that authenticates as `token`; `client_options` go to HttpClient (e.g. `sleep`)."""
    return HttpClient(
        cache_dir=options.cache_dir,
        headers={
            "authorization": f"bearer {token}",
            "accept": "application/vnd.github+json",
            "x-github-api-version": "2022-11-28",
        },
        requests_per_second=options.requests_per_second,
        **client_options,
    )


def collect(
    options: GitHubOptions | None = None,
    *,
    client: HttpClient | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Record | Skipped]:
    """Records for the code files of the matching repositories, one search per allowed licence.

    Raises GitHubTokenMissing before any request when no token is configured (a setup error, not a
    bad input); a failed search or download is a Skipped. A given `client` must come from
    `make_client` (it carries the token); without one, a client is made from `options`.
    """
    options = options or GitHubOptions()
    token = read_token(options.token_env, environ)
    owned = client is None
    http = client or make_client(options, token)
    graphql_url = options.graphql_url or f"{options.api_url.rstrip('/')}/graphql"
    seen: set[str] = set()
    try:
        for licence in options.licences:
            remaining = None if options.max_repos is None else options.max_repos - len(seen)
            if remaining is not None and remaining <= 0:
                return
            query = search_query(options, licence)
            try:
                for found in search_repositories(
                    http, graphql_url, query, page_size=options.page_size, limit=remaining
                ):
                    if isinstance(found, Skipped):
                        yield found
                        continue
                    if found.name_with_owner in seen:
                        continue
                    seen.add(found.name_with_owner)
                    yield from collect_repository(http, options.api_url, found)
            except (HttpError, GraphQLError) as exc:
                yield Skipped(f"github search {query!r}", str(exc))
    finally:
        if owned:
            http.close()
