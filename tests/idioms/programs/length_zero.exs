IO.inspect(length([]) == 0)
IO.inspect(length([nil, false]) > 0)
IO.inspect(0 != length([1]))
IO.inspect(if length([]) === 0, do: :empty, else: :full)
true == length([1, 2]) > 0
# ---
defmodule LengthZeroProbe do
  def busy?(queue) when length(queue) == 0, do: false
  def busy?(_queue), do: true
end
IO.inspect({LengthZeroProbe.busy?([1]), LengthZeroProbe.busy?([]), LengthZeroProbe.busy?(:nope)})
[1, 2, 3] |> Enum.reject(&(&1 < 5)) |> length() == 0
