
from lsp.idioms.rules.pipe_parentheses import RULE
from tests.idioms.harness import finding_count, one_pass


def test_every_bare_step_in_a_chain():
    assert one_pass(RULE, "x |> a |> B.c |> d()") == "x |> a() |> B.c() |> d()"


def test_pipe_start_and_do_blocks_are_left():
    assert finding_count(RULE, "foo |> bar()") == 0
    assert finding_count(RULE, "x |> f do\n  1\nend") == 0
