"""The GitHub source against a local server speaking GraphQL search and the tarball endpoints."""

from __future__ import annotations

import json
import logging
import random
import time

import pytest

from finetune.records import Record, Skipped
from finetune.sources import github
from finetune.sources.http import RetryPolicy
from tests.finetune.servers import FakeGitHub, FakeRepo, LocalServer, Reply, json_reply, tar_bytes

TOKEN = "ghp_local_test_token_0123456789"
ENV = {"GITHUB_TOKEN": TOKEN}


def repo(name: str, oid: str, **extra) -> FakeRepo:
    files = {
        "mix.exs": b'defmodule X.MixProject do\n  def project, do: [package: [licenses: ["MIT"]]]\nend\n',
        "lib/app.ex": f"defmodule {name.split('/')[1].title()} do\nend\n".encode(),
        "src/native.erl": b"-module(native).\n",
        "test/app_test.exs": b"defmodule AppTest do\n  use ExUnit.Case\nend\n",
        "deps/jason/lib/jason.ex": b"defmodule Jason do\nend\n",
        "_build/dev/lib/app/consolidated.ex": b"# generated\n",
        "assets/vendor/topbar.ex": b"# vendored\n",
        "README.md": b"# readme\n",
    }
    return FakeRepo(name_with_owner=name, oid=oid, files=extra.pop("files", files), **extra)


REPOS = [
    repo("acme/one", "1" * 40),
    repo("acme/two", "2" * 40),
    repo("acme/three", "3" * 40),
    repo("apache/four", "4" * 40, licence="Apache-2.0", licence_key="apache-2.0"),
    repo("acme/empty", "5" * 40, empty=True),
]


@pytest.fixture
def fake():
    with LocalServer() as server:
        yield FakeGitHub(server, REPOS, token=TOKEN)


def options(fake: FakeGitHub, tmp_path, **extra) -> github.GitHubOptions:
    defaults = {
        "api_url": fake.server.url,
        "cache_dir": tmp_path / "cache",
        "licences": ("mit", "apache-2.0"),
        "page_size": 2,
        "requests_per_second": None,
        "max_repos": None,
    }
    return github.GitHubOptions(**(defaults | extra))


def records(items) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def test_a_missing_token_is_a_clear_error_before_any_request(fake, tmp_path):
    with pytest.raises(github.GitHubTokenMissing, match="MY_GH_TOKEN"):
        list(github.collect(options(fake, tmp_path, token_env="MY_GH_TOKEN"), environ={}))
    with pytest.raises(github.GitHubTokenMissing):
        list(github.collect(options(fake, tmp_path), environ={"GITHUB_TOKEN": "  "}))
    assert fake.server.seen == []


def test_search_paginates_and_builds_the_query(fake, tmp_path):
    opts = options(fake, tmp_path, min_stars=20, pushed_after="2023-06-01")
    with github.make_client(opts, TOKEN) as client:
        found = list(
            github.search_repositories(
                client, f"{fake.server.url}/graphql", github.search_query(opts, "mit"), page_size=2
            )
        )
    names = [r.name_with_owner for r in found if isinstance(r, github.Repository)]
    assert names == ["acme/one", "acme/two", "acme/three"]
    assert [s.where for s in found if isinstance(s, Skipped)] == ["github:acme/empty"]
    assert fake.server.count("/graphql") == 2  # 4 MIT results at 2 a page
    assert (
        fake.queries[0]
        == "language:Elixir stars:>20 pushed:>2023-06-01 license:mit archived:false sort:stars"
    )
    second_page = fake.server.requests_to("/graphql")[1].json()
    assert second_page["variables"]["after"] is not None and "rateLimit" in second_page["query"]
    assert found[0] == github.Repository("acme/one", 100, "MIT", "main", "1" * 40, "2024-05-01T12:00:00Z")


def test_collect_yields_the_repositories_own_code_with_provenance(fake, tmp_path):
    items = list(github.collect(options(fake, tmp_path), environ=ENV))
    got = records(items)
    assert {r.provenance.package for r in got} == {"acme/one", "acme/two", "acme/three", "apache/four"}
    one = sorted((r for r in got if r.provenance.package == "acme/one"), key=lambda r: r.provenance.path)
    assert [r.provenance.path for r in one] == [
        "lib/app.ex",
        "mix.exs",
        "src/native.erl",
        "test/app_test.exs",
    ]
    first = one[0]
    assert first.kind == "code" and first.language == "elixir" and first.text == "defmodule One do\nend\n"
    assert first.provenance.source == "github" and first.provenance.version == "1" * 40
    assert first.provenance.licence == "MIT"
    assert first.provenance.url == f"https://github.com/acme/one/blob/{'1' * 40}/lib/app.ex"
    assert first.meta["stars"] == 100
    assert next(r for r in got if r.provenance.package == "apache/four").provenance.licence == "Apache-2.0"
    assert [i.where for i in items if isinstance(i, Skipped)] == ["github:acme/empty"]
    # The tarball endpoint redirects to codeload; the token goes to the API only.
    assert fake.server.count(r"/repos/.*/tarball/.*") == 4 and fake.server.count(r"/codeload/.*") == 4
    assert all(r.headers["authorization"] == f"bearer {TOKEN}" for r in fake.server.requests_to("/graphql"))


