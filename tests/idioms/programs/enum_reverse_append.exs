acc = [3, 2, 1]
rest = [4, 5]
IO.inspect(Enum.reverse(acc) ++ rest)
IO.inspect(Enum.reverse([]) ++ [])
{:ok, Enum.reverse(1..3) ++ Enum.map(rest, &(&1 * 10))}
# ---
tail = nil
Enum.reverse([:a, :b]) ++ (tail || [:c])
