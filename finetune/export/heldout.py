"""Held-out Elixir for the quantization perplexity check when no `--heldout` files are given.

Written for this project (not taken from any collected source, so never in training data). It is a
module's worth of ordinary Elixir: structs, pipes, pattern matching, `with`, a GenServer and ExUnit.
"""

from __future__ import annotations

HELDOUT_ELIXIR: tuple[str, ...] = (
    '''defmodule Library.Book do
  @moduledoc """
  A book on the shelf of a small lending library.
  """
  @enforce_keys [:isbn, :title]
  defstruct [:isbn, :title, authors: [], copies: 1, loans: []]

  @type t :: %__MODULE__{isbn: String.t(), title: String.t(), authors: [String.t()], copies: pos_integer()}

  @spec available?(t()) :: boolean()
  def available?(%__MODULE__{copies: copies, loans: loans}), do: length(loans) < copies

  @spec lend(t(), String.t(), Date.t()) :: {:ok, t()} | {:error, :unavailable}
  def lend(%__MODULE__{} = book, member_id, due) do
    if available?(book) do
      {:ok, %{book | loans: [{member_id, due} | book.loans]}}
    else
      {:error, :unavailable}
    end
  end

  @spec give_back(t(), String.t()) :: t()
  def give_back(%__MODULE__{loans: loans} = book, member_id) do
    %{book | loans: Enum.reject(loans, fn {id, _due} -> id == member_id end)}
  end

  @spec overdue(t(), Date.t()) :: [String.t()]
  def overdue(%__MODULE__{loans: loans}, today) do
    for {member_id, due} <- loans, Date.compare(due, today) == :lt, do: member_id
  end
end
''',
    '''defmodule Library.Catalog do
  use GenServer

  alias Library.Book

  def start_link(books) when is_list(books) do
    GenServer.start_link(__MODULE__, books, name: __MODULE__)
  end

  def lend(isbn, member_id, due), do: GenServer.call(__MODULE__, {:lend, isbn, member_id, due})
  def search(term), do: GenServer.call(__MODULE__, {:search, term})

  @impl true
  def init(books) do
    {:ok, Map.new(books, fn %Book{isbn: isbn} = book -> {isbn, book} end)}
  end

  @impl true
  def handle_call({:lend, isbn, member_id, due}, _from, catalog) do
    with {:ok, book} <- Map.fetch(catalog, isbn),
         {:ok, lent} <- Book.lend(book, member_id, due) do
      {:reply, :ok, Map.put(catalog, isbn, lent)}
    else
      :error -> {:reply, {:error, :not_found}, catalog}
      {:error, reason} -> {:reply, {:error, reason}, catalog}
    end
  end

  def handle_call({:search, term}, _from, catalog) do
    needle = String.downcase(term)

    found =
      catalog
      |> Map.values()
      |> Enum.filter(&String.contains?(String.downcase(&1.title), needle))
      |> Enum.sort_by(& &1.title)

    {:reply, found, catalog}
  end
end
''',
    '''defmodule Library.Report do
  alias Library.Book

  def summary(books, today) do
    books
    |> Enum.group_by(&Book.available?/1)
    |> Map.new(fn {available, group} -> {if(available, do: :on_shelf, else: :all_out), length(group)} end)
    |> Map.put(:overdue, books |> Enum.flat_map(&Book.overdue(&1, today)) |> Enum.uniq() |> length())
  end

  def to_csv(books) do
    header = "isbn,title,authors,copies"

    rows =
      Enum.map(books, fn %Book{} = book ->
        Enum.join([book.isbn, inspect(book.title), Enum.join(book.authors, ";"), book.copies], ",")
      end)

    Enum.join([header | rows], "\\n")
  end
end

defmodule Library.BookTest do
  use ExUnit.Case, async: true

  alias Library.Book

  setup do
    {:ok, book: %Book{isbn: "978-0", title: "Elixir in Practice", copies: 1}}
  end

  test "lends an available book and refuses a second loan", %{book: book} do
    assert {:ok, lent} = Book.lend(book, "m1", ~D[2030-01-10])
    refute Book.available?(lent)
    assert {:error, :unavailable} = Book.lend(lent, "m2", ~D[2030-01-12])
  end

  test "lists members whose loans are overdue", %{book: book} do
    {:ok, lent} = Book.lend(book, "m1", ~D[2030-01-10])
    assert Book.overdue(lent, ~D[2030-02-01]) == ["m1"]
    assert Book.overdue(Book.give_back(lent, "m1"), ~D[2030-02-01]) == []
  end
end
''',
)