def test_max_repos_limits_across_licences_and_duplicates_are_taken_once(tmp_path):
    dual = repo("acme/dual", "6" * 40)
    twin = repo("acme/dual", "6" * 40, licence_key="apache-2.0")
    with LocalServer() as server:
        fake = FakeGitHub(
            server, [dual, twin, repo("apache/x", "7" * 40, licence_key="apache-2.0")], token=TOKEN
        )
        got = records(github.collect(options(fake, tmp_path), environ=ENV))
        assert sorted({r.provenance.package for r in got}) == ["acme/dual", "apache/x"]
        assert server.count(r"/repos/acme/dual/tarball/.*") == 1
        limited = records(github.collect(options(fake, tmp_path, max_repos=1), environ=ENV))
        assert {r.provenance.package for r in limited} == {"acme/dual"}


def test_vendored_and_build_folders_are_left_out():
    assert github.is_vendored("deps/jason/lib/jason.ex")
    assert github.is_vendored("apps/web/deps/x/lib/x.ex")
    assert github.is_vendored("_build/dev/lib/x.ex")
    assert github.is_vendored("assets/vendor/x.ex") and github.is_vendored("priv/static/x.ex")
    assert not github.is_vendored("lib/deps_resolver.ex")
    assert not github.is_vendored("lib/my_app/vendor.ex")


def test_licence_falls_back_to_the_repository_files():
    data = tar_bytes(
        {
            "o-r-abc/LICENSE": b"MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy",
            "o-r-abc/lib/r.ex": b"defmodule R do\nend\n",
        },
        gzip_it=True,
    )
    repository = github.Repository("o/r", 1, "", "main", "a" * 40)
    (record,) = records(github.records_from_tarball(data, repository))
    assert record.provenance.licence == "MIT" and record.provenance.path == "lib/r.ex"


def test_a_broken_tarball_is_skipped(tmp_path):
    repository = github.Repository("o/r", 1, "MIT", "main", "b" * 40)
    items = list(github.records_from_tarball(b"\x1f\x8b not really gzip", repository))
    assert len(items) == 1 and isinstance(items[0], Skipped) and items[0].reason.startswith("bad tarball")


def test_a_second_run_reuses_cached_tarballs(fake, tmp_path):
    first = [r.to_json() for r in records(github.collect(options(fake, tmp_path), environ=ENV))]
    second = [r.to_json() for r in records(github.collect(options(fake, tmp_path), environ=ENV))]
    assert first == second
    assert fake.server.count(r"/codeload/.*") == 4  # downloaded once, over both runs
    for path in (tmp_path / "cache").rglob("*"):
        assert TOKEN not in path.name
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes()


def test_token_is_never_logged(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    fake.server.script("POST", "/graphql", Reply(502, b"bad gateway"))
    list(github.collect(options(fake, tmp_path), environ=ENV))
    assert caplog.text and TOKEN not in caplog.text


def test_spent_graphql_budget_waits_for_reset_at(fake, tmp_path):
    fake.remaining = 0
    fake.reset_at = int(time.time()) + 30
    waits: list[float] = []
    opts = options(fake, tmp_path, licences=("mit",))
    with github.make_client(opts, TOKEN, sleep=waits.append, rng=random.Random(1)) as client:
        got = records(github.collect(opts, client=client, environ=ENV))
    assert {r.provenance.package for r in got} == {"acme/one", "acme/two", "acme/three"}
    assert waits and all(25 <= w <= 33 for w in waits)


def test_rate_limited_graphql_errors_and_server_errors_are_retried(fake, tmp_path):
    reset = str(int(time.time()) + 5)
    rate_limited = json_reply(
        {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]},
        headers={"x-ratelimit-remaining": "4000", "x-ratelimit-reset": reset},
    )
    fake.server.script("POST", "/graphql", rate_limited, Reply(502, b"bad gateway"))
    fake.server.script("GET", f"/repos/acme/one/tarball/{'1' * 40}", Reply(500, b"oops"))
    waits: list[float] = []
    opts = options(fake, tmp_path, licences=("mit",))
    with github.make_client(opts, TOKEN, sleep=waits.append, rng=random.Random(1)) as client:
        got = records(github.collect(opts, client=client, environ=ENV))
    assert {r.provenance.package for r in got} == {"acme/one", "acme/two", "acme/three"}
    assert 4 <= waits[0] <= 7  # until the reset, then backoff for the 502 and the 500
    assert len(waits) == 3


def test_graphql_errors_and_failed_downloads_become_skipped(fake, tmp_path):
    broken = json_reply({"data": None, "errors": [{"type": "INVALID", "message": "bad query"}]})
    fake.server.script("POST", "/graphql", broken)
    fake.server.script(
        "GET", f"/repos/apache/four/tarball/{'4' * 40}", Reply(404, b'{"message":"Not Found"}')
    )
    opts = options(fake, tmp_path, licences=("mit", "apache-2.0"))
    items = list(github.collect(opts, environ=ENV))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert "bad query" in skipped[0].reason and "license:mit" in skipped[0].where
    assert skipped[1].where.startswith("apache/four@") and "404" in skipped[1].reason
    assert records(items) == []


def test_bad_credentials_are_reported_without_retrying(fake, tmp_path):
    opts = options(fake, tmp_path, licences=("mit",))
    with github.make_client(opts, "wrong-token", retry=RetryPolicy(attempts=3)) as client:
        items = list(github.collect(opts, client=client, environ=ENV))
    assert len(items) == 1 and "401" in items[0].reason and "Bad credentials" in items[0].reason
    assert fake.server.count("/graphql") == 1
    assert json.loads(fake.server.requests_to("/graphql")[0].body)["variables"]["first"] == 2
