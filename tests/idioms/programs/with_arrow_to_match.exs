run = fn x ->
  with {:ok, a} <- x,
       _ <- IO.puts("got #{inspect(a)}"),
       b <- a * 2 do
    {:ok, b}
  end
end

Enum.map([{:ok, 1}, :error, {:ok, 0}], run)
# ---
f = fn v -> with n <- v, do: n, else: (_ -> :never) end
IO.inspect(Enum.map([nil, false, 1], f))
# ---
g = fn v -> with _ <- v, x <- nil, do: {v, x} end
{g.(1), g.(nil)}
