check = fn x ->
  if !!x do
    :truthy
  else
    :falsy
  end
end

Enum.map([nil, false, true, 0, "", []], check)
# ---
quiet = fn opts -> unless not not is_nil(opts[:quiet]), do: :set, else: :unset end
IO.inspect(Enum.map([[], [quiet: nil], [quiet: false], [quiet: 1]], quiet))
yes = fn x -> if not !x, do: :yes, else: :no end
Enum.map([nil, false, 0, :a], yes)
# ---
any = fn a, b -> if !!(a || b), do: :any end
{any.(nil, false), any.(nil, 1), any.(2, nil)}
