"""The long-lived Elixir checker process: verdicts, errors with lines, restart after a kill, absence."""

from __future__ import annotations

import shutil

import pytest

from lsp.idioms.elixir_check import ElixirChecker

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir (make test installs it)")


@pytest.fixture(scope="module")
def checker():
    checker = ElixirChecker()
    yield checker
    checker.close()


def test_quoted_accepts_valid_and_names_the_line_of_invalid(checker):
    assert checker.quoted("x |> then(fn y -> y end)").ok
    assert checker.quoted('s = "héllo ✓"').ok
    bad = checker.quoted("defmodule A do\n  def f( do\nend\n")
    assert not bad.ok and "line" in bad.message


def test_compile_reports_errors_and_unloads_modules(checker):
    assert checker.compiles("defmodule CheckA do\n  def f(x), do: x\nend\n").ok
    bad = checker.compiles("defmodule CheckA do\n  def f(_x), do: y\nend\n")
    assert not bad.ok and "undefined function y/0" in bad.message
    # Compiling the same module again is fine: modules are purged after each check.
    assert checker.compiles("defmodule CheckA do\n  def f(x), do: x\nend\n").ok


def test_the_vms_start_does_not_count_against_a_checks_time_limit():
    """The VM takes 0.3 s or more to start (seconds on a busy machine, as after a hung check's kill);
    a check's own limit covers only the check."""
    checker = ElixirChecker(timeout_s=0.25)
    try:
        assert checker.quoted("1 + 1").ok
    finally:
        checker.close()


def test_a_hung_check_times_out_and_the_next_one_works():
    checker = ElixirChecker(timeout_s=2)
    try:
        hung = checker.compiles("defmodule Hang do\n  Process.sleep(:infinity)\nend\n")
        assert not hung.ok and "did not answer" in hung.message
        assert checker.quoted("1 + 1").ok
    finally:
        checker.close()


def test_missing_elixir_is_reported_not_fatal():
    checker = ElixirChecker("no-such-elixir-binary")
    assert not checker.available
    verdict = checker.quoted("1 +")
    assert verdict.ok and not verdict.available
