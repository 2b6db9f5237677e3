defmodule Div do
  def safe(a, b) do
    try do
      a / b
    rescue
      ArithmeticError -> :infinity
    else
      result -> {:ok, result}
    end
  end
end

Enum.map([{1, 2}, {1, 0}, {0, 3}], fn {a, b} -> Div.safe(a, b) end)
# ---
defmodule Thrower do
  def run(x) do
    try do
      if x == :throw, do: throw(:boom)
      if x == :exit, do: exit(:bye)
      x
    catch
      :throw, value -> {:thrown, value}
      :exit, reason -> {:exited, reason}
    after
      IO.puts("cleanup #{inspect(x)}")
    end
  end
end

IO.inspect(Enum.map([:ok, :throw, :exit, nil], &Thrower.run/1))
# ---
defmodule Raiser do
  defp fetch(map, key) do
    try do
      Map.fetch!(map, key)
    rescue
      e in KeyError -> {:missing, e.key}
    end
  end

  def all(map), do: Enum.map([:a, :b], &fetch(map, &1))
end

Raiser.all(%{a: 1})
