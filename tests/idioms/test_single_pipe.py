
from lsp.idioms.rules.single_pipe import RULE
from tests.idioms.harness import finding_count, one_pass


def test_comment_between_input_and_pipe_blocks_the_rewrite():
    assert finding_count(RULE, "xs\n# note\n|> Enum.sum()") == 0


def test_vertical_arguments_take_the_input_first():
    before = "result =\n  xs\n  |> Enum.reduce(\n    0,\n    fn x, acc -> x + acc end\n  )"
    after = "result =\n  Enum.reduce(\n    xs,\n    0,\n    fn x, acc -> x + acc end\n  )"
    assert one_pass(RULE, before) == after


def test_capture_loses_its_parentheses():
    assert one_pass(RULE, "&(&1 |> f(2))") == "&f(&1, 2)"
    assert one_pass(RULE, "fun = & &1 |> f(2)") == "fun = &f(&1, 2)"


def test_leaves_blocks_chains_and_pipes_into_other_rules():
    assert finding_count(RULE, "case x do\n  1 -> :ok\nend\n|> f()") == 0
    assert finding_count(RULE, "(a |> b()) |> c()") == 0
    assert finding_count(RULE, "xs |> (fn x -> x end).()") == 0
    assert finding_count(RULE, "x |> f() do\n  1\nend") == 0


def test_multi_line_input_is_left():
    assert finding_count(RULE, "%{\n  a: 1\n}\n|> Map.merge(other)") == 0


def test_unicode():
    assert one_pass(RULE, 'x = "héllo wörld" |> String.split(" ", trim: true)') == (
        'x = String.split("héllo wörld", " ", trim: true)'
    )


def test_match_is_not_joined_past_the_line_length():
    before = "some_long_variable_name =\n  some_input_value\n  |> SomeModule.some_function_name(argument_one, argument_two)"
    after = "some_long_variable_name =\n  SomeModule.some_function_name(some_input_value, argument_one, argument_two)"
    assert one_pass(RULE, before) == after
