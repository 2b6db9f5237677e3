xs = [3, 1, 2]
Enum.at(xs, 5) |> IO.inspect()
Enum.at([], 0) |> IO.inspect()
Enum.sort(xs, :desc) |> Enum.map(&(&1 * 10)) |> Enum.sum()
# ---
line = " a, ,b , c,"
names = String.split(line, ",") |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == ""))
IO.inspect(names)
Map.get(%{a: nil, b: false}, :a, :default) |> inspect() |> IO.puts()
Map.get(%{a: nil, b: false}, :b) |> is_boolean()
# ---
items = [:a, :b, :a, :c, :a]
counts =
  Enum.reduce(items, %{}, fn item, acc ->
    Map.update(acc, item, 1, &(&1 + 1))
  end)
  |> Map.to_list()
  |> Enum.sort()
IO.inspect(counts)
Integer.parse(Integer.to_string(4 + 6), 16) |> elem(0)
# ---
Keyword.get([a: 1, b: 2], :c, []) |> length()
