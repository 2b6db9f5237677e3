scope = fn user ->
  if user[:admin] do
    :all
  else
    nil
  end
end

Enum.map([%{admin: true}, %{admin: false}, %{}], scope)
# ---
work = fn done -> unless done, do: :worked, else: nil end
IO.inspect(Enum.map([nil, false, true, 0], work))
# ---
go = fn ready ->
  if ready do
    :go
  else
  end
end

{go.(true), go.(nil), if(1 > 2, do: :never, else: ())}
