from lsp.completion.cache import TypedAheadCache

BEFORE = "defmodule A do\n  def f(list) do\n    list |> "
AFTER = "\n  end\nend\n"


def test_exact_position_hit():
    cache = TypedAheadCache()
    cache.put(BEFORE, AFTER, "Enum.map(&(&1 * 2))")
    assert cache.get(BEFORE, AFTER) == "Enum.map(&(&1 * 2))"


def test_typing_along_returns_the_rest():
    cache = TypedAheadCache()
    cache.put(BEFORE, AFTER, "Enum.map(&(&1 * 2))")
    assert cache.get(BEFORE + "Enum.", AFTER) == "map(&(&1 * 2))"


def test_diverging_from_the_completion_misses():
    cache = TypedAheadCache()
    cache.put(BEFORE, AFTER, "Enum.map(&(&1 * 2))")
    assert cache.get(BEFORE + "Enum.f", AFTER) is None


def test_different_text_after_cursor_misses():
    cache = TypedAheadCache()
    cache.put(BEFORE, AFTER, "Enum.map(&(&1 * 2))")
    assert cache.get(BEFORE, "\nend\n") is None


def test_typing_the_whole_completion_misses():
    cache = TypedAheadCache()
    cache.put(BEFORE, AFTER, "Enum.sum()")
    assert cache.get(BEFORE + "Enum.sum()", AFTER) is None


def test_capacity_evicts_oldest():
    cache = TypedAheadCache(capacity=2)
    for index in range(3):
        cache.put(f"{BEFORE}{index}", AFTER, "x + 1")
    assert len(cache) == 2
    assert cache.get(f"{BEFORE}0", AFTER) is None
    assert cache.get(f"{BEFORE}2", AFTER) == "x + 1"
