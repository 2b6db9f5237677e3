"""HTTP for the network sources (Hex.pm, GitHub): polite, persistent and safe with secrets.

- Retries with exponential backoff and jitter on 429, 5xx and connection errors.
- Rate limits: `Retry-After` (seconds or an HTTP date) and `x-ratelimit-remaining`/`x-ratelimit-reset`
  (Hex.pm and GitHub both send a Unix time) are honoured; when a response says the budget is spent,
  the next request waits for the reset instead of burning a failure.
- A requests-per-second cap shared by every request of the client.
- A download cache that is content-addressed (`objects/<sha256>`) with a URL index, so a finished
  download is reused and identical content is stored once. Downloads go to a `.part` file first and
  are renamed into place when complete; an interrupted download resumes with an HTTP Range request.

Secrets (an `Authorization` header, `access_token`-style query parameters) are never logged, never
part of cache keys and never written into the cache.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; credentials in a query string must not follow it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())

USER_AGENT = "devstral-elixir-finetune/0.1 (+dataset collection)"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Query parameters that carry credentials; dropped from logs and cache keys.
SECRET_QUERY_KEYS = frozenset(
    {"access_token", "token", "api_key", "apikey", "key", "client_secret", "signature", "sig", "password"}
)
CHUNK_BYTES = 1 << 16


class HttpError(Exception):
    """A request that failed for good. The message names the URL without its secrets."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{redact_url(url)}: {message}")
        self.url = redact_url(url)
        self.status = status


class RateLimitTooLong(HttpError):
    """The server asks to wait longer than the client is allowed to (RetryPolicy.max_wait)."""


class ChecksumMismatch(HttpError):
    """A download whose SHA-256 differs from the one the caller expected."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first included
    backoff_base: float = 0.5  # seconds before the first retry (doubling after each)
    backoff_max: float = 60.0
    max_wait: float = 3600.0  # the longest rate-limit wait honoured; longer ones fail the request


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # redacted

    def json(self) -> Any:
        return json.loads(self.body)


# -- pure helpers ---------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with credentials removed: user:password@ and secret query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in SECRET_QUERY_KEYS
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def cache_key(url: str) -> str:
    """The cache's name for a URL: a hash of its redacted form, so no secret can reach the disk."""
    return hashlib.sha256(redact_url(url).encode("utf-8")).hexdigest()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def rate_limit_reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the rate-limit window resets, when the response says none are left; else None."""
    remaining = headers.get("x-ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset")
    if remaining is None or reset is None:
        return None
    try:
        if int(float(remaining)) > 0:
            return None
        return max(0.0, float(reset) - now)
    except ValueError:
        return None


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so clients spread out."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2**attempt))
    return ceiling / 2 + rng.random() * ceiling / 2


class RateGate:
    """At most `per_second` request starts per second, across threads."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


# -- the client -----------------------------------------------------------------------------------------


