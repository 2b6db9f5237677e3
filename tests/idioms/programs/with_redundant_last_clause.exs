run = fn x, y ->
  with {:ok, a} <- x,
       {:ok, b} <- y.(a) do
    {:ok, b}
  end
end

Enum.map([{{:ok, 1}, &{:ok, &1 + 1}}, {:error, &{:ok, &1}}, {{:ok, 2}, fn _ -> :nope end}], fn {x, y} -> run.(x, y) end)
# ---
split = fn list -> with [h | t] <- list, do: [h | t] end
IO.inspect(Enum.map([[1, 2], [], [3], :x], split))
# ---
pair = fn v -> with {a, "b", 1} <- v, do: {a, "b", 1} end
{pair.({:x, "b", 1}), pair.({:x, "c", 1}), pair.({:x, "b", 1.0})}
