list = [3, 1, 2]
csv = Enum.join(list |> Enum.map(&to_string/1) |> Enum.sort(), ",")
IO.puts(csv)
Enum.sum(Enum.map([] |> Enum.filter(&(&1 > 1)), &(&1 * 2)))
# ---
result =
  Enum.reduce([1, 2, 3, 4] |> Enum.filter(&(rem(&1, 2) == 0)), 0, fn x, acc ->
    x + acc
  end)
IO.inspect(result)
Map.get(%{"a" => nil} |> Map.put("b", false), "b") == false
# ---
[length([1, 2] |> Enum.uniq()), Map.keys(%{a: 1, b: 2} |> Map.delete(:a))]
