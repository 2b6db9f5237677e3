"""The Hex source: Erlang term metadata, release tarballs and the hex.pm API, against a local server."""

from __future__ import annotations

import hashlib
import random

import pytest

from finetune.records import Record, Skipped
from finetune.sources import hex as hexpm
from finetune.sources.erlang_terms import Atom, TermSyntaxError, consult, metadata_dict, parse_term
from finetune.sources.http import HttpClient
from tests.finetune.servers import (
    FakeHex,
    FakePackage,
    LocalServer,
    Reply,
    erlang_text,
    hex_tarball,
    tar_bytes,
)

# -- Erlang terms ---------------------------------------------------------------------------------------

JASON_METADATA = r"""{<<"app">>,<<"jason">>}.
{<<"build_tools">>,[<<"mix">>]}.
{<<"description">>,<<"A blazing fast JSON parser and generator in pure Elixir.">>}.
{<<"elixir">>,<<"~> 1.4">>}.
{<<"files">>,[<<"lib">>,<<"lib/jason.ex">>,<<"mix.exs">>,<<"LICENSE">>]}.
{<<"licenses">>,[<<"Apache-2.0">>]}.
{<<"links">>,[{<<"GitHub">>,<<"https://github.com/michalmuskala/jason">>}]}.
{<<"name">>,<<"jason">>}.
{<<"requirements">>,
 [[{<<"app">>,<<"decimal">>},
   {<<"name">>,<<"decimal">>},
   {<<"optional">>,true},
   {<<"repository">>,<<"hexpm">>},
   {<<"requirement">>,<<"~> 1.0 or ~> 2.0">>}]]}.
{<<"version">>,<<"1.4.4">>}.
"""


def test_hex_metadata_reads_as_a_dict():
    meta = metadata_dict(JASON_METADATA)
    assert meta["name"] == "jason" and meta["version"] == "1.4.4"
    assert meta["licenses"] == ["Apache-2.0"]
    assert meta["links"] == {"GitHub": "https://github.com/michalmuskala/jason"}
    assert meta["requirements"] == [
        {
            "app": "decimal",
            "name": "decimal",
            "optional": True,
            "repository": "hexpm",
            "requirement": "~> 1.0 or ~> 2.0",
        }
    ]
    assert meta["files"][1] == "lib/jason.ex"


def test_every_term_kind():
    text = r"""
    % a comment line
    {atom, 'Quoted Atom', true, false}.   % trailing comment
    [1, -2, +3, 16#fF, 2#101, 1_000_000, $a, $\n].
    [1.5, -0.25, 2.0e3, 6.02E-2].
    {"a string", "con" "catenated", "esc\t\"q\"\x41\x{263A}\101\^C"}.
    {<<>>, <<"bin">>, <<"caf\x{e9}">>, <<"café"/utf8>>, <<104,105>>, <<"a", 98, "c">>, <<255>>}.
    #{<<"k">> => [], a => #{}}.
    [a | [b, c]].
    """
    terms = consult(text)
    assert terms[0] == (Atom("atom"), Atom("Quoted Atom"), True, False)
    assert isinstance(terms[0][0], Atom)
    assert terms[1] == [1, -2, 3, 255, 5, 1_000_000, 97, 10]
    assert terms[2] == [1.5, -0.25, 2000.0, 0.0602]
    assert terms[3] == ("a string", "concatenated", 'esc\t"q"A\u263aA\x03')
    assert terms[4] == ("", "bin", b"caf\xe9", "café", "hi", "abc", b"\xff")
    assert terms[5] == {"k": [], Atom("a"): {}}
    assert terms[6] == [Atom("a"), Atom("b"), Atom("c")]


