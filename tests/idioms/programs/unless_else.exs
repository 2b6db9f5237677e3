check = fn x ->
  unless x do
    :falsy
  else
    :truthy
  end
end

Enum.map([nil, false, true, 0, [], ""], check)
# ---
classify = fn n -> unless n > 0, do: "non-positive", else: "positive" end
IO.inspect(Enum.map([-1, 0, 1], classify))
# ---
pick = fn list ->
  unless Enum.empty?(list) do
    hd(list)
  else
    :none
  end
end

{pick.([]), pick.([nil]), pick.([3, 4])}
