pairs = [{1, 1}, {1, 1.0}, {nil, false}, {[], []}, {%{a: 1}, %{a: 1, b: 2}}]
IO.inspect(for {a, b} <- pairs, do: not (a == b))
for {a, b} <- pairs, do: !(a === b)
# ---
defmodule Neq do
  def f(x) when not (x == 0), do: {:nonzero, x}
  def f(x), do: {:zero, x}
end

IO.inspect(Enum.map([0, 0.0, 1, -1], &Neq.f/1))
x = 3
ok = !(x == 3) or x > 2
{ok, if(!(x === 3.0), do: :strict, else: :loose)}
