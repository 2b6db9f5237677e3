2 |> (fn x -> x * 2 end).() |> IO.inspect()
[] |> (&Enum.empty?/1).()
# ---
total = [1.0, 2.5] |> Enum.sum() |> (&(&1 * 1.2)).()
IO.inspect(total)
nil |> (fn
  nil -> :none
  x -> x
end).()
# ---
%{a: 1, b: 2}
|> Map.to_list()
|> (fn pairs ->
  Enum.map(pairs, fn {k, v} -> {v, k} end)
end).()
