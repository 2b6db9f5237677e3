
from lsp.idioms.rules.pipeify_nested_pipe import RULE
from tests.idioms.harness import finding_count, one_pass


def test_enclosing_first_argument_calls_join():
    assert one_pass(RULE, "e(d(a |> b()), 1)") == "a |> b() |> d() |> e(1)"


def test_call_starting_a_chain_extends_it():
    assert one_pass(RULE, "x = d(a |> b()) |> e()") == "x = a |> b() |> d() |> e()"


def test_multi_line_last_argument_makes_the_chain_vertical():
    before = "result =\n  Enum.reduce(xs |> Enum.filter(&f/1), 0, fn x, acc ->\n    x + acc\n  end)"
    after = "result =\n  xs\n  |> Enum.filter(&f/1)\n  |> Enum.reduce(0, fn x, acc ->\n    x + acc\n  end)"
    assert one_pass(RULE, before) == after


def test_operands_of_loose_operators_and_list_items():
    assert one_pass(RULE, 'Map.get(a |> b(), "ä") == 1') == 'a |> b() |> Map.get("ä") == 1'
    assert one_pass(RULE, "[d(a |> b()), e(c |> f())]") == "[a |> b() |> d(), c |> f() |> e()]"


def test_tight_operators_comments_and_mixed_layouts_are_left():
    assert finding_count(RULE, "!ok?(a |> b())") == 0
    assert finding_count(RULE, "foo(\n  # why\n  a |> b(),\n  1\n)") == 0
    assert finding_count(RULE, "x = d(a |> b())\n|> e()") == 0
