"""The local source on Mix projects built in tmp_path: deps as packages, licences, .gitignore, skips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.records import Record, Skipped
from finetune.sources import local
from finetune.sources.local import IgnoreRules, is_ignored

MIT_TEXT = """MIT License

Copyright (c) 2024 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
"""

APP_MIX = """defmodule MyApp.MixProject do
  use Mix.Project

  @version "0.3.1"

  def project do
    [app: :my_app, version: @version, elixir: "~> 1.14", deps: deps(), package: package()]
  end

  defp package, do: [licenses: ["MIT"], links: %{}]

  defp deps, do: [{:jason, "~> 1.4"}, {:plug, "~> 1.15"}]
end
"""

JASON_HEX_METADATA = """{<<"links">>,[{<<"GitHub">>,<<"https://github.com/michalmuskala/jason">>}]}.
{<<"name">>,<<"jason">>}.
{<<"version">>,<<"1.4.1">>}.
{<<"description">>,<<"A blazing fast JSON parser and generator in pure Elixir.">>}.
{<<"elixir">>,<<"~> 1.4">>}.
{<<"app">>,<<"jason">>}.
{<<"licenses">>,[<<"Apache-2.0">>]}.
{<<"requirements">>,[]}.
{<<"build_tools">>,[<<"mix">>]}.
"""

COWBOY_APP_SRC = """{application, cowboy, [
\t{description, "Small, fast, modern HTTP server."},
\t{vsn, "2.10.0"},
\t{modules, []},
\t{registered, [cowboy_sup]},
\t{applications, [kernel, stdlib, crypto, cowlib, ranch]},
\t{licenses, ["ISC"]},
\t{mod, {cowboy_app, []}}
]}.
"""


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mix project with deps, nested .gitignore files, build outputs and awkward files."""
    root = tmp_path_factory.mktemp("my_app")
    write(root, "mix.exs", APP_MIX)
    write(
        root,
        ".gitignore",
        "# build outputs\n/deps\n*.tmp.ex\n!keep.tmp.ex\nscratch/\n/config/dev.secret.exs\ntest/**/fixtures\n",
    )
    write(root, "lib/.gitignore", "generated_*.ex\n!generated_ok.ex\n")
    write(
        root,
        "README.md",
        "# MyApp\n\nDoes things.\n\n```elixir\nMyApp.hello()\n```\n\n    iex> 1 + 1\n    2\n",
    )
    write(root, "CHANGELOG.md", "# Changelog\n\n- 0.3.1\n")
    write(root, "guides/intro.md", "# Introduction\n\nStart here.\n")
    write(root, "guides/advanced/otp.md", "# OTP\n\nSupervisors.\n")
    write(root, "lib/my_app.ex", "defmodule MyApp do\n  def hello, do: :world\nend\n")
    write(root, "lib/my_app/worker.ex", "defmodule MyApp.Worker do\n  use GenServer\nend\n")
    write(root, "lib/my_app/page.html.eex", "<h1><%= @title %></h1>\n")
    write(root, "lib/my_app/page.html.heex", "<p>{@body}</p>\n")
    write(root, "lib/generated_schema.ex", "defmodule Generated do\nend\n")  # nested .gitignore
    write(root, "lib/generated_ok.ex", "defmodule GeneratedOk do\nend\n")  # re-included by negation
    write(root, "lib/notes.tmp.ex", "defmodule Tmp do\nend\n")  # ignored by *.tmp.ex
    write(root, "keep.tmp.ex", "defmodule Keep do\nend\n")  # re-included
    write(root, "lib/scratch/try.ex", "defmodule Try do\nend\n")  # directory-only pattern, any depth
    write(root, "config/dev.secret.exs", "import Config\n")  # anchored pattern
    write(root, "lib/config/dev.secret.exs", "import Config\nconfig :x, y: 1\n")  # not matched: anchored
    write(root, "test/my_app_test.exs", "defmodule MyAppTest do\n  use ExUnit.Case\nend\n")
    write(root, "test/support/deep/fixtures/data.ex", "defmodule Fixture do\nend\n")  # `**`
    write(root, "src/my_parser.erl", "-module(my_parser).\n-export([p/0]).\np() -> ok.\n")
    write(root, "include/records.hrl", "-record(point, {x, y}).\n")
    write(root, "src/latin.erl", "%% Caf\xe9\n-module(latin).\n".encode("latin-1"))  # Latin-1 Erlang is fine
    write(
        root, "lib/latin.ex", "# Caf\xe9\ndefmodule Latin do\nend\n".encode("latin-1")
    )  # Elixir must be UTF-8
    write(root, "lib/blob.ex", b"defmodule Blob do\x00\x01\x02 end\n")
    write(root, "lib/empty.ex", "\n\n")
    write(root, "priv/repo/seeds.exs", "IO.puts(:seed)\n")
    write(root, "assets/app.js", "console.log(1)\n")
    # Never sources, even though no .gitignore names them:
    write(root, "_build/dev/lib/my_app/consolidated.ex", "defmodule Built do\nend\n")
    write(root, "node_modules/pkg/index.ex", "defmodule NodeModule do\nend\n")
    write(root, "priv/static/assets/app.ex", "defmodule Digest do\nend\n")
    write(root, ".git/hooks/pre-commit.exs", "IO.puts(:hook)\n")

    # deps/: a Hex package (metadata.config), a git dep with mix.exs + LICENSE, a rebar dep, an unknown one.
    write(root, "deps/jason/hex_metadata.config", JASON_HEX_METADATA)
    write(
        root,
        "deps/jason/mix.exs",
        'defmodule Jason.MixProject do\n  def project, do: [app: :jason, version: "1.4.1"]\nend\n',
    )
    write(root, "deps/jason/lib/jason.ex", "defmodule Jason do\n  def decode(x), do: x\nend\n")
    write(root, "deps/jason/README.md", "# Jason\n\nFast JSON.\n")
    write(
        root,
        "deps/plug/mix.exs",
        'defmodule Plug.MixProject do\n  @version "1.15.3"\n  def project, do: [app: :plug, version: @version]\nend\n',
    )
    write(root, "deps/plug/LICENSE", MIT_TEXT)
    write(root, "deps/plug/.gitignore", "/bench\n")
    write(root, "deps/plug/lib/plug.ex", "defmodule Plug do\nend\n")
    write(root, "deps/plug/bench/run.exs", "IO.puts(:bench)\n")
    write(root, "deps/plug/deps/nested/lib/nested.ex", "defmodule Nested do\nend\n")
    write(root, "deps/cowboy/src/cowboy.app.src", COWBOY_APP_SRC)
    write(root, "deps/cowboy/src/cowboy.erl", "-module(cowboy).\n-export([start/0]).\nstart() -> ok.\n")
    write(root, "deps/mystery/lib/mystery.ex", "defmodule Mystery do\nend\n")
    return root