def test_parse_term_accepts_an_optional_full_stop():
    assert parse_term("{a, 1}") == (Atom("a"), 1)
    assert parse_term("{a, 1}.\n") == (Atom("a"), 1)


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ('{<<"name">>, <<"x">>', "1:21", "expected ',' or '}' but found end of input"),
        ('{<<"a">>,\n  <<"unterminated>>}.', "2:5", "unterminated string"),
        ("{a, B}.", "1:5", "variables are not terms"),
        ("{a, b}\n{c, d}.", "2:1", "expected '.'"),
        ("[a | b].", "1:6", "improper lists"),
        ("<<256>>.", "1:3", "byte (0..255)"),
        ('<<"x"/float>>.', "1:7", "unsupported binary segment type"),
        ("{a, ]}.", "1:5", "unexpected"),
        ("#{[1] => 2}.", "1:3", "map key"),
        ("1.5.x", "1:5", "whitespace after the terminating '.'"),
    ],
)
def test_syntax_errors_name_line_and_column(text, position, message):
    with pytest.raises(TermSyntaxError) as failure:
        consult(text, "metadata.config")
    assert f"metadata.config:{position}:" in str(failure.value)
    assert message in str(failure.value)


def test_metadata_forms_must_be_pairs():
    with pytest.raises(ValueError, match="form 2 is not a"):
        metadata_dict('{<<"name">>, <<"x">>}.\n{a, b, c}.')


def test_the_test_writer_and_the_reader_agree():
    value = {
        "links": {"Docs": "https://x"},
        "licenses": ["MIT", "Apache 2.0"],
        "text": 'quote " and \\ and é',
    }
    assert metadata_dict(f'{{<<"meta">>,{erlang_text(value)}}}.')["meta"] == value


# -- tarballs -------------------------------------------------------------------------------------------

FILES = {
    "lib/demo.ex": b"defmodule Demo do\r\n  def hello, do: :world\r\nend\r\n",
    "lib/demo/templates/page.html.eex": b"<p><%= @name %></p>\n",
    "src/demo_nif.erl": b"-module(demo_nif).\n-export([f/0]).\nf() -> ok.\n",
    "include/demo.hrl": b"-define(DEMO, 1).\n",
    "mix.exs": b"defmodule Demo.MixProject do\n  use Mix.Project\nend\n",
    "README.md": b"# Demo\n",
    "priv/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
    "LICENSE": b"MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n",
}


def test_a_valid_tarball_unpacks_and_verifies():
    data = hex_tarball({"name": "demo", "version": "1.0.0", "licenses": ["Apache 2.0"]}, FILES)
    tarball = hexpm.read_tarball(data)
    assert tarball.format_version == "3"
    assert tarball.metadata["licenses"] == ["Apache 2.0"]
    assert tarball.files == FILES
    assert hexpm.tarball_licence(tarball) == "Apache-2.0"
    assert (
        hexpm.read_tarball(data, expected_sha256=hashlib.sha256(data).hexdigest()).checksum
        == tarball.checksum
    )


def test_checksum_mismatches_are_errors():
    good = hex_tarball({"name": "demo", "version": "1.0.0"}, FILES)
    with pytest.raises(hexpm.TarballError, match="checksum mismatch"):
        hexpm.read_tarball(hex_tarball({"name": "demo", "version": "1.0.0"}, FILES, corrupt_checksum=True))
    with pytest.raises(hexpm.TarballError, match="outer checksum"):
        hexpm.read_tarball(good, expected_sha256="0" * 64)


def test_version_2_tarballs_use_metadata_exs():
    metadata = b'%{<<"name">> => <<"old">>, <<"licenses">> => [<<"MIT">>], <<"version">> => <<"0.1.0">>}'
    contents = tar_bytes({"lib/old.ex": b"defmodule Old do\nend\n"}, gzip_it=True)
    checksum = hashlib.sha256(b"2" + metadata + contents).hexdigest().upper().encode()
    data = tar_bytes(
        {"VERSION": b"2", "CHECKSUM": checksum, "metadata.exs": metadata, "contents.tar.gz": contents},
        gzip_it=False,
    )
    tarball = hexpm.read_tarball(data)
    assert hexpm.tarball_licence(tarball) == "MIT" and list(tarball.files) == ["lib/old.ex"]


