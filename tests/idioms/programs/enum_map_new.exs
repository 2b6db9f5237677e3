users = [%{id: 1, name: "a"}, %{id: 2, name: "b"}, %{id: 1, name: "c"}]
IO.inspect(users |> Enum.map(&{&1.id, &1.name}) |> Enum.into(%{}))
IO.inspect(Enum.map([], &{&1, &1}) |> Map.new())
Enum.map(["a", "A", "b"], &String.downcase/1) |> MapSet.new() |> MapSet.to_list()
# ---
pairs = [a: 1, b: 2, a: 3]
IO.inspect(Keyword.new(Enum.map(pairs, fn {k, v} -> {k, v * 2} end)))
Enum.into(Enum.map(1..3, &{&1, true}), %{seen: false, 1 => :old})
# ---
acc = MapSet.new([0])
[1, 2, 2] |> Enum.map(&(&1 + 1)) |> Enum.into(acc) |> MapSet.to_list()
# ---
Enum.map([1, 2], & &1) |> Map.new()