def records_of(items: list[Record | Skipped]) -> dict[tuple[str, str], Record]:
    return {(i.provenance.package, i.provenance.path): i for i in items if isinstance(i, Record)}


def skipped_of(items: list[Record | Skipped], root: Path) -> dict[str, str]:
    return {Path(s.where).relative_to(root).as_posix(): s.reason for s in items if isinstance(s, Skipped)}


@pytest.fixture(scope="module")
def collected(project: Path) -> list[Record | Skipped]:
    return list(local.collect([project]))


def test_project_files_and_their_provenance(collected: list[Record | Skipped]) -> None:
    records = records_of(collected)
    mine = sorted(path for package, path in records if package == "my_app")
    assert mine == [
        "README.md",
        "guides/advanced/otp.md",
        "guides/intro.md",
        "include/records.hrl",
        "keep.tmp.ex",
        "lib/config/dev.secret.exs",
        "lib/generated_ok.ex",
        "lib/my_app.ex",
        "lib/my_app/page.html.eex",
        "lib/my_app/page.html.heex",
        "lib/my_app/worker.ex",
        "mix.exs",
        "priv/repo/seeds.exs",
        "src/latin.erl",
        "src/my_parser.erl",
        "test/my_app_test.exs",
    ]
    hello = records[("my_app", "lib/my_app.ex")]
    assert hello.kind == "code" and hello.language == "elixir"
    assert hello.text == "defmodule MyApp do\n  def hello, do: :world\nend\n"
    assert (hello.provenance.source, hello.provenance.version, hello.provenance.licence) == (
        "local",
        "0.3.1",
        "MIT",
    )
    assert hello.meta == {"project": "my_app", "dependency": False}
    assert records[("my_app", "src/my_parser.erl")].language == "erlang"
    assert records[("my_app", "include/records.hrl")].language == "erlang"
    assert records[("my_app", "lib/my_app/page.html.eex")].language == "eex"
    assert records[("my_app", "src/latin.erl")].text.startswith("%% Café")


