defmodule Metrics.Report do
  @moduledoc """
  Builds a plain-text latency report from request log entries.

  An entry is a map with `:path`, `:status`, `:duration_ms` and `:at` (a
  `DateTime`). The report groups entries per endpoint, computes nearest-rank
  percentiles and renders an aligned table.
  """

  @percentiles [50, 90, 99]

  @type entry :: %{
          path: String.t(),
          status: pos_integer(),
          duration_ms: number(),
          at: DateTime.t()
        }
  @type row :: %{
          path: String.t(),
          count: non_neg_integer(),
          errors: non_neg_integer(),
          p50: number(),
          p90: number(),
          p99: number()
        }

  @doc "Summarises entries per endpoint, slowest p99 first."
  @spec summarize([entry()]) :: [row()]
  def summarize(entries) do
    entries
    |> Enum.group_by(&normalize_path(&1.path))
    |> Enum.map(fn {path, group} -> summarize_group(path, group) end)
    |> Enum.sort_by(&{-&1.p99, &1.path})
  end

  @doc "Number of entries per calendar day (UTC), oldest day first."
  @spec daily_counts([entry()]) :: [{Date.t(), pos_integer()}]
  def daily_counts(entries) do
    entries
    |> Enum.frequencies_by(&DateTime.to_date(&1.at))
    |> Enum.sort_by(fn {date, _count} -> date end, Date)
  end

  @doc "Share of server errors (status 500 and above) as a percentage with one decimal."
  @spec error_rate([entry()]) :: float()
  def error_rate([]), do: 0.0

  def error_rate(entries) do
    errors = Enum.count(entries, &(&1.status >= 500))
    Float.round(errors * 100 / length(entries), 1)
  end

  @doc "Renders rows as an aligned text table under a header line."
  @spec render([row()]) :: String.t()
  def render(rows) do
    header = ["endpoint", "count", "errors" | Enum.map(@percentiles, &"p#{&1}")]

    body =
      Enum.map(rows, fn row ->
        Enum.map([row.path, row.count, row.errors, row.p50, row.p90, row.p99], &format_cell/1)
      end)

    widths =
      Enum.zip_with([header | body], fn column ->
        column |> Enum.map(&String.length/1) |> Enum.max()
      end)

    [header | body]
    |> Enum.map(fn cells ->
      cells
      |> Enum.zip(widths)
      |> Enum.with_index()
      |> Enum.map_join("  ", fn
        {{cell, width}, 0} -> String.pad_trailing(cell, width)
        {{cell, width}, _index} -> String.pad_leading(cell, width)
      end)
    end)
    |> Enum.join("\n")
  end

  @doc "Nearest-rank percentile of a non-empty list of numbers."
  @spec percentile([number(), ...], 0..100) :: number()
  def percentile(values, p) when values != [] and p in 0..100 do
    sorted = Enum.sort(values)
    rank = max(ceil(p / 100 * length(sorted)), 1)
    Enum.at(sorted, rank - 1)
  end

  defp summarize_group(path, group) do
    durations = Enum.map(group, & &1.duration_ms)
    stats = Map.new(@percentiles, fn p -> {:"p#{p}", percentile(durations, p)} end)

    Map.merge(stats, %{
      path: path,
      count: length(group),
      errors: Enum.count(group, &(&1.status >= 500))
    })
  end

  # "/users/42/orders/7" and "/users/9/orders/1" are the same endpoint.
  defp normalize_path(path) do
    path
    |> String.split("/")
    |> Enum.map_join("/", fn segment ->
      if segment =~ ~r/^\d+$/, do: ":id", else: segment
    end)
  end

  defp format_cell(value) when is_float(value), do: :erlang.float_to_binary(value, decimals: 1)
  defp format_cell(value) when is_integer(value), do: Integer.to_string(value)
  defp format_cell(value) when is_binary(value), do: value
end
