IO.inspect([1, 2, 3] |> Enum.reverse() |> Enum.concat([4, 5]))
IO.inspect(Enum.reverse([1, 2]) |> Enum.concat(1..3))
IO.inspect(Enum.concat(Enum.reverse(1..3), %{a: 1}))
Enum.reverse([]) ++ [:x]
# ---
acc = [3, 2, 1]
IO.inspect(Enum.reverse(acc) ++ [4 | [5]])
Enum.reverse(1..2) |> Enum.concat(:not_enumerable)
