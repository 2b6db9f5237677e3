defmodule Ledger.CSV do
  @moduledoc """
  A small RFC 4180-style CSV reader for bank statement exports.

  Fields are separated by commas. A field may be wrapped in double quotes, and
  then it can contain commas, newlines and doubled quotes (`""`).
  """

  @type row :: [String.t()]

  @doc ~S"""
  Parses a whole document into rows.

      iex> Ledger.CSV.parse("a,b\n1,\"x, y\"\n")
      {:ok, [["a", "b"], ["1", "x, y"]]}
  """
  @spec parse(binary()) :: {:ok, [row()]} | {:error, {:unterminated_quote, pos_integer()}}
  def parse(document) when is_binary(document) do
    do_parse(document, [], [], "", 1)
  end

  @doc "Parses a document and turns each row into a map keyed by the header row."
  @spec parse_with_header(binary()) :: {:ok, [map()]} | {:error, term()}
  def parse_with_header(document) do
    with {:ok, [header | rows]} <- parse(document),
         :ok <- check_widths(header, rows) do
      {:ok, Enum.map(rows, fn row -> header |> Enum.zip(row) |> Map.new() end)}
    else
      {:ok, []} -> {:ok, []}
      {:error, _reason} = error -> error
    end
  end

  @doc "Converts a decimal amount such as `\"-12.5\"` to integer cents."
  @spec to_cents(String.t()) :: {:ok, integer()} | :error
  def to_cents(amount) do
    case String.split(String.trim(amount), ".") do
      [whole] ->
        whole |> Integer.parse() |> cents(0)

      [whole, frac] when byte_size(frac) in 1..2 ->
        with {int, ""} <- Integer.parse(whole),
             {fraction, ""} <- Integer.parse(String.pad_trailing(frac, 2, "0")) do
          sign = if String.starts_with?(whole, "-"), do: -1, else: 1
          {:ok, int * 100 + sign * fraction}
        else
          _ -> :error
        end

      _ ->
        :error
    end
  end

  # do_parse(rest, fields_of_current_row_reversed, rows_reversed, current_field, line)
  defp do_parse(<<>>, [], rows, "", _line), do: {:ok, Enum.reverse(rows)}

  defp do_parse(<<>>, fields, rows, field, _line) do
    {:ok, Enum.reverse([finish_row(fields, field) | rows])}
  end

  defp do_parse(<<"\r\n", rest::binary>>, fields, rows, field, line) do
    do_parse(rest, [], [finish_row(fields, field) | rows], "", line + 1)
  end

  defp do_parse(<<?\n, rest::binary>>, fields, rows, field, line) do
    do_parse(rest, [], [finish_row(fields, field) | rows], "", line + 1)
  end

  defp do_parse(<<?,, rest::binary>>, fields, rows, field, line) do
    do_parse(rest, [field | fields], rows, "", line)
  end

  defp do_parse(<<?", rest::binary>>, fields, rows, "", line) do
    case quoted(rest, "", line) do
      {:ok, value, rest, new_line} -> do_parse(rest, fields, rows, value, new_line)
      :error -> {:error, {:unterminated_quote, line}}
    end
  end

  defp do_parse(<<char::utf8, rest::binary>>, fields, rows, field, line) do
    do_parse(rest, fields, rows, <<field::binary, char::utf8>>, line)
  end

  defp quoted(<<?", ?", rest::binary>>, acc, line), do: quoted(rest, <<acc::binary, ?">>, line)
  defp quoted(<<?", rest::binary>>, acc, line), do: {:ok, acc, rest, line}
  defp quoted(<<?\n, rest::binary>>, acc, line), do: quoted(rest, <<acc::binary, ?\n>>, line + 1)
  defp quoted(<<char::utf8, rest::binary>>, acc, line), do: quoted(rest, <<acc::binary, char::utf8>>, line)
  defp quoted(<<>>, _acc, _line), do: :error

  defp finish_row(fields, field), do: Enum.reverse([field | fields])

  defp check_widths(header, rows) do
    width = length(header)

    case Enum.find_index(rows, &(length(&1) != width)) do
      nil -> :ok
      index -> {:error, {:wrong_width, index + 2}}
    end
  end

  defp cents({int, ""}, extra), do: {:ok, int * 100 + extra}
  defp cents(_parsed, _extra), do: :error
end
