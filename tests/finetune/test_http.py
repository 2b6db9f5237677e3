"""The network sources' HTTP client against a real local server: retries, rate limits, cache, secrets."""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from finetune.sources.http import (
    ChecksumMismatch,
    HttpClient,
    HttpError,
    RateLimitTooLong,
    RetryPolicy,
    backoff_delay,
    cache_key,
    parse_retry_after,
    redact_url,
)
from tests.finetune.servers import LocalServer, Reply, bytes_reply, json_reply


class Sleeps:
    """Records the waits a client asks for instead of spending them; its clock moves on by them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    def clock(self) -> float:
        return time.time() + sum(self.waits)


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def make_client(tmp_path: Path | None = None, **options) -> tuple[HttpClient, Sleeps]:
    sleeps = Sleeps()
    client = HttpClient(
        cache_dir=tmp_path,
        sleep=sleeps,
        clock=sleeps.clock,
        rng=random.Random(7),
        retry=options.pop("retry", RetryPolicy()),
        **options,
    )
    return client, sleeps


# -- pure helpers ---------------------------------------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates():
    now = time.time()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    in_ten = parse_retry_after(formatdate(now + 10, usegmt=True), now)
    assert in_ten is not None and 8.5 <= in_ten <= 10.5
    assert parse_retry_after(formatdate(now - 100, usegmt=True), now) == 0.0


def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [backoff_delay(attempt, policy, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered, not fixed


def test_redaction_removes_credentials_but_keeps_the_rest():
    url = "https://user:pw@example.com/api/x?page=2&access_token=SECRET&token=S2"
    assert redact_url(url) == "https://example.com/api/x?page=2"
    assert cache_key(url) == cache_key("https://example.com/api/x?page=2")


# -- retries --------------------------------------------------------------------------------------------


def test_server_errors_are_retried_with_growing_backoff(server):
    server.script("GET", "/flaky", Reply(500, b"oops"), Reply(503, b"busy"))
    server.route("GET", "/flaky", lambda r: json_reply({"ok": True}))
    client, sleeps = make_client()
    with client:
        assert client.get_json(f"{server.url}/flaky") == {"ok": True}
    assert server.count("/flaky") == 3
    assert len(sleeps.waits) == 2 and 0 < sleeps.waits[0] <= sleeps.waits[1]


def test_429_honours_retry_after(server):
    server.script("GET", "/limited", Reply(429, b"slow down", {"retry-after": "3"}))
    server.route("GET", "/limited", lambda r: json_reply([1, 2]))
    client, sleeps = make_client()
    with client:
        assert client.get_json(f"{server.url}/limited") == [1, 2]
    assert sleeps.waits == [3.0]


def test_secondary_rate_limit_403_with_retry_after_is_retried(server):
    server.script(
        "GET", "/secondary", Reply(403, b'{"message":"secondary rate limit"}', {"retry-after": "2"})
    )
    server.route("GET", "/secondary", lambda r: json_reply("fine"))
    client, sleeps = make_client()
    with client:
        assert client.get_json(f"{server.url}/secondary") == "fine"
    assert sleeps.waits == [2.0]


def test_exhausted_rate_limit_waits_for_the_reset(server):
    reset = int(time.time()) + 100
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    server.script("GET", "/primary", Reply(403, b'{"message":"API rate limit exceeded"}', headers))
    server.route("GET", "/primary", lambda r: json_reply("after reset"))
    client, sleeps = make_client()
    with client:
        assert client.get_json(f"{server.url}/primary") == "after reset"
    assert len(sleeps.waits) == 1 and 97.0 <= sleeps.waits[0] <= 101.5  # until the reset, plus a second


def test_a_spent_budget_delays_the_next_request_not_the_current_one(server):
    reset = int(time.time()) + 100
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    server.script("GET", "/page", json_reply("first", headers=spent))
    server.route("GET", "/page", lambda r: json_reply("second"))
    client, sleeps = make_client()
    with client:
        assert client.get_json(f"{server.url}/page") == "first"
        assert sleeps.waits == []
        assert client.get_json(f"{server.url}/page") == "second"
    assert len(sleeps.waits) == 1 and 97.0 <= sleeps.waits[0] <= 100.5


def test_a_wait_longer_than_allowed_fails_clearly(server):
    server.route("GET", "/closed", lambda r: Reply(429, b"", {"retry-after": "7200"}))
    client, _ = make_client(retry=RetryPolicy(max_wait=60))
    with client, pytest.raises(RateLimitTooLong, match="7200"):
        client.get_json(f"{server.url}/closed")
    assert server.count("/closed") == 1


def test_client_errors_are_not_retried(server):
    client, sleeps = make_client()
    with client, pytest.raises(HttpError) as failure:
        client.get_json(f"{server.url}/missing")
    assert failure.value.status == 404
    assert server.count("/missing") == 1 and sleeps.waits == []


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, sleeps = make_client(retry=RetryPolicy(attempts=3))
    with client, pytest.raises(HttpError, match="3 attempts: connection error"):
        client.get_json(f"http://127.0.0.1:{port}/x")
    assert len(sleeps.waits) == 2


def test_requests_per_second_cap_spaces_requests(server):
    server.route("GET", "/tick", lambda r: json_reply(1))
    with HttpClient(requests_per_second=20) as client:
        started = time.monotonic()
        for _ in range(5):
            client.get_json(f"{server.url}/tick")
        elapsed = time.monotonic() - started
    assert elapsed >= 4 / 20 * 0.95


# -- the download cache ---------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


def test_a_finished_download_is_reused(server, tmp_path):
    server.route("GET", "/blob", lambda r: bytes_reply(PAYLOAD, r, etag='"v1"'))
    client, _ = make_client(tmp_path)
    with client:
        first = client.download(f"{server.url}/blob")
        second = client.download(f"{server.url}/blob")
    assert first == second and first.read_bytes() == PAYLOAD
    assert first.name == hashlib.sha256(PAYLOAD).hexdigest()  # content-addressed
    assert server.count("/blob") == 1
    # A new client on the same folder (a second run) reuses it too.
    with HttpClient(cache_dir=tmp_path) as again:
        assert again.download_bytes(f"{server.url}/blob") == PAYLOAD
    assert server.count("/blob") == 1


def test_identical_content_under_two_urls_is_stored_once(server, tmp_path):
    server.route("GET", "/a|/b", lambda r: bytes_reply(PAYLOAD, r))
    client, _ = make_client(tmp_path)
    with client:
        assert client.download(f"{server.url}/a") == client.download(f"{server.url}/b")
    assert len(list((tmp_path / "objects").rglob("*"))) == 2  # one folder, one object


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.script(
        "GET", "/big", Reply(200, PAYLOAD, {"etag": '"v1"', "accept-ranges": "bytes"}, cut_after=30_000)
    )
    server.route("GET", "/big", lambda r: bytes_reply(PAYLOAD, r, etag='"v1"'))
    client, sleeps = make_client(tmp_path)
    with client:
        path = client.download(f"{server.url}/big")
    assert path.read_bytes() == PAYLOAD
    resumed = server.requests_to("/big")[1]
    assert resumed.headers["range"] == "bytes=30000-" and resumed.headers["if-range"] == '"v1"'
    assert len(sleeps.waits) == 1
    assert not list((tmp_path / "partial").glob("*.part"))


def test_a_resource_that_changed_meanwhile_is_downloaded_whole(server, tmp_path):
    newer = PAYLOAD[::-1]
    server.script("GET", "/moving", Reply(200, PAYLOAD, {"etag": '"old"'}, cut_after=10_000))
    server.route("GET", "/moving", lambda r: bytes_reply(newer, r, etag='"new"'))  # If-Range fails → 200
    client, _ = make_client(tmp_path)
    with client:
        assert client.download(f"{server.url}/moving").read_bytes() == newer


def test_unexpected_content_is_refused_and_not_cached(server, tmp_path):
    server.route("GET", "/blob", lambda r: bytes_reply(PAYLOAD, r))
    client, _ = make_client(tmp_path)
    with client, pytest.raises(ChecksumMismatch):
        client.download(f"{server.url}/blob", sha256="0" * 64)
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*"))
    assert not list((tmp_path / "partial").glob("*.part"))
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    with HttpClient(cache_dir=tmp_path) as again:
        assert again.download(f"{server.url}/blob", sha256=expected.upper()).read_bytes() == PAYLOAD


def test_secrets_never_reach_logs_cache_or_errors(server, tmp_path, caplog):
    secret_header, secret_query = "ghp_header_secret_123", "query_secret_456"
    server.script("GET", "/private", Reply(500, b"retry me"))
    server.route("GET", "/private", lambda r: bytes_reply(PAYLOAD, r))
    caplog.set_level(logging.DEBUG)
    client, _ = make_client(tmp_path, headers={"authorization": f"bearer {secret_header}"})
    with client:
        client.download(f"{server.url}/private?access_token={secret_query}")
        with pytest.raises(HttpError) as failure:
            client.get_json(f"{server.url}/nothing?token={secret_query}")
    assert server.requests_to("/private")[0].headers["authorization"] == f"bearer {secret_header}"
    for secret in (secret_header, secret_query):
        assert secret not in caplog.text
        assert secret not in str(failure.value)
        for path in tmp_path.rglob("*"):
            assert secret not in str(path)
            if path.is_file():
                assert secret.encode() not in path.read_bytes()
