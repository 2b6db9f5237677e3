sign = fn balance ->
  cond do
    balance > 0 -> :credit
    true -> :debit
  end
end

Enum.map([-1, 0, 1, 2.5], sign)
# ---
label = fn user ->
  cond do
    user[:admin] ->
      IO.puts("admin seen")
      "admin"

    :else ->
      "member"
  end
end

IO.inspect(Enum.map([%{admin: true}, %{admin: nil}, %{}, %{admin: 0}], label))
# ---
total = fn items ->
  cond do
    Enum.empty?(items) -> 0
    true -> Enum.sum(items)
  end
end

{total.([]), total.([1, 2, 3])}
