IO.inspect(Enum.into([a: 1, b: 2, a: 3], %{}))
IO.inspect(Enum.into(%{x: 1}, []))
IO.inspect(Enum.into([], MapSet.new()) |> MapSet.size())
Enum.into(1..3, [], &(&1 * 2))
# ---
users = [%{id: 1}, %{id: 2}]
IO.inspect(users |> Enum.into(%{}, fn u -> {u.id, u} end) |> Map.keys())
IO.inspect(1..3 |> Stream.map(& &1) |> Enum.into([]))
Enum.into(%{a: 1}, Map.new())
# ---
Enum.into([1, 2], %{})
