
from lsp.idioms.rules.with_arrow_to_match import RULE
from tests.idioms.harness import finding_count, one_pass


def test_only_arrow_clause_may_go():
    assert one_pass(RULE, "with x <- f(), do: x") == "with x = f(), do: x"


def test_comment_after_the_arrow_is_kept():
    source = "with _ <- # side effect\n       log(),\n     do: :ok"
    assert one_pass(RULE, source) == source
    assert finding_count(RULE, "with x <- # why\n  f(), do: x") == 1