@pytest.mark.parametrize(
    ("outer", "message"),
    [
        ({"VERSION": b"1"}, "unsupported tarball VERSION"),
        ({"VERSION": b"3", "CHECKSUM": b"00"}, "metadata.config is missing"),
    ],
)
def test_malformed_tarballs_are_errors(outer, message):
    with pytest.raises(hexpm.TarballError, match=message):
        hexpm.read_tarball(tar_bytes(outer, gzip_it=False))
    with pytest.raises(hexpm.TarballError, match="not a tar archive"):
        hexpm.read_tarball(b"this is not a tarball at all" * 30)


def test_paths_escaping_the_package_are_refused():
    with pytest.raises(hexpm.TarballError, match="unsafe path"):
        hexpm.read_tarball(hex_tarball({"name": "evil", "version": "1.0.0"}, {"../../etc/evil.ex": b"x"}))


def test_records_carry_provenance_and_only_code():
    tarball = hexpm.read_tarball(
        hex_tarball({"name": "demo", "version": "1.0.0", "licenses": ["MIT"]}, FILES)
    )
    release = hexpm.HexRelease("demo", "1.0.0", licence="", downloads=42)
    items = list(hexpm.records_from_tarball(tarball, release, "https://repo.hex.pm/tarballs/demo-1.0.0.tar"))
    records = [i for i in items if isinstance(i, Record)]
    assert [r.provenance.path for r in records] == [
        "include/demo.hrl",
        "lib/demo.ex",
        "lib/demo/templates/page.html.eex",
        "mix.exs",
        "src/demo_nif.erl",
    ]
    by_path = {r.provenance.path: r for r in records}
    assert by_path["lib/demo.ex"].text == "defmodule Demo do\n  def hello, do: :world\nend\n"
    assert (
        by_path["src/demo_nif.erl"].language == "erlang" and by_path["include/demo.hrl"].language == "erlang"
    )
    assert by_path["lib/demo/templates/page.html.eex"].language == "eex"
    first = by_path["lib/demo.ex"]
    assert first.kind == "code" and first.language == "elixir"
    assert first.provenance.source == "hex" and first.provenance.package == "demo"
    assert first.provenance.version == "1.0.0" and first.provenance.licence == "MIT"
    assert first.provenance.url.endswith("demo-1.0.0.tar") and first.meta["downloads"] == 42


def test_undecodable_files_are_skipped_not_fatal():
    tarball = hexpm.read_tarball(
        hex_tarball({"name": "x", "version": "1.0.0"}, {"lib/bad.ex": b"\xff\xfe bad"})
    )
    items = list(hexpm.records_from_tarball(tarball, hexpm.HexRelease("x", "1.0.0", "MIT"), "u"))
    assert items == [Skipped("x@1.0.0:lib/bad.ex", "not UTF-8")]


def test_release_choice_prefers_the_latest_stable_version():
    package = {"name": "p", "releases": [{"version": "2.0.0-rc.1"}, {"version": "1.9.0"}], "meta": {}}
    assert hexpm.pick_version(package) == "1.9.0"
    assert hexpm.pick_version(package, include_prereleases=True) == "2.0.0-rc.1"
    assert hexpm.pick_version({"latest_stable_version": "1.2.3", "releases": []}) == "1.2.3"
    assert hexpm.pick_version({"releases": []}) is None


# -- against a local hex.pm ------------------------------------------------------------------------------


def package(name: str, downloads: int, **extra) -> FakePackage:
    files = {f"lib/{name}.ex": f"defmodule {name.title()} do\nend\n".encode(), "README.md": b"# readme\n"}
    return FakePackage(name=name, version="1.0.0", files=files, downloads=downloads, **extra)


@pytest.fixture
def hex_server():
    packages = [
        package("alpha", 5000, licenses=["Apache 2.0"]),
        package("beta", 4000),
        package("gamma", 3000, corrupt=True),
        package("delta", 2000),
        package("epsilon", 10),
    ]
    with LocalServer() as server:
        yield server, FakeHex(server, packages, per_page=2)


