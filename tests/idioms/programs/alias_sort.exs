defmodule Sorting.Zeta do
  def name, do: :zeta
end

defmodule Sorting.Alpha do
  def name, do: :alpha
end

defmodule Sorting.Client do
  alias Sorting.Zeta
  alias Sorting.Alpha, as: First
  alias Sorting.Alpha

  def names, do: [Zeta.name(), First.name(), Alpha.name()]
end

Sorting.Client.names()
