"""Local HTTP servers that speak Hex.pm's and GitHub's wire formats, for the network sources' tests.

`LocalServer` is a real HTTP server on 127.0.0.1 in a thread: routes answer with `Reply`s, scripted
replies (429s, 500s, cut connections) are served before a route's normal answer, and every request is
recorded so tests can count them. `FakeHex` and `FakeGitHub` add the two services on top, with
tarballs built here from in-memory files (real tar/gzip, Hex's CHECKSUM rule).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # announce the whole body, send this many bytes, drop the connection


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[SeenRequest], Reply]


def json_reply(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(data).encode(), {"content-type": "application/json", **dict(headers or {})}
    )


def bytes_reply(data: bytes, request: SeenRequest, *, etag: str = "", content_type: str = "") -> Reply:
    """A download that honours Range (206) and If-Range, like a CDN."""
    headers = {"content-type": content_type or "application/octet-stream", "accept-ranges": "bytes"}
    if etag:
        headers["etag"] = etag
    wanted = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
    if_range = request.headers.get("if-range")
    if wanted and (not if_range or if_range == etag):
        start = int(wanted[1])
        if start >= len(data):
            return Reply(416, b"", {"content-range": f"bytes */{len(data)}"})
        headers["content-range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Reply(206, data[start:], headers)
    return Reply(200, data, headers)


class LocalServer:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.scripted: dict[tuple[str, str], list[Reply]] = {}
        self.seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, path_pattern: str, handler: Handler) -> None:
        """`path_pattern` is a regular expression matched against the whole path (query excluded)."""
        self.routes.append((method, re.compile(path_pattern), handler))

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Replies served, in order and once each, before the route answers `path`."""
        self.scripted.setdefault((method, path), []).extend(replies)

    def count(self, path_pattern: str, method: str | None = None) -> int:
        pattern = re.compile(path_pattern)
        with self._lock:
            return sum(1 for r in self.seen if pattern.fullmatch(r.path) and method in (None, r.method))

    def requests_to(self, path_pattern: str) -> list[SeenRequest]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.seen if pattern.fullmatch(r.path)]

    def _answer(self, request: SeenRequest) -> Reply:
        with self._lock:
            self.seen.append(request)
            queue = self.scripted.get((request.method, request.path))
            if queue:
                return queue.pop(0)
        for method, pattern, handler in self.routes:
            if method == request.method and pattern.fullmatch(request.path):
                return handler(request)
        return json_reply({"status": 404, "message": "Page not found"}, 404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet tests
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                request = SeenRequest(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = server._answer(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                if reply.cut_after is None:
                    self.wfile.write(reply.body)
                else:
                    self.wfile.write(reply.body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)

            do_GET = _serve
            do_POST = _serve

        return Handler


# -- tar helpers ----------------------------------------------------------------------------------------


def tar_bytes(files: Mapping[str, bytes], *, gzip_it: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    return gzip.compress(data, mtime=0) if gzip_it else data


def erlang_text(value: Any) -> str:
    """Erlang term text the way hex_core writes metadata.config (binaries, `/utf8` when not ASCII)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'<<"{escaped}"/utf8>>' if not escaped.isascii() else f'<<"{escaped}">>'
    if isinstance(value, dict):  # proplist, as Hex writes links and requirements
        return "[" + ",".join(f"{{{erlang_text(k)},{erlang_text(v)}}}" for k, v in value.items()) + "]"
    if isinstance(value, list):
        return "[" + ",".join(erlang_text(item) for item in value) + "]"
    raise TypeError(value)


def hex_tarball(
    metadata: Mapping[str, Any], files: Mapping[str, bytes], *, corrupt_checksum: bool = False
) -> bytes:
    """A version-3 Hex release tarball, CHECKSUM = SHA-256(VERSION + metadata.config + contents.tar.gz)."""
    version = b"3"
    metadata_config = "".join(
        f"{{{erlang_text(k)},{erlang_text(v)}}}.\n" for k, v in metadata.items()
    ).encode()
    contents = tar_bytes(files, gzip_it=True)
    checksum = hashlib.sha256(version + metadata_config + contents).hexdigest().upper()
    if corrupt_checksum:
        checksum = ("0" if checksum[0] != "0" else "1") + checksum[1:]
    outer = {"VERSION": version, "CHECKSUM": checksum.encode(), "metadata.config": metadata_config}
    outer["contents.tar.gz"] = contents
    return tar_bytes(outer, gzip_it=False)


# -- Hex.pm ---------------------------------------------------------------------------------------------


@dataclass
class FakePackage:
    name: str
    version: str
    files: dict[str, bytes]
    licenses: list[str] = field(default_factory=lambda: ["MIT"])
    downloads: int = 1000
    older_versions: list[str] = field(default_factory=list)
    corrupt: bool = False

    def api_json(self, base: str) -> dict[str, Any]:
        versions = [self.version, *self.older_versions]
        return {
            "name": self.name,
            "url": f"{base}/api/packages/{self.name}",
            "html_url": f"{base}/packages/{self.name}",
            "meta": {"description": f"{self.name} package", "licenses": self.licenses, "links": {}},
            "downloads": {"all": self.downloads, "recent": self.downloads // 10},
            "latest_version": self.version,
            "latest_stable_version": self.version,
            "releases": [
                {"version": v, "url": f"{base}/api/packages/{self.name}/releases/{v}", "has_docs": True}
                for v in versions
            ],
            "inserted_at": "2020-01-01T00:00:00.000000Z",
            "updated_at": "2024-01-01T00:00:00.000000Z",
        }

    def tarball(self) -> bytes:
        metadata = {
            "app": self.name,
            "build_tools": ["mix"],
            "description": f"{self.name} — a package",
            "files": sorted(self.files),
            "licenses": self.licenses,
            "links": {"GitHub": f"https://github.com/example/{self.name}"},
            "name": self.name,
            "requirements": [],
            "version": self.version,
        }
        return hex_tarball(metadata, self.files, corrupt_checksum=self.corrupt)


class FakeHex:
    """hex.pm's API under /api and repo.hex.pm under /repo, on one LocalServer."""

    def __init__(self, server: LocalServer, packages: list[FakePackage], *, per_page: int = 2) -> None:
        self.server = server
        self.packages = sorted(packages, key=lambda p: -p.downloads)
        self.per_page = per_page
        self.rate_limit_headers: dict[str, str] = {}
        server.route("GET", r"/api/packages", self._listing)
        server.route("GET", r"/api/packages/([^/]+)", self._package)
        server.route("GET", r"/repo/tarballs/(.+)\.tar", self._tarball)

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api"

    @property
    def repo_url(self) -> str:
        return f"{self.server.url}/repo"

    def _headers(self) -> dict[str, str]:
        reset = str(int(time.time()) + 60)
        return {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "99", "x-ratelimit-reset": reset} | (
            self.rate_limit_headers
        )

    def _listing(self, request: SeenRequest) -> Reply:
        assert request.query.get("sort") == "downloads"
        page = int(request.query.get("page", "1"))
        chunk = self.packages[(page - 1) * self.per_page : page * self.per_page]
        return json_reply([p.api_json(self.server.url) for p in chunk], headers=self._headers())

    def _package(self, request: SeenRequest) -> Reply:
        name = request.path.rsplit("/", 1)[-1]
        for package in self.packages:
            if package.name == name:
                return json_reply(package.api_json(self.server.url), headers=self._headers())
        return json_reply({"status": 404, "message": "Page not found"}, 404, self._headers())

    def _tarball(self, request: SeenRequest) -> Reply:
        stem = request.path.rsplit("/", 1)[-1].removesuffix(".tar")
        for package in self.packages:
            if f"{package.name}-{package.version}" == stem:
                data = package.tarball()
                return bytes_reply(data, request, etag=f'"{hashlib.md5(data).hexdigest()}"')
        return Reply(403, b"<Error><Code>AccessDenied</Code></Error>", {"content-type": "application/xml"})


# -- GitHub ---------------------------------------------------------------------------------------------


@dataclass
class FakeRepo:
    name_with_owner: str
    oid: str
    files: dict[str, bytes]
    licence: str | None = "MIT"  # spdxId; None → licenseInfo null
    licence_key: str = "mit"  # what `license:` matches
    stars: int = 100
    empty: bool = False  # no default branch

    def node(self) -> dict[str, Any]:
        return {
            "nameWithOwner": self.name_with_owner,
            "stargazerCount": self.stars,
            "pushedAt": "2024-05-01T12:00:00Z",
            "isFork": False,
            "isArchived": False,
            "licenseInfo": {"spdxId": self.licence} if self.licence else None,
            "defaultBranchRef": None if self.empty else {"name": "main", "target": {"oid": self.oid}},
        }

    def tarball(self) -> bytes:
        owner, name = self.name_with_owner.split("/")
        top = f"{owner}-{name}-{self.oid[:7]}"
        files = {f"{top}/{path}": content for path, content in self.files.items()}
        return tar_bytes(files, gzip_it=True)


def cursor_for(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def index_of(cursor: str | None) -> int:
    return int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0


class FakeGitHub:
    """GitHub's GraphQL search and REST tarball endpoints (with codeload's redirect) on one LocalServer."""

    def __init__(self, server: LocalServer, repos: list[FakeRepo], *, token: str) -> None:
        self.server = server
        self.repos = repos
        self.token = token
        self.remaining = 4999
        self.reset_at = int(time.time()) + 3600
        self.queries: list[str] = []
        server.route("POST", r"/graphql", self._graphql)
        server.route("GET", r"/repos/([^/]+)/([^/]+)/tarball/(.+)", self._tarball_redirect)
        server.route("GET", r"/codeload/([^/]+)/([^/]+)/legacy\.tar\.gz/(.+)", self._codeload)

    def _authorised(self, request: SeenRequest) -> bool:
        return request.headers.get("authorization", "").lower() == f"bearer {self.token}"

    def rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-resource": "graphql",
        }

    def _graphql(self, request: SeenRequest) -> Reply:
        if not self._authorised(request):
            return json_reply(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com"}, 401
            )
        payload = request.json()
        variables = payload["variables"]
        query = variables["searchQuery"]
        self.queries.append(query)
        licence = re.search(r"license:(\S+)", query)
        matching = [r for r in self.repos if not licence or r.licence_key == licence[1]]
        start = index_of(variables.get("after"))
        page = matching[start : start + variables["first"]]
        end = start + len(page)
        data = {
            "rateLimit": {
                "remaining": self.remaining,
                "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.reset_at)),
                "cost": 1,
            },
            "search": {
                "repositoryCount": len(matching),
                "pageInfo": {
                    "hasNextPage": end < len(matching),
                    "endCursor": cursor_for(end) if page else None,
                },
                "nodes": [r.node() for r in page],
            },
        }
        return json_reply({"data": data}, headers=self.rate_headers())

    def _tarball_redirect(self, request: SeenRequest) -> Reply:
        if not self._authorised(request):
            return json_reply({"message": "Bad credentials"}, 401)
        _, _, owner, name, _, oid = request.path.split("/", 5)
        return Reply(302, b"", {"location": f"{self.server.url}/codeload/{owner}/{name}/legacy.tar.gz/{oid}"})

    def _codeload(self, request: SeenRequest) -> Reply:
        _, _, owner, name, _, oid = request.path.split("/", 5)
        for repo in self.repos:
            if repo.name_with_owner == f"{owner}/{name}" and repo.oid == oid:
                return bytes_reply(repo.tarball(), request, content_type="application/x-gzip")
        return Reply(404, b"Not Found")
