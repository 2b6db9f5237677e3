defmodule Corpus.SalesReport do
  @moduledoc """
  Aggregates order line items into the numbers finance asks for every Monday.

  Everything here is pure: feed it a list of `%Order{}` structs, get maps back.

      iex> Corpus.SalesReport.total([])
      0
  """

  alias Corpus.SalesReport.Order
  alias Corpus.SalesReport.Format

  @currency "€"
  @big_order_cents 1000000
  @regions ~w(north south east west)

  defmodule Order do
    @moduledoc false
    defstruct [:id, :customer, :region, :placed_on, status: :paid, lines: []]
  end

  defmodule Format do
    @moduledoc false

    @doc "Formats cents as a human-readable amount, e.g. `1 234,50 €`."
    def money(cents, currency) when is_integer(cents) do
      sign = if cents < 0, do: "-", else: ""
      cents = abs(cents)
      units = cents |> div(100) |> Integer.to_string() |> group()
      "#{sign}#{units},#{cents |> rem(100) |> pad()} #{currency}"
    end

    defp pad(n) when n < 10, do: "0#{n}"
    defp pad(n), do: Integer.to_string(n)

    defp group(digits) do
      digits
      |> String.graphemes()
      |> Enum.reverse()
      |> Enum.chunk_every(3)
      |> Enum.map(&Enum.reverse/1)
      |> Enum.reverse()
      |> Enum.map_join(" ", &Enum.join/1)
    end
  end

  @doc "Sum of all paid order totals, in cents."
  def total(orders) do
    orders
    |> Enum.filter(&paid?/1)
    |> Enum.map(&order_total/1)
    |> Enum.sum()
  end

  @doc """
  Revenue per region, including regions with no sales (reported as zero).
  """
  def by_region(orders) do
    zeros = Map.new(@regions, &{&1, 0})

    sums =
      orders
      |> Enum.filter(&paid?/1)
      |> Enum.group_by(& &1.region)
      |> Enum.map(fn {region, group} ->
        {region, group |> Enum.map(&order_total/1) |> Enum.sum()}
      end)
      |> Enum.into(%{})

    Map.merge(zeros, sums)
  end

  def top_customers(orders, n \\ 5) do
    orders
    |> Enum.filter(&paid?/1)
    |> Enum.group_by(& &1.customer, &order_total/1)
    |> Enum.map(fn {customer, totals} -> {Enum.sum(totals), customer} end)
    |> Enum.sort()
    |> Enum.reverse()
    |> Enum.take(n)
    |> Enum.map(fn {cents, customer} -> %{customer: customer, revenue: cents} end)
  end

  def refund_rate(orders) do
    # Guard against an empty week before dividing.
    if length(orders) == 0 do
      0.0
    else
      refunded = Enum.count(orders, &(&1.status == :refunded))
      Float.round(refunded / length(orders) * 100, 1)
    end
  end

  def first_big_order(orders) do
    orders
    |> Enum.filter(fn order -> order_total(order) >= @big_order_cents end)
    |> List.first()
  end

  def summary_line(orders) do
    regions =
      orders
      |> by_region()
      |> Enum.sort_by(fn {region, _} -> region end)
      |> Enum.map(fn {region, cents} -> "#{region}: #{Format.money(cents, @currency)}" end)
      |> Enum.join(" · ")

    "Total #{Format.money(total(orders), @currency)} (#{regions})"
  end

  def weekday_histogram(orders) do
    Enum.reduce(orders, %{}, fn %Order{placed_on: %Date{} = day}, acc ->
      Map.update(acc, Date.day_of_week(day), 1, &(&1 + 1))
    end)
  end

  defp paid?(%Order{status: status}), do: status in [:paid, :shipped]

  defp order_total(%Order{lines: lines}) do
    for %{qty: qty, unit_cents: price} <- lines, qty > 0, reduce: 0 do
      acc -> acc + qty * price
    end
  end
end
