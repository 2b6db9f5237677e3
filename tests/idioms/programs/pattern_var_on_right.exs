defmodule Params do
  def id(params = %{"id" => id}), do: {id, map_size(params)}
  def id(_), do: :none
  defp tag(msg = {:data, _}, n) when n > 0, do: {msg, n}
  defp tag(msg, n), do: {:other, msg, n}
  def tags(xs), do: Enum.map(xs, &tag(&1, 1))
end

IO.inspect(Enum.map([%{"id" => 1}, %{"id" => nil, "x" => 2}, %{}, nil], &Params.id/1))
Params.tags([{:data, 1}, {:data}, :data])
# ---
classify = fn
  pair = {_, v} when v > 0 -> {:pos, pair}
  other -> {:other, other}
end

results =
  for x <- [{:a, 1}, {:b, -1}, [], nil] do
    case classify.(x) do
      tagged = {:pos, _} -> tagged
      rest -> {:rest, rest}
    end
  end

IO.inspect(results)
# ---
lookup = %{a: [1, 2], b: [], c: nil}
for key <- [:a, :b, :c, :d] do
  with entry = [_ | _] <- Map.get(lookup, key), do: Enum.sum(entry)
end
# ---
for line = "#" <> _ <- ["# one", "two", "#", ""], do: String.length(line)
