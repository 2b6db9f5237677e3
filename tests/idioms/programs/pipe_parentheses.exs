" Hello " |> String.trim |> String.downcase
# ---
[1, 2, 3] |> Enum.reverse |> length
# ---
%{a: 1, b: nil} |> Map.keys |> Enum.sort |> IO.inspect
"" |> :erlang.binary_to_list
