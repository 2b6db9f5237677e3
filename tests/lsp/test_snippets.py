"""Neighbour snippets: definition-sized chunks, ranked by shared identifiers, bounded and deterministic."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from lsp.prompt import Snippet
from lsp.syntax.context import identifiers
from lsp.syntax.parser import make_parser
from lsp.syntax.snippets import Chunk, chunk_document, rank_snippets

ACCOUNTS = '''defmodule MyApp.Accounts do
  @moduledoc """
  Users and their credentials — «ünïcode» welcome.
  """
  alias MyApp.Accounts.User
  alias MyApp.Repo

  @doc """
  Fetches a user by id.
  """
  @spec get_user!(integer()) :: User.t()
  def get_user!(id), do: Repo.get!(User, id)

  @impl true
  def create_user(attrs) do
    %User{}
    |> User.changeset(attrs)
    |> Repo.insert()
  end

  defp normalize(email), do: String.downcase(email)

  defmodule Token do
    def sign(user), do: Phoenix.Token.sign(MyApp.Endpoint, "user", user.id)
  end
end
'''


def parse(text: str):
    source = text.encode("utf-8")
    return make_parser().parse(source), source


def chunk(path: str, start_line: int, text: str) -> Chunk:
    return Chunk(path=path, start_line=start_line, text=text, idents=identifiers(text))


def words(text: str) -> int:
    return len(text.split())


# -- chunking -------------------------------------------------------------------------------------------


def test_one_chunk_per_definition_with_its_doc_and_spec_and_module_headers():
    tree, source = parse(ACCOUNTS)
    chunks = chunk_document("lib/accounts.ex", tree, source)
    assert [(c.start_line, c.text) for c in chunks] == [
        (
            0,
            'defmodule MyApp.Accounts do\n  @moduledoc """\n'
            "  Users and their credentials — «ünïcode» welcome.\n"
            '  """\n  alias MyApp.Accounts.User\n  alias MyApp.Repo',
        ),
        (
            7,
            '  @doc """\n  Fetches a user by id.\n  """\n  @spec get_user!(integer()) :: User.t()\n'
            "  def get_user!(id), do: Repo.get!(User, id)",
        ),
        # @impl is not @doc/@spec: the chunk starts at the def.
        (
            14,
            "  def create_user(attrs) do\n    %User{}\n"
            "    |> User.changeset(attrs)\n    |> Repo.insert()\n  end",
        ),
        (20, "  defp normalize(email), do: String.downcase(email)"),
        (22, "  defmodule Token do"),
        (23, '    def sign(user), do: Phoenix.Token.sign(MyApp.Endpoint, "user", user.id)'),
    ]
    assert all(c.path == "lib/accounts.ex" for c in chunks)
    assert chunks[1].idents == frozenset(
        {"Fetches", "a", "user", "by", "id", "get_user!", "integer", "User", "t", "Repo", "get!"}
    )


def test_long_definitions_are_cut_to_max_lines():
    body = "\n".join(f"    step_{i}(x)" for i in range(100))
    text = f"defmodule Long do\n  def run(x) do\n{body}\n  end\nend\n"
    tree, source = parse(text)
    chunks = chunk_document("long.ex", tree, source, max_lines=10)
    run = next(c for c in chunks if c.start_line == 1)
    assert run.text.splitlines() == ["  def run(x) do"] + [f"    step_{i}(x)" for i in range(9)]
    assert all(len(c.text.splitlines()) <= 10 for c in chunks)


def test_documents_without_definitions_fall_back_to_fixed_windows():
    text = "\n".join(f'IO.puts("line {i}")' for i in range(95)) + "\n"
    tree, source = parse(text)
    chunks = chunk_document("script.exs", tree, source, max_lines=40)
    assert [c.start_line for c in chunks] == [0, 40, 80]
    assert [len(c.text.splitlines()) for c in chunks] == [40, 40, 15]
    assert chunks[2].text.splitlines()[0] == 'IO.puts("line 80")'
    assert chunk_document("empty.exs", *parse("\n\n\n")) == ()


def test_broken_documents_still_chunk_by_definition():
    text = "defmodule Half do\n  alias Half.Repo\n\n  def a(x) do\n    Repo.get(x)\n  end\n\n"
    text += "  def b(y) do\n    y |>"
    tree, source = parse(text)
    assert tree.root_node.has_error
    chunks = chunk_document("half.ex", tree, source)
    assert [(c.start_line, c.text) for c in chunks] == [
        (0, "defmodule Half do\n  alias Half.Repo"),
        (3, "  def a(x) do\n    Repo.get(x)\n  end"),
        (7, "  def b(y) do\n    y |>"),
    ]


