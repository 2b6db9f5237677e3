
from lsp.idioms.rules.with_single_clause import RULE
from tests.idioms.harness import one_pass


def test_comment_between_else_clauses_is_kept_or_skipped():
    source = "with :ok <- f() do\n  1\nelse\n  :a -> 2\n  # fallback\n  _ -> 3\nend"
    assert one_pass(RULE, source) == source


def test_indented_with_keeps_its_indentation():
    source = "  x =\n    with :ok <- f() do\n      1\n    else\n      _ -> 2\n    end"
    assert one_pass(RULE, source) == "  x =\n    case f() do\n      :ok -> 1\n      _ -> 2\n    end"
