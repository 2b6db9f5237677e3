
from lsp.idioms.rules.alias_expand_multi import RULE
from lsp.idioms.rules.alias_sort import RULE as ALIAS_SORT
from tests.idioms.harness import finding_count, one_pass


def test_deeper_indentation_and_sorting_follows():
    source = "defmodule A do\n  defmodule B do\n    alias X.{Zed, Abc}\n  end\nend"
    expanded = one_pass(RULE, source)
    assert expanded == "defmodule A do\n  defmodule B do\n    alias X.Zed\n    alias X.Abc\n  end\nend"
    assert (
        one_pass(ALIAS_SORT, expanded)
        == "defmodule A do\n  defmodule B do\n    alias X.Abc\n    alias X.Zed\n  end\nend"
    )


def test_as_option_does_not_fire():
    assert finding_count(RULE, "alias X.{Y}, as: Z") == 0
