users = [%{active: true, age: 20}, %{active: nil, age: 30}, %{active: 1, age: 10}, %{active: true, age: 18}]
IO.inspect(users |> Enum.filter(& &1.active) |> Enum.filter(&(&1.age > 17)))
Enum.filter(users, fn u -> u.active end) |> Enum.filter(fn u -> u.age == 30 || u.age < 19 end)
# ---
xs = [nil, 0, 1, false, 2, "", :x]
IO.inspect(Enum.reject(Enum.reject(xs, &is_nil/1), &(&1 == false || &1 == 0)))
keep? = &is_integer/1
xs |> Enum.filter(keep?) |> Enum.filter(fn v -> Enum.any?([v], &(&1 > 0)) end)
# ---
Enum.filter([], & &1) |> Enum.filter(& &1)
