
from lsp.idioms.rules.enum_map_map import RULE
from tests.idioms.harness import one_pass


def test_substituted_expression_is_parenthesised_where_it_would_bind_differently():
    assert one_pass(RULE, "xs |> Enum.map(&(&1 + 1)) |> Enum.map(&(-&1))") == "xs |> Enum.map(fn x -> -(x + 1) end)"
    assert one_pass(RULE, "xs |> Enum.map(&(&1 + 1)) |> Enum.map(&Integer.to_string/1)") == (
        "xs |> Enum.map(fn x -> Integer.to_string(x + 1) end)"
    )


def test_capture_using_its_argument_twice_is_not_inlined():
    source = "xs |> Enum.map(&f/1) |> Enum.map(&{&1, &1})"
    assert one_pass(RULE, source) == source


def test_fn_ignoring_its_argument_keeps_the_first_call():
    source = "xs |> Enum.map(&log/1) |> Enum.map(fn _ -> :ok end)"
    assert one_pass(RULE, source) == "xs |> Enum.map(fn x -> (fn _ -> :ok end).(log(x)) end)"


def test_variable_functions_are_called():
    assert one_pass(RULE, "Enum.map(xs, f) |> Enum.map(g)") == "Enum.map(xs, fn x -> g.(f.(x)) end)"
