bar = [3, 1, 2]
foo = bar |> Enum.sort(:desc)
IO.inspect(foo)
count = [] |> length
IO.inspect(count)
%{a: 1, b: 2} |> Map.put(:c, nil)
# ---
names =
  [%{name: "Ana"}, %{name: "Bo"}]
  |> Enum.map(& &1.name)

IO.puts(Enum.join(names, ", "))
y = -5 |> abs()
fun = &(&1 |> Kernel.-(2))
{y, fun.(10)}
# ---
x = (1 + 2) |> div(2)
IO.inspect(x)
nil |> is_nil()
# ---
s = "ab" |> String.duplicate(0)
{s, [] |> Enum.max(fn -> :empty end)}
