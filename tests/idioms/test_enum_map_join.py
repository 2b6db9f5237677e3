
from lsp.idioms.rules.enum_map_join import RULE
from tests.idioms.harness import one_pass


def test_nested_pipes_fuse_each_pair():
    source = 'a |> Enum.map(&f/1) |> Enum.join(",") |> g(Enum.map(b, &h/1) |> Enum.join())'
    assert one_pass(RULE, source) == 'a |> Enum.map_join(",", &f/1) |> g(Enum.map_join(b, &h/1))'


def test_unicode_separator_keeps_bytes_right():
    assert one_pass(RULE, 'xs |> Enum.map(&f/1) |> Enum.join(" → ")') == 'xs |> Enum.map_join(" → ", &f/1)'
