
from lsp.idioms.rules.zero_arity_def_parens import RULE
from tests.idioms.harness import finding_count, one_pass


def test_comment_inside_parens_and_unquote_heads_do_not_fire():
    assert finding_count(RULE, "def foo(\n  # nothing\n) do\n  1\nend") == 0
    assert finding_count(RULE, "def unquote(name)(), do: 1") == 0


def test_unicode_name():
    assert one_pass(RULE, "def café(), do: :ok") == "def café, do: :ok"
