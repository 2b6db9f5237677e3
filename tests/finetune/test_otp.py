"""The OTP source against the installed Debian erlang-src, and on a small OTP-shaped tree built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.records import Record, Skipped
from finetune.sources import otp

installed = pytest.mark.skipif(
    not any(otp.DEFAULT_ROOT.glob("stdlib-*/src/lists.erl")),
    reason="Erlang/OTP sources are not installed (apt: erlang-src)",
)


@pytest.fixture(scope="module")
def stdlib_and_compiler() -> list[Record | Skipped]:
    return list(otp.collect(apps=["stdlib", "compiler"]))


def by_path(items: list[Record | Skipped]) -> dict[tuple[str, str], Record]:
    return {(i.provenance.package, i.provenance.path): i for i in items if isinstance(i, Record)}


@installed
def test_installed_stdlib_sources_with_provenance(stdlib_and_compiler: list[Record | Skipped]) -> None:
    records = by_path(stdlib_and_compiler)
    lists = records[("stdlib", "src/lists.erl")]
    stdlib_dir = next(otp.DEFAULT_ROOT.glob("stdlib-*"))
    assert (lists.kind, lists.language) == ("code", "erlang")
    assert lists.provenance.source == "otp" and lists.provenance.licence == "Apache-2.0"
    assert lists.provenance.version == stdlib_dir.name.split("-", 1)[1]
    assert "-module(lists)." in lists.text
    assert lists.text == (stdlib_dir / "src/lists.erl").read_text(encoding="utf-8")
    assert ("stdlib", "include/ms_transform.hrl") in records  # public headers
    assert ("stdlib", "src/erl_lint.erl") in records  # mentions "generated" in code, hand-written
    assert {package for package, _ in records} == {"stdlib", "compiler"}
    if any(otp.DEFAULT_ROOT.parent.glob("releases/*/OTP_VERSION")):
        assert lists.meta["otp_version"].split(".")[0].isdigit()


@installed
def test_installed_generated_files_are_skipped(stdlib_and_compiler: list[Record | Skipped]) -> None:
    skipped = {Path(s.where).name: s.reason for s in stdlib_and_compiler if isinstance(s, Skipped)}
    assert skipped["erl_parse.erl"].startswith("generated parser")  # yecc output
    assert skipped["core_parse.erl"].startswith("generated parser")
    assert skipped["beam_opcodes.erl"].startswith("generated")  # beam_makeops output
    assert skipped["otp_internal.erl"].startswith("generated")
    assert all(reason.startswith("generated") for reason in skipped.values())


@installed
def test_whole_install_counts() -> None:
    items = list(otp.collect())
    records = [i for i in items if isinstance(i, Record)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    # Debian's OTP 25 ships ~1,250 .erl files; wx bindings and parsers among them are generated.
    assert len(records) > 900
    assert len({r.provenance.package for r in records}) > 30
    assert sum(1 for s in skipped if s.reason.startswith("generated")) > 100
    assert not any(r.provenance.package == "wx" and r.provenance.path.startswith("src/gen/") for r in records)


def write(root: Path, relative: str, content: str | bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def test_an_otp_tree_built_here(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(tmp_path, "releases/26/OTP_VERSION", "26.1.2\n")
    write(lib, "myapp-1.2.3/src/myapp.erl", "-module(myapp).\n%% an error is generated if X < 0\n")
    write(lib, "myapp-1.2.3/src/sub/helper.erl", "-module(helper).\n")
    write(lib, "myapp-1.2.3/src/internal.hrl", "-define(X, 1).\n")
    write(lib, "myapp-1.2.3/include/myapp.hrl", "-record(r, {a}).\n")
    write(
        lib,
        "myapp-1.2.3/src/old.erl",
        "%% -*- coding: latin-1 -*-\n%% K\xf6nig\n-module(old).\n".encode("latin-1"),
    )
    write(lib, "myapp-1.2.3/src/empty.erl", "")
    write(lib, "myapp-1.2.3/src/big.erl", "-module(big).\n" + "%" * 5000 + "\n")
    write(lib, "myapp-1.2.3/src/my_parse.erl", '-module(my_parse).\n-file("my_parse.yrl", 40).\nx() -> 1.\n')
    write(lib, "myapp-1.2.3/src/tables.erl", "%% This file is generated DO NOT EDIT\n-module(tables).\n")
    write(lib, "myapp-1.2.3/ebin/myapp.beam", b"FOR1\x00\x00")
    write(lib, "myapp-1.2.3/doc/notes.erl", "-module(notes).\n")  # not src/ or include/
    write(lib, "other-2.0/src/other.erl", "-module(other).\n")
    write(lib, "noversion/src/nv.erl", "-module(nv).\n")

    items = list(otp.collect(lib, max_bytes=4000))
    records = by_path(items)
    assert sorted(records) == [
        ("myapp", "include/myapp.hrl"),
        ("myapp", "src/internal.hrl"),
        ("myapp", "src/myapp.erl"),
        ("myapp", "src/old.erl"),
        ("myapp", "src/sub/helper.erl"),
        ("noversion", "src/nv.erl"),
        ("other", "src/other.erl"),
    ]
    assert records[("myapp", "src/myapp.erl")].provenance.version == "1.2.3"
    assert records[("myapp", "src/myapp.erl")].meta == {"otp_version": "26.1.2"}
    assert records[("noversion", "src/nv.erl")].provenance.version == ""
    assert "König" in records[("myapp", "src/old.erl")].text
    reasons = {Path(s.where).name: s.reason for s in items if isinstance(s, Skipped)}
    assert set(reasons) == {"empty.erl", "big.erl", "my_parse.erl", "tables.erl"}
    assert reasons["empty.erl"] == "empty"
    assert reasons["big.erl"].startswith("too large")
    assert reasons["my_parse.erl"].startswith("generated parser")
    assert reasons["tables.erl"].startswith("generated")
    assert [r.provenance.package for r in otp.collect(lib, apps=["other"]) if isinstance(r, Record)] == [
        "other"
    ]


def test_generated_markers() -> None:
    assert otp.generated_reason(
        '-module(p).\n-file("/usr/lib/erlang/lib/parsetools/include/yeccpre.hrl", 0).\n'
    )
    assert otp.generated_reason('-module(s).\n-file("leexinc.hrl", 0).\n')
    assert otp.generated_reason("%% Generated by the Erlang ASN.1 BER compiler. Version: 5.0\n")
    assert otp.generated_reason(
        "%%  Warning: Do not edit this file.\n%%  Auto-generated by 'beam_makeops'.\n"
    )
    assert otp.generated_reason('%% This file was automatically generated from the file "x.yrl".\n')
    assert otp.generated_reason("-module(ok).\n%% a crash report is generated if the reason is odd\n") is None
    assert otp.generated_reason("-module(ok).\n%% records generated by the scanner\n") is None
    assert otp.generated_reason('-module(ok).\nf() -> "do not edit".\n') is None  # not a comment
    late = "-module(ok).\n" + "x() -> ok.\n" * 400 + "%% DO NOT EDIT below\n"
    assert otp.generated_reason(late) is None  # markers count only in the header


def test_app_dir_names_and_missing_install(tmp_path: Path) -> None:
    assert otp.split_app_dir("stdlib-4.2") == ("stdlib", "4.2")
    assert otp.split_app_dir("common_test-1.23.3") == ("common_test", "1.23.3")
    assert otp.split_app_dir("erl_interface") == ("erl_interface", "")
    assert otp.split_app_dir("my-app") == ("my-app", "")
    assert list(otp.collect(tmp_path / "missing")) == [
        Skipped(str(tmp_path / "missing"), "no OTP installation here (install erlang-src)")
    ]
