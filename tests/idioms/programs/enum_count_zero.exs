IO.inspect(Enum.count([]) == 0)
IO.inspect(Enum.count([nil]) > 0)
IO.inspect(0 != Enum.count(%{a: 1}))
IO.inspect(0 < Enum.count(1..0//1))
Enum.count(MapSet.new()) === 0
# ---
xs = [1, 2, 3]
IO.inspect(if xs |> Enum.filter(&(&1 > 5)) |> Enum.count() == 0, do: :none, else: :some)
xs |> Enum.count() !== 0
# ---
Enum.count(:not_enumerable) == 0
