# Keyword.put puts the key first, merge last: print lookups and sorted lists, which both keep.
opts = [timeout: 1, retry: true, timeout: 2]
merged = Keyword.merge(opts, timeout: 5_000)
IO.inspect({Keyword.get_values(merged, :timeout), Enum.sort(merged)})
Keyword.fetch!(Keyword.merge([], [log: nil]), :log)
# ---
for kw <- [[], [a: 1], [b: false, a: 2]] do
  result = kw |> Keyword.merge(a: :x)
  {Keyword.get(result, :a), length(result), Enum.sort(result)}
end