def test_doc_pages_are_readme_and_guides_with_blocks(collected: list[Record | Skipped]) -> None:
    records = records_of(collected)
    readme = records[("my_app", "README.md")]
    assert (readme.kind, readme.language, readme.meta["title"]) == ("doc", "markdown", "MyApp")
    assert [(b.type, b.language) for b in readme.blocks] == [
        ("prose", ""),
        ("code", "elixir"),
        ("code", "iex"),
    ]
    assert readme.blocks[1].text == "MyApp.hello()"
    assert records[("my_app", "guides/advanced/otp.md")].meta["title"] == "OTP"
    assert ("my_app", "CHANGELOG.md") not in records


def test_gitignore_rules_and_build_folders(collected: list[Record | Skipped]) -> None:
    paths = {path for _, path in records_of(collected)}
    for ignored in (
        "lib/generated_schema.ex",  # nested .gitignore
        "lib/notes.tmp.ex",  # glob
        "lib/scratch/try.ex",  # directory-only pattern at depth
        "config/dev.secret.exs",  # anchored
        "test/support/deep/fixtures/data.ex",  # `**`
        "_build/dev/lib/my_app/consolidated.ex",
        "node_modules/pkg/index.ex",
        "priv/static/assets/app.ex",
        ".git/hooks/pre-commit.exs",
    ):
        assert ignored not in paths


def test_deps_are_packages_with_their_own_metadata(collected: list[Record | Skipped]) -> None:
    records = records_of(collected)
    jason = records[("jason", "lib/jason.ex")]
    assert (jason.provenance.version, jason.provenance.licence) == ("1.4.1", "Apache-2.0")
    assert jason.meta == {"project": "my_app", "dependency": True}
    assert records[("jason", "README.md")].kind == "doc"
    plug = records[("plug", "lib/plug.ex")]
    assert (plug.provenance.version, plug.provenance.licence) == ("1.15.3", "MIT")
    cowboy = records[("cowboy", "src/cowboy.erl")]
    assert (cowboy.provenance.version, cowboy.provenance.licence) == ("2.10.0", "ISC")
    mystery = records[("mystery", "lib/mystery.ex")]
    assert (mystery.provenance.version, mystery.provenance.licence) == ("", "")
    assert ("plug", "bench/run.exs") not in records  # the dependency's own .gitignore
    assert not any(path.endswith("nested.ex") for _, path in records)  # deps of deps: Mix flattens them


def test_bad_files_are_skipped_with_reasons(project: Path, collected: list[Record | Skipped]) -> None:
    skipped = skipped_of(collected, project)
    assert skipped["lib/latin.ex"].startswith("not UTF-8")
    assert skipped["lib/blob.ex"].startswith("binary")
    assert skipped["lib/empty.ex"] == "empty"


def test_without_deps_and_size_limit(project: Path) -> None:
    items = list(local.collect([project], include_deps=False, max_bytes=60))
    assert {package for package, _ in records_of(items)} == {"my_app"}
    skipped = skipped_of(items, project)
    assert skipped["README.md"].startswith("too large")


