[1, 2, 2, 3] |> then(&Enum.uniq/1) |> then(&Enum.map(&1, fn x -> x * 2 end))
# ---
data = %{a: 1, b: nil}
data |> then(&Map.put(&1, :seen, true)) |> then(&Map.to_list/1) |> Enum.sort() |> IO.inspect()
then(%{}, &Map.put(&1, :k, false))
# ---
"7" |> then(&(String.pad_leading(&1, 4, "0"))) |> IO.puts()
then([], &length/1)