def options(fake: FakeHex, tmp_path, **extra) -> hexpm.HexOptions:
    return hexpm.HexOptions(
        api_url=fake.api_url,
        repo_url=fake.repo_url,
        cache_dir=tmp_path / "cache",
        requests_per_second=None,
        **extra,
    )


def test_collect_top_packages_across_pages(hex_server, tmp_path):
    server, fake = hex_server
    items = list(hexpm.collect(options(fake, tmp_path, top=4)))
    records = [i for i in items if isinstance(i, Record)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [r.provenance.package for r in records] == ["alpha", "beta", "delta"]
    assert records[0].provenance.licence == "Apache-2.0" and records[1].provenance.licence == "MIT"
    assert (
        len(skipped) == 1 and skipped[0].where == "gamma@1.0.0" and "checksum mismatch" in skipped[0].reason
    )
    assert server.count("/api/packages") == 2  # pages 1 and 2 (4 packages at 2 a page)
    assert [r.query["page"] for r in server.requests_to("/api/packages")] == ["1", "2"]


def test_listing_stops_at_min_downloads_and_at_the_end(hex_server, tmp_path):
    server, fake = hex_server
    names = [
        r.provenance.package
        for r in hexpm.collect(options(fake, tmp_path, top=None, min_downloads=100))
        if isinstance(r, Record)
    ]
    assert names == ["alpha", "beta", "delta"]
    everything = list(hexpm.collect(options(fake, tmp_path, top=None)))
    assert {r.provenance.package for r in everything if isinstance(r, Record)} == {
        "alpha",
        "beta",
        "delta",
        "epsilon",
    }
    assert server.requests_to("/api/packages")[-1].query["page"] == "4"  # the empty page ends the list


def test_allow_listed_packages_are_fetched_by_name(hex_server, tmp_path):
    server, fake = hex_server
    items = list(hexpm.collect(options(fake, tmp_path, packages=("delta", "no_such_package"))))
    assert [i.provenance.package for i in items if isinstance(i, Record)] == ["delta"]
    missing = [i for i in items if isinstance(i, Skipped)]
    assert missing[0].where == "hex:no_such_package" and "404" in missing[0].reason
    assert server.count("/api/packages") == 0 and server.count("/api/packages/delta") == 1


def test_a_second_run_reuses_the_cached_tarballs(hex_server, tmp_path):
    server, fake = hex_server
    first = [i.to_json() for i in hexpm.collect(options(fake, tmp_path, top=2)) if isinstance(i, Record)]
    second = [i.to_json() for i in hexpm.collect(options(fake, tmp_path, top=2)) if isinstance(i, Record)]
    assert first == second and len(first) == 2
    assert server.count(r"/repo/tarballs/.*") == 2  # once per package, over both runs


def test_rate_limited_and_failing_requests_are_retried(hex_server, tmp_path):
    server, fake = hex_server
    server.script("GET", "/api/packages", Reply(429, b"", {"retry-after": "1"}))
    server.script("GET", "/repo/tarballs/alpha-1.0.0.tar", Reply(502, b"bad gateway"))
    waits: list[float] = []
    client = HttpClient(cache_dir=tmp_path / "cache", sleep=waits.append, rng=random.Random(3))
    with client:
        items = list(hexpm.collect(options(fake, tmp_path, top=1), client=client))
    assert [i.provenance.package for i in items if isinstance(i, Record)] == ["alpha"]
    assert waits[0] == 1.0 and len(waits) == 2
    assert server.count("/api/packages") == 2 and server.count("/repo/tarballs/alpha-1.0.0.tar") == 2


def test_a_missing_tarball_is_skipped(hex_server, tmp_path):
    server, fake = hex_server
    server.script("GET", "/repo/tarballs/alpha-1.0.0.tar", Reply(404, b"gone"))
    items = list(hexpm.collect(options(fake, tmp_path, top=2)))
    assert Skipped in {type(i) for i in items}
    assert next(i for i in items if isinstance(i, Skipped)).where == "alpha@1.0.0"
    assert [i.provenance.package for i in items if isinstance(i, Record)] == ["beta"]