def test_single_files_missing_paths_and_json_round_trip(project: Path, tmp_path: Path) -> None:
    items = list(
        local.collect([project / "lib/my_app/worker.ex", tmp_path / "nope", project / "assets/app.js"])
    )
    record, missing, unused = items
    assert isinstance(record, Record)
    assert (record.provenance.package, record.provenance.path, record.provenance.licence) == (
        "my_app",
        "lib/my_app/worker.ex",
        "MIT",
    )
    assert missing == Skipped(str(tmp_path / "nope"), "no such file or folder")
    assert isinstance(unused, Skipped) and unused.reason == "not a source or documentation file"
    readme = next(r for r in local.collect([project / "README.md"]) if isinstance(r, Record))
    assert Record.from_json(json.loads(json.dumps(readme.to_json()))) == readme


def test_umbrella_apps_are_packages_inheriting_the_licence(tmp_path: Path) -> None:
    write(
        tmp_path, "mix.exs", 'defmodule Umbrella.MixProject do\n  def project, do: [apps_path: "apps"]\nend\n'
    )
    write(tmp_path, "LICENSE", MIT_TEXT)
    write(
        tmp_path,
        "apps/core/mix.exs",
        'defmodule Core.MixProject do\n  def project, do: [app: :core, version: "2.0.0"]\nend\n',
    )
    write(tmp_path, "apps/core/lib/core.ex", "defmodule Core do\nend\n")
    write(tmp_path, "deps/dep_a/lib/dep_a.ex", "defmodule DepA do\nend\n")
    records = records_of(list(local.collect([tmp_path])))
    core = records[("core", "lib/core.ex")]
    assert (core.provenance.version, core.provenance.licence) == ("2.0.0", "MIT")
    assert core.meta["project"] == tmp_path.name
    assert ("dep_a", "lib/dep_a.ex") in records


def test_is_ignored_follows_git_semantics() -> None:
    root = IgnoreRules.from_lines(["*.log", "!important.log", "build/", "/top.ex", "docs/**/draft.md", "# c"])
    nested = IgnoreRules.from_lines(["!debug.log", "local.ex"], base="lib")
    rules = [root, nested]
    assert is_ignored("a.log", False, rules)
    assert not is_ignored("important.log", False, rules)
    assert is_ignored("build", True, rules) and is_ignored("x/build", True, rules)
    assert not is_ignored("build", False, rules)  # directory-only pattern, and `build` is a file
    assert is_ignored("top.ex", False, rules) and not is_ignored("lib/top.ex", False, rules)
    assert is_ignored("docs/draft.md", False, rules) and is_ignored("docs/a/b/draft.md", False, rules)
    assert not is_ignored("other/docs/draft.md", False, rules)
    assert is_ignored("lib/x/debug.log", True, [root]) and not is_ignored("lib/x/debug.log", False, rules)
    assert is_ignored("lib/local.ex", False, rules) and not is_ignored("local.ex", False, rules)


def test_package_metadata_parsers() -> None:
    assert local.mix_project_info(APP_MIX) == ("my_app", "0.3.1")
    assert local.mix_project_info('[app: :x, version: "1.0.0-rc.1"]') == ("x", "1.0.0-rc.1")
    assert local.mix_project_info("[version: version()]") == ("", "")
    assert local.hex_metadata_info(JASON_HEX_METADATA) == ("jason", "1.4.1", "Apache-2.0")
    assert local.app_src_info(COWBOY_APP_SRC) == ("cowboy", "2.10.0", "ISC")
    with pytest.raises(ValueError):
        local.hex_metadata_info('{<<"name">>, <<"broken"')


def test_damaged_hex_metadata_falls_back_to_mix_exs(tmp_path: Path) -> None:
    write(tmp_path, "hex_metadata.config", '{<<"name">>,<<"oops"')
    write(tmp_path, "mix.exs", '[app: :fallback, version: "0.1.0", licenses: ["BSD-3-Clause"]]')
    assert local.package_info(tmp_path) == local.PackageInfo("fallback", "0.1.0", "BSD-3-Clause")
