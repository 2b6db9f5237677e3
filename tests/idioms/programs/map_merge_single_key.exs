user = %{name: "old", age: 3}
IO.inspect(Map.merge(user, %{name: "new"}))
IO.inspect(Map.merge(%{}, %{name: nil}))
Map.merge(user, %{"name" => false})
# ---
maps = [%{}, %{a: 1}, %{"a" => 1, a: 2, b: 3}]
for m <- maps, do: m |> Map.merge(%{a: :x}) |> Map.to_list() |> Enum.sort()
# ---
try do
  Map.merge(:not_a_map, %{k: 1})
rescue
  e -> IO.inspect(e.__struct__)
end
Map.merge(%{1 => :one}, %{1.0 => :float_one})