# -- ranking ----------------------------------------------------------------------------------------------

POOL = (
    chunk("lib/a.ex", 0, "def get_user!(id), do: Repo.get!(User, id)"),
    chunk("lib/a.ex", 5, "def list_users, do: Repo.all(User)"),
    chunk("lib/b.ex", 0, "def render(conn), do: json(conn, %{ok: true})"),
    chunk("lib/c.ex", 3, "def delete_user(user), do: Repo.delete(user)"),
    chunk("lib/c.ex", 9, "def changeset(user, attrs), do: cast(user, attrs, [:email])"),
    chunk("lib/d.ex", 0, "def sign(user), do: Phoenix.Token.sign(Endpoint, user.id)"),
)


def test_rare_shared_identifiers_outweigh_common_ones_and_zero_scores_are_dropped():
    query = identifiers("Repo.get!(User, id) |> changeset(attrs)")
    ranked = rank_snippets(query, POOL, max_snippets=10, token_budget=10_000, count_tokens=words)
    # N = 6 chunks, weight log(1 + N/df): get!, changeset and attrs (df 1) weigh 1.95 each, User and id
    # (df 2) 1.39, Repo (df 3) 1.10. get_user! shares Repo, get!, User and id (5.82); changeset shares the
    # rare changeset and attrs (3.89) and beats list_users (Repo, User: 2.49) although both share two names.
    assert ranked == tuple(Snippet(c.path, c.text) for c in (POOL[0], POOL[4], POOL[1], POOL[5], POOL[3]))
    assert POOL[2].text not in [s.text for s in ranked]  # render shares nothing: dropped
    assert all(isinstance(s, Snippet) for s in ranked)
    assert ranked[0] == Snippet(path="lib/a.ex", text=POOL[0].text)


def test_ties_are_broken_by_path_then_start_line_regardless_of_input_order():
    same = "def handle(event), do: Bus.publish(event)"
    pool = [chunk("z.ex", 0, same), chunk("a.ex", 7, same), chunk("a.ex", 2, same), chunk("m.ex", 1, same)]
    query = identifiers("Bus.publish(event)")
    expected = rank_snippets(query, pool, 10, 10_000, words)
    assert [s.path for s in expected] == ["a.ex", "a.ex", "m.ex", "z.ex"]
    rng = random.Random(3)
    for _ in range(20):
        shuffled = pool[:]
        rng.shuffle(shuffled)
        assert rank_snippets(query, shuffled, 10, 10_000, words) == expected
    # The same chunk offered twice counts once.
    assert rank_snippets(query, pool + pool, 10, 10_000, words) == expected


def test_bounded_by_count_and_token_budget():
    query = identifiers("Repo.get!(User, id) |> changeset(attrs) user")
    assert len(rank_snippets(query, POOL, 2, 10_000, words)) == 2
    assert rank_snippets(query, POOL, 0, 10_000, words) == ()
    assert rank_snippets(query, POOL, 5, 0, words) == ()
    assert rank_snippets(frozenset(), POOL, 5, 100, words) == ()
    assert rank_snippets(query, (), 5, 100, words) == ()
    budget = 12
    ranked = rank_snippets(query, POOL, 10, budget, words)
    assert sum(words(s.text) for s in ranked) <= budget
    # A chunk too big for what is left is skipped in favour of a smaller, lower-ranked one.
    big = chunk("big.ex", 0, "def get_user!(id), do: Repo.get!(User, id) " + "pad " * 50)
    ranked = rank_snippets(identifiers("get_user! Repo User id"), [big, *POOL], 10, 10, words)
    assert [s.text for s in ranked] == [POOL[0].text, POOL[1].text]  # 5 + 4 words; big.ex (55) skipped


def test_same_output_across_processes_with_different_hash_seeds():
    """Set iteration order changes with PYTHONHASHSEED; the prompt must not (KV-cache reuse)."""
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from lsp.syntax.parser import make_parser\n"
        "from lsp.syntax.snippets import chunk_document, rank_snippets\n"
        "from lsp.syntax.context import identifiers\n"
        "src = sys.stdin.buffer.read()\n"
        "chunks = chunk_document('lib/accounts.ex', make_parser().parse(src), src, max_lines=4)\n"
        "query = identifiers('Repo.insert(User.changeset(attrs)) user.id Phoenix.Token')\n"
        "ranked = rank_snippets(query, chunks, 4, 60, lambda t: len(t.split()))\n"
        "print(json.dumps([[s.path, s.text] for s in ranked]))\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    outputs = set()
    for seed in ("1", "2", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", script, root],
            input=ACCOUNTS.encode("utf-8"),
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop())  # and it is not trivially empty
