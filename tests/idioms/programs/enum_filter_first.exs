xs = [1, 12, 15, 3]
IO.inspect(xs |> Enum.filter(&(&1 > 10)) |> List.first())
IO.inspect(Enum.filter([], & &1) |> List.first(:none))
IO.inspect(Enum.at(Enum.filter([nil, false, 0], & &1), 0))
Enum.filter(%{a: 1, b: 2}, fn {_k, v} -> v > 1 end) |> Enum.at(0, :default)
# ---
[false, nil] |> Enum.filter(&is_nil/1) |> List.first(:missing)
