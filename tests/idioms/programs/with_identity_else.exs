run = fn x ->
  with {:ok, a} <- x,
       {:ok, b} <- {:ok, a * 2} do
    {:ok, b}
  else
    error -> error
  end
end

Enum.map([{:ok, 1}, :error, nil, {:error, :bad}], run)
# ---
parse = fn s -> with {n, ""} <- Integer.parse(s), do: n, else: (other -> other) end
IO.inspect(Enum.map(["12", "x", "3a"], parse))
