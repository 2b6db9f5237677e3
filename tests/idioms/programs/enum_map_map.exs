names = [" ada ", "grace", ""]
IO.inspect(names |> Enum.map(&String.trim/1) |> Enum.map(&String.upcase/1))
IO.inspect(Enum.map(Enum.map([1, 2, 3], &(&1 + 1)), &(&1 * 2)))
Enum.map([1.0, 2.5], fn p -> p * 1.2 end) |> Enum.map(&Float.round(&1, 2))
# ---
users = [%{name: "a"}, %{name: "b"}]
IO.inspect(users |> Enum.map(& &1.name) |> Enum.map(fn name -> "<" <> name <> ">" end))
[1, 2] |> Enum.map(&Integer.to_string/1) |> Enum.map(fn v -> {v, v} end)
# ---
f = fn x -> x * 3 end
g = &(&1 - 1)
Enum.map(%{a: 1, b: 2}, fn {_k, v} -> v end) |> Enum.map(f) |> Enum.map(g)
