IO.inspect(apply(Enum, :reverse, [[1, 2, 3]]))
IO.inspect(apply(:erlang, :phash2, [{:a, nil}]))
apply(Keyword, :get, [[a: false], :a, :default])
# ---
callback = fn a, b -> {b, a} end
IO.inspect(apply(callback, [nil, []]))
zero = fn -> :zero end
apply(zero, [])
# ---
mod = String
try do
  apply(mod, :upcase, [:not_a_string])
rescue
  e -> e.__struct__
end
