xs = [1, 2, 3, 4, 5, 6]
xs |> Enum.filter(&(rem(&1, 2) == 0)) |> Enum.count()
# ---
users = [%{active: true}, %{active: false}, %{active: nil}, %{active: 1}]
IO.inspect(Enum.filter(users, fn u -> u.active end) |> Enum.count())
Enum.count(Enum.filter(1..10, &(&1 > 7)))
# ---
1..20 |> Stream.filter(&(rem(&1, 3) == 0)) |> Enum.count() |> Kernel.*(2)
# ---
Enum.filter(:not_a_list, & &1) |> Enum.count()
