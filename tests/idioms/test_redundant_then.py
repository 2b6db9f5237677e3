
from lsp.idioms.rules.redundant_then import RULE
from tests.idioms.harness import finding_count, one_pass


def test_placeholder_in_keywords_keeps_then():
    assert finding_count(RULE, "x |> then(&f(&1, key: &1))") == 0


def test_macros_keep_then():
    assert finding_count(RULE, "x |> then(&if(&1, do: 1, else: 2))") == 0


def test_nested_named_capture_in_arguments_is_fine():
    assert one_pass(RULE, "xs |> then(&Enum.map(&1, &to_string/1))") == "xs |> Enum.map(&to_string/1)"


def test_comment_is_kept():
    before = "x\n|> then(\n  &Enum.join(\n    &1,\n    # separator\n    \",\"\n  )\n)"
    assert "# separator" in one_pass(RULE, before)
