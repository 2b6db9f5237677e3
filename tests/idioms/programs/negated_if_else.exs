check = fn x ->
  if !x do
    :falsy
  else
    :truthy
  end
end

Enum.map([nil, false, true, 0, []], check)
# ---
plural = fn n -> if n != 1, do: "items", else: "item" end
IO.inspect(Enum.map([0, 1, 1.0, 2], plural))
strict = fn n -> if n !== 1, do: :other, else: :one end
Enum.map([1, 1.0, :one], strict)
# ---
admin = fn user ->
  if not (user != nil and user.admin == true) do
    :deny
  else
    :allow
  end
end

{admin.(nil), admin.(%{admin: false}), admin.(%{admin: true}), admin.(%{admin: 1})}
# ---
lines = fn order -> if not Enum.empty?(order), do: length(order), else: :empty end
Enum.map([[], [1], [nil, nil]], lines)
