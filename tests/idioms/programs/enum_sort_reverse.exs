IO.inspect([3, 1, 2] |> Enum.sort() |> Enum.reverse())
IO.inspect(Enum.sort([3, 1, 2], :desc) |> Enum.reverse())
IO.inspect(Enum.reverse(Enum.sort([], :asc)))
Enum.reverse(Enum.sort(["b", "a", "c"]))
# ---
users = [%{n: "a", score: 3}, %{n: "b", score: 1}, %{n: "c", score: 2}]
IO.inspect(users |> Enum.sort_by(& &1.score) |> Enum.reverse() |> Enum.map(& &1.n))
users |> Enum.sort_by(& &1.n, :desc) |> Enum.reverse() |> Enum.map(& &1.n)
