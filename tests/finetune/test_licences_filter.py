from __future__ import annotations

import pytest

from finetune.dataset.clean import Drop
from finetune.dataset.licences import (
    PERMISSIVE,
    WEAK_COPYLEFT,
    LicencePolicy,
    Verdict,
    effective_licence,
    file_licence,
    filter_licence,
    judge,
    tokenize,
)
from finetune.records import Provenance, Record

CODE = 'defmodule Greeter do\n  def hello(name), do: "Hello, " <> name\nend\n'


def record(licence: str, text: str = CODE, kind: str = "code") -> Record:
    return Record(kind, "elixir", text, Provenance("hex", "greeter", "0.1.0", "lib/greeter.ex", licence))


@pytest.mark.parametrize(
    "expression",
    [
        "MIT",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "0BSD",
        "Unlicense",
        "CC0-1.0",
        "mit",  # SPDX ids are case-insensitive
        "Apache 2.0",  # declared free text, normalised by the sources' alias table
        "Apache-2.0+",
        "MIT OR Apache-2.0",
        "GPL-3.0-only OR MIT",
        "MIT AND Apache-2.0",
        "(GPL-2.0-only AND MIT) OR BSD-3-Clause",
        "Apache-2.0 WITH LLVM-exception",
    ],
)
def test_permissive_expressions_pass(expression: str) -> None:
    assert judge(expression) is Verdict.ALLOWED
    assert filter_licence(record(expression)) == record(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "GPL-3.0-only",
        "GPL-2.0-or-later",
        "AGPL-3.0-only",
        "LGPL-2.1-only",
        "MPL-2.0",  # weak copyleft: off by default
        "EPL-2.0",
        "Proprietary",
        "MIT AND GPL-3.0-only",
        "(MIT OR Apache-2.0) AND AGPL-3.0-only",
        "GPL-2.0-only WITH Classpath-exception-2.0",
    ],
)
def test_copyleft_and_other_expressions_are_dropped(expression: str) -> None:
    assert judge(expression) is Verdict.DENIED
    result = filter_licence(record(expression))
    assert isinstance(result, Drop)
    assert (result.filter, result.reason, result.detail) == ("licences", "not-allowed", expression)


@pytest.mark.parametrize(
    "expression", ["", "NOASSERTION", "MIT AND NOASSERTION", "MIT AND", "(MIT", "OR MIT"]
)
def test_unknown_licences_are_dropped_unless_allowed(expression: str) -> None:
    assert judge(expression) is Verdict.UNKNOWN
    dropped = filter_licence(record(expression))
    assert isinstance(dropped, Drop) and dropped.reason == "unknown"
    assert isinstance(filter_licence(record(expression), LicencePolicy(allow_unknown=True)), Record)


def test_unknown_never_rescues_a_denied_part() -> None:
    assert judge("GPL-3.0-only AND NOASSERTION") is Verdict.DENIED
    assert isinstance(filter_licence(record("GPL-3.0-only"), LicencePolicy(allow_unknown=True)), Drop)
    assert judge("NOASSERTION OR MIT") is Verdict.ALLOWED


def test_a_policy_can_accept_weak_copyleft() -> None:
    policy = LicencePolicy(allowed=PERMISSIVE | WEAK_COPYLEFT)
    assert judge("MPL-2.0", policy) is Verdict.ALLOWED
    assert judge("LGPL-2.1-or-later", policy) is Verdict.ALLOWED
    assert judge("GPL-3.0-only", policy) is Verdict.DENIED


def test_a_narrow_policy() -> None:
    policy = LicencePolicy(allowed=frozenset({"Apache-2.0"}))
    assert judge("MIT", policy) is Verdict.DENIED
    assert judge("MIT OR Apache-2.0", policy) is Verdict.ALLOWED


def test_tokenizer_keeps_ids_with_or_inside_and_names_with_spaces() -> None:
    assert tokenize("GPL-2.0-or-later") == ["GPL-2.0-or-later"]
    assert tokenize("(Apache License 2.0 or MIT)") == ["(", "Apache License 2.0", "OR", "MIT", ")"]
    assert tokenize("ORACLE-Custom AND MIT") == ["ORACLE-Custom", "AND", "MIT"]


def test_a_file_header_licence_is_judged_with_the_package_licence() -> None:
    gpl_file = "# SPDX-License-Identifier: GPL-3.0-only\n" + CODE
    assert file_licence(gpl_file) == "GPL-3.0-only"
    assert effective_licence(record("MIT", gpl_file)) == "(MIT) AND (GPL-3.0-only)"
    assert isinstance(filter_licence(record("MIT", gpl_file)), Drop)

    otp_file = "%%\n%% %CopyrightBegin%\n%%\n%% SPDX-License-Identifier: Apache-2.0\n%%\n-module(lists).\n"
    # OTP files state their licence themselves; an unknown package licence then does not matter.
    assert isinstance(filter_licence(record("", otp_file)), Record)


def test_a_header_deep_in_the_file_is_not_the_file_licence() -> None:
    text = CODE * 20 + "# SPDX-License-Identifier: GPL-3.0-only\n"
    assert file_licence(text) == ""
    assert isinstance(filter_licence(record("MIT", text)), Record)
