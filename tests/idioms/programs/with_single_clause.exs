greet = fn result ->
  with {:ok, user} <- result do
    "hi " <> user
  else
    {:error, :not_found} -> :anonymous
    other -> {:other, other}
  end
end

Enum.map([{:ok, "ann"}, {:error, :not_found}, nil, {:ok, "bob"}], greet)
# ---
check = fn x -> with :ok <- x, do: :passed, else: (:error -> :failed; _ -> :weird) end
IO.inspect(Enum.map([:ok, :error, false], check))
# ---
pos = fn s ->
  with {n, ""} when n > 0 <- Integer.parse(s) do
    n
  else
    _ -> 0
  end
end

{pos.("5"), pos.("-5"), pos.("x"), pos.("5x")}
