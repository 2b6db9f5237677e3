run = fn x ->
  unless !x do
    :ran
  end
end

Enum.map([nil, false, true, 0, :ok], run)
# ---
check = fn a, b -> unless not (a == b), do: :same end
IO.inspect({check.(1, 1), check.(1, 1.0), check.(nil, false)})
# ---
opts = %{name: "x", size: nil}
unless not Map.has_key?(opts, :size), do: IO.puts("size key")
unless !Map.get(opts, :size), do: IO.puts("size set")
unless not is_binary(opts.name) and opts.name != "", do: IO.puts("named")
