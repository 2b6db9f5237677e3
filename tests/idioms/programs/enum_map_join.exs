names = ["ada", "grace", ""]
IO.inspect(names |> Enum.map(&String.upcase/1) |> Enum.join(", "))
IO.inspect(Enum.map([], &to_string/1) |> Enum.join("-"))
Enum.join(Enum.map(%{a: 1, b: 2}, fn {k, v} -> "#{k}=#{v}" end), "&")
# ---
ids = [1, nil, false, 3.5]
Enum.map(ids, fn id -> inspect(id) end) |> Enum.join()
# ---
1..4 |> Enum.map(&(&1 * &1)) |> Enum.join(1)
