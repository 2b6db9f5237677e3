params = %{"password" => "x", "name" => "n", password: :atom_key}
IO.inspect(Map.drop(params, ["password"]))
IO.inspect(Map.drop(%{}, [:missing]))
Map.drop(%{nil => 1, false => 2}, [nil])
# ---
for opts <- [[], [timeout: 1], [timeout: 1, retry: true, timeout: 2]] do
  opts |> Keyword.drop([:timeout])
end
# ---
try do
  Map.drop(:not_a_map, [:a])
rescue
  e -> e.__struct__
end
