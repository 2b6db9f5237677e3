defmodule Corpus.Data do
  @moduledoc """
  A tiny, dependency-free take on changesets and composable queries over
  in-memory lists of maps. Good enough for fixtures and unit tests.
  """

  defmodule Changeset do
    @moduledoc false
    defstruct data: %{}, changes: %{}, errors: [], valid?: true, action: nil

    @type t :: %__MODULE__{}
    @email ~r/^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i

    @doc """
    Builds a changeset by keeping only the `permitted` keys of `params`.

    String keys are converted to existing atoms; unknown keys are ignored.
    """
    def cast(data, params, permitted) when is_map(params) and is_list(permitted) do
      allowed = Enum.map(permitted, &Atom.to_string/1)

      changes =
        params
        |> Enum.filter(fn {k, _v} -> to_string(k) in allowed end)
        |> Enum.filter(fn {_k, v} -> v != nil end)
        |> Enum.map(fn {k, v} -> {to_atom(k), v} end)
        |> Enum.into(%{})

      %Changeset{data: data, changes: changes}
    end

    def validate_required(%Changeset{} = cs, fields) do
      missing = Enum.reject(fields, &present?(cs, &1))
      Enum.reduce(missing, cs, &add_error(&2, &1, "can't be blank"))
    end

    def validate_format(%Changeset{changes: changes} = cs, :email) do
      case Map.fetch(changes, :email) do
        {:ok, value} -> unless value =~ @email, do: add_error(cs, :email, "is invalid"), else: cs
        :error -> cs
      end
    end

    def validate_length(cs, field, opts) do
      min = Keyword.get(opts, :min, 0)
      value = get_field(cs, field) || ""

      if String.length(value) < min do
        add_error(cs, field, "should be at least #{min} character(s)")
      else
        cs
      end
    end

    def get_field(%Changeset{data: data, changes: changes}, field) do
      Map.get(changes, field, Map.get(data, field))
    end

    def add_error(%Changeset{errors: errors} = cs, field, message) do
      %{cs | errors: [{field, message} | errors], valid?: false}
    end

    def apply_changes(%Changeset{data: data, changes: changes}), do: Map.merge(data, changes)

    @doc "Errors in the order they were added, followed by any `extra` ones."
    def errors(%Changeset{errors: errors}, extra \\ []) do
      Enum.reverse(errors) ++ extra
    end

    defp present?(cs, field) do
      case get_field(cs, field) do
        nil -> false
        value when is_binary(value) -> String.trim(value) |> byte_size() > 0
        _ -> true
      end
    end

    defp to_atom(k) when is_atom(k), do: k
    defp to_atom(k) when is_binary(k), do: String.to_existing_atom(k)
  end

  defmodule Query do
    @moduledoc false
    defstruct wheres: [], order: nil, limit: nil

    def new(), do: %Query{}

    def where(%Query{wheres: ws} = q, field, op \\ :==, value) do
      %{q | wheres: [{field, op, value} | ws]}
    end

    def order_by(q, field, dir \\ :asc) when dir in [:asc, :desc], do: %{q | order: {field, dir}}
    def limit(q, n) when is_integer(n) and n >= 0, do: %{q | limit: n}

    def run(%Query{} = q, rows) do
      rows
      |> Enum.filter(&matches?(q.wheres, &1))
      |> sort(q.order)
      |> take(q.limit)
    end

    defp matches?(wheres, row),
      do: Enum.all?(wheres, fn {f, op, v} -> compare(op, Map.get(row, f), v) end)

    defp compare(:==, a, b), do: a == b
    defp compare(:!=, a, b), do: not (a == b)
    defp compare(:in, a, b), do: a in b
    defp compare(op, a, b) when op in [:<, :>, :<=, :>=], do: apply(Kernel, op, [a, b])

    defp sort(rows, nil), do: rows
    defp sort(rows, {field, :asc}), do: Enum.sort_by(rows, &Map.get(&1, field))
    defp sort(rows, {field, :desc}), do: Enum.sort_by(rows, &Map.get(&1, field)) |> Enum.reverse()

    defp take(rows, nil), do: rows
    defp take(rows, n), do: Enum.take(rows, n)
  end
end

defmodule Corpus.Data.Accounts do
  @moduledoc "Account registration built on `Corpus.Data`."

  alias Corpus.Data.{Query, Changeset}

  @fields ~w(name email age)a

  def registration_changeset(attrs) do
    %{}
    |> Changeset.cast(attrs, @fields)
    |> Changeset.validate_required([:name, :email])
    |> Changeset.validate_format(:email)
    |> Changeset.validate_length(:name, min: 2)
  end

  def register(attrs, existing) do
    cs = registration_changeset(attrs)

    with true <- cs.valid?,
         user = Changeset.apply_changes(cs),
         [] <- Query.new() |> Query.where(:email, user.email) |> Query.run(existing) do
      {:ok, user}
    else
      false -> {:error, Enum.into(Changeset.errors(cs), [])}
      [_ | _] -> {:error, [email: "has already been taken"]}
    end
  end

  def adults(users) do
    Query.new()
    |> Query.where(:age, :>=, 18)
    |> Query.order_by(:name)
    |> (fn q -> Query.run(q, users) end).()
  end

  def load_fixtures(path) do
    try do
      path
      |> File.read!()
      |> String.split("\n", trim: true)
      |> Enum.map(&String.split(&1, ","))
      |> Enum.map(fn [name, email, age] ->
        %{name: name, email: email, age: String.to_integer(age)}
      end)
    rescue
      e in [File.Error, ArgumentError] -> {:error, Exception.message(e)}
    end
  end
end