class HttpClient:
    """A synchronous client for the collectors. Use as a context manager or call `close()`.

    `sleep`, `clock` and `rng` are injectable so that tests can observe waits without spending them.
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        headers: Mapping[str, str] | None = None,
        requests_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._gate = RateGate(requests_per_second, clock=clock, sleep=sleep)
        self._resume_at = 0.0  # when the server's rate-limit window reopens (Unix time)
        self._lock = threading.Lock()
        self.requests_sent = 0
        self._client = httpx.Client(
            headers={"user-agent": user_agent, **dict(headers or {})},
            timeout=timeout,
            follow_redirects=True,  # GitHub tarballs redirect to codeload; httpx drops auth across hosts
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- waiting ----------------------------------------------------------------------------------------

    def now(self) -> float:
        """The client's clock (Unix time), which rate-limit resets are compared with."""
        return self._clock()

    def wait_until(self, when: float, reason: str, url: str = "") -> None:
        """Sleep until Unix time `when` (a rate-limit reset); refuse waits beyond the policy's maximum."""
        delay = when - self._clock()
        if delay <= 0:
            return
        if delay > self.retry.max_wait:
            raise RateLimitTooLong(url or "rate limit", f"{reason}: reset in {delay:.0f} s exceeds max_wait")
        log.info("waiting %.1f s: %s", delay, reason)
        self._sleep(delay)
        with self._lock:
            if self._resume_at <= when:
                self._resume_at = 0.0

    def _before_request(self, url: str) -> None:
        with self._lock:
            resume_at = self._resume_at
        if resume_at:
            self.wait_until(resume_at, "rate limit exhausted", url)
        self._gate.wait()
        with self._lock:
            self.requests_sent += 1

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        wait = rate_limit_reset_wait(headers, self._clock())
        with self._lock:
            self._resume_at = self._clock() + wait if wait else 0.0

    def _retry_wait(self, status: int, headers: httpx.Headers, attempt: int) -> float | None:
        """How long to wait before retrying a failed status; None when retrying cannot help."""
        now = self._clock()
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        reset_wait = rate_limit_reset_wait(headers, now)
        if status in (403, 429) and retry_after is not None:  # GitHub's secondary limits use 403
            return retry_after
        if status in (403, 429) and reset_wait is not None:
            return reset_wait + 1.0  # the reset second itself may still be refused
        if status == 503 and retry_after is not None:
            return retry_after
        if status in RETRYABLE_STATUSES:
            return backoff_delay(attempt, self.retry, self._rng)
        return None

    def _pause_before_retry(self, url: str, delay: float, why: str, attempt: int) -> None:
        if delay > self.retry.max_wait:
            raise RateLimitTooLong(url, f"{why}: asked to wait {delay:.0f} s, more than max_wait")
        log.warning("%s %s; retry %d in %.1f s", redact_url(url), why, attempt + 1, delay)
        with self._lock:
            covers_reset = self._resume_at <= self._clock() + delay
        self._sleep(delay)
        if covers_reset:  # the server's rate-limit wait has been served by this one
            with self._lock:
                self._resume_at = 0.0

    # -- requests ---------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request with retries; a 2xx/3xx reply or HttpError."""
        last_problem = "no attempt made"
        for attempt in range(self.retry.attempts):
            self._before_request(url)
            try:
                response = self._client.request(method, url, params=params, json=json_body, headers=headers)
            except httpx.TransportError as exc:
                last_problem = f"connection error ({type(exc).__name__})"
                if attempt + 1 < self.retry.attempts:
                    self._pause_before_retry(
                        url, backoff_delay(attempt, self.retry, self._rng), last_problem, attempt
                    )
                continue
            self._note_rate_limit(response.headers)
            if response.status_code < 400:
                return Reply(response.status_code, response.headers, response.content, redact_url(url))
            last_problem = f"HTTP {response.status_code}"
            wait = self._retry_wait(response.status_code, response.headers, attempt)
            if wait is None:
                raise HttpError(url, f"{last_problem}: {_short(response.content)}", response.status_code)
            if attempt + 1 < self.retry.attempts:
                self._pause_before_retry(url, wait, last_problem, attempt)
        raise HttpError(url, f"gave up after {self.retry.attempts} attempts: {last_problem}")

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        reply = self.request("GET", url, params=params, headers={"accept": "application/json"})
        try:
            return reply.json()
        except ValueError as exc:
            raise HttpError(url, f"response is not JSON ({exc})", reply.status) from None

    # -- the download cache ------------------------------------------------------------------------------

    def _cache_paths(self, url: str) -> tuple[Path, Path, Path]:
        if self.cache_dir is None:
            raise ValueError("download() needs a cache_dir")
        key = cache_key(url)
        return (
            self.cache_dir / "index" / f"{key}.json",
            self.cache_dir / "partial" / f"{key}.part",
            self.cache_dir / "partial" / f"{key}.validator",
        )

    def _object_path(self, digest: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / "objects" / digest[:2] / digest

    def cached(self, url: str, sha256: str | None = None) -> Path | None:
        """The cached content of `url` when a complete, intact download is there."""
        index_path, _, _ = self._cache_paths(url)
        try:
            entry = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        digest = str(entry.get("sha256", ""))
        if sha256 and digest != sha256.lower():
            return None
        path = self._object_path(digest)
        if not path.is_file() or path.stat().st_size != entry.get("size"):
            return None
        return path

    def download(self, url: str, *, sha256: str | None = None) -> Path:
        """The path of `url`'s content in the cache, downloading (or resuming) it when needed.

        With `sha256`, a download with other content raises ChecksumMismatch and is not kept.
        """
        hit = self.cached(url, sha256)
        if hit is not None:
            log.debug("cache hit %s", redact_url(url))
            return hit
        index_path, partial, validator_path = self._cache_paths(url)
        partial.parent.mkdir(parents=True, exist_ok=True)
        last_problem = "no attempt made"
        for attempt in range(self.retry.attempts):
            self._before_request(url)
            outcome = self._fetch_into(url, partial, validator_path, attempt)
            if outcome is None:
                break
            last_problem, wait = outcome
            if attempt + 1 < self.retry.attempts and wait:
                self._pause_before_retry(url, wait, last_problem, attempt)
        else:
            raise HttpError(url, f"gave up after {self.retry.attempts} attempts: {last_problem}")
        return self._finish(url, partial, validator_path, index_path, sha256)

    def _fetch_into(
        self, url: str, partial: Path, validator_path: Path, attempt: int
    ) -> tuple[str, float] | None:
        """One attempt: None when `partial` is complete, else (problem, seconds to wait before retrying)."""
        have = partial.stat().st_size if partial.exists() else 0
        # Identity encoding: a Range offset counts bytes of the stored entity, not of a gzip stream.
        headers = {"accept-encoding": "identity"}
        validator = validator_path.read_text(encoding="utf-8") if have and validator_path.exists() else ""
        if have:
            headers["range"] = f"bytes={have}-"
            if validator:
                headers["if-range"] = validator  # a changed resource answers 200 with the whole body
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self._note_rate_limit(response.headers)
                if response.status_code == 416:  # the partial is not a prefix of this resource
                    partial.unlink(missing_ok=True)
                    return "HTTP 416 for a resumed download; restarting", 0.0
                if response.status_code >= 400:
                    wait = self._retry_wait(response.status_code, response.headers, attempt)
                    if wait is None:
                        response.read()
                        raise HttpError(
                            url,
                            f"HTTP {response.status_code}: {_short(response.content)}",
                            response.status_code,
                        )
                    return f"HTTP {response.status_code}", wait
                resuming = bool(have) and response.status_code == 206
                new_validator = response.headers.get("etag") or response.headers.get("last-modified") or ""
                if not resuming:
                    validator_path.write_text(new_validator, encoding="utf-8")
                with partial.open("ab" if resuming else "wb") as out:
                    # No chunk size: httpx's chunker would hold back bytes that a cut connection then loses.
                    for chunk in response.iter_raw():
                        out.write(chunk)
        except httpx.TransportError as exc:
            # What arrived stays in `partial`; the next attempt asks for the rest.
            return f"connection error ({type(exc).__name__})", backoff_delay(attempt, self.retry, self._rng)
        return None

    def _finish(
        self, url: str, partial: Path, validator_path: Path, index_path: Path, sha256: str | None
    ) -> Path:
        digest = _file_sha256(partial)
        if sha256 and digest != sha256.lower():
            partial.unlink(missing_ok=True)
            validator_path.unlink(missing_ok=True)
            raise ChecksumMismatch(url, f"SHA-256 {digest} differs from the expected {sha256.lower()}")
        target = self._object_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = partial.stat().st_size
        os.replace(partial, target)
        validator_path.unlink(missing_ok=True)
        entry = {"url": redact_url(url), "sha256": digest, "size": size, "fetched_at": int(self._clock())}
        _write_atomically(index_path, json.dumps(entry, indent=1).encode("utf-8"))
        return target

    def download_bytes(self, url: str, *, sha256: str | None = None) -> bytes:
        """The content of `url`: through the cache when there is one, else straight into memory."""
        if self.cache_dir is not None:
            return self.download(url, sha256=sha256).read_bytes()
        data = self.request("GET", url).body
        if sha256 and hashlib.sha256(data).hexdigest() != sha256.lower():
            raise ChecksumMismatch(url, "SHA-256 differs from the expected one")
        return data


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _short(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(body) > limit else "")
