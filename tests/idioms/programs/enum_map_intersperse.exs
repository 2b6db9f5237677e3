IO.inspect([1, 2, 3] |> Enum.map(&(&1 * 10)) |> Enum.intersperse(:sep))
IO.inspect(Enum.map([], &to_string/1) |> Enum.intersperse(", "))
Enum.intersperse(Enum.map(%{a: 1}, fn {k, v} -> {v, k} end), nil)
# ---
1..5 |> Enum.map(&Integer.to_string/1) |> Enum.intersperse(",") |> IO.iodata_to_binary()
