
from lsp.idioms.rules.pipe_chain_start import RULE
from tests.idioms.harness import finding_count, one_pass


def test_nested_start_lifts_in_one_pass():
    assert one_pass(RULE, "foo(Enum.map(xs, f), 1) |> bar()") == "xs |> Enum.map(f) |> foo(1) |> bar()"


def test_multi_line_first_call_becomes_vertical_chain():
    before = 'Enum.join(\n  Enum.map(xs, fn x ->\n    x\n  end),\n  ","\n)\n|> IO.puts()'
    after = 'xs\n|> Enum.map(fn x ->\n  x\nend)\n|> Enum.join(",")\n|> IO.puts()'
    assert one_pass(RULE, before) == after


def test_keeps_vertical_arguments():
    before = "Enum.reduce(\n  items,\n  0,\n  fn x, acc -> x + acc end\n)\n|> IO.inspect()"
    after = "items\n|> Enum.reduce(\n  0,\n  fn x, acc -> x + acc end\n)\n|> IO.inspect()"
    assert one_pass(RULE, before) == after


def test_comment_between_arguments_blocks_the_rewrite():
    assert finding_count(RULE, "Enum.map(xs, # the mapper\n  f) |> g()") == 0
    assert finding_count(RULE, "Enum.map(\n  # comment\n  xs,\n  f\n)\n|> g()") == 0


def test_comment_inside_a_kept_argument_survives():
    before = "Enum.map(xs, fn x ->\n  # double\n  x * 2\nend)\n|> g()"
    assert one_pass(RULE, before) == "xs\n|> Enum.map(fn x ->\n  # double\n  x * 2\nend)\n|> g()"


def test_chain_sharing_lines_with_a_multi_line_step_is_left_to_the_formatter():
    assert finding_count(RULE, "Enum.map(xs, fn x ->\n  x\nend) |> g()") == 0


def test_unicode_and_placeholders():
    assert one_pass(RULE, 'Map.get(%{"ключ" => 1}, "ключ") |> f()') == '%{"ключ" => 1} |> Map.get("ключ") |> f()'
    assert one_pass(RULE, "&(Enum.at(&1, 2) |> f())") == "&(&1 |> Enum.at(2) |> f())"


def test_first_argument_that_is_a_pipe_joins_the_chain():
    assert one_pass(RULE, "x = Enum.at(a |> b(), 5) |> c()") == "x = a |> b() |> Enum.at(5) |> c()"


def test_keyword_only_and_capture_first_arguments_are_left():
    assert finding_count(RULE, "foo(a: 1) |> bar()\nquote(do: x) |> f()") == 0
