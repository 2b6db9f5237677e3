defmodule Shop.WeeklyReport do
  @moduledoc """
  Builds the weekly sales summary mailed to the shop owners.
  """

  require Logger

  alias Shop.Orders
  alias Shop.Mailer

  @spec active_customers([map()]) :: non_neg_integer()
  def active_customers(customers) do
    customers |> Enum.filter(&(&1.orders > 0)) |> Enum.count()
  end

  def headline(orders) do
    unless length(orders) == 0 do
      "#{length(orders)} orders this week"
    else
      "No orders this week"
    end
  end

  def product_names(orders) do
    orders |> Enum.map(& &1.product) |> Enum.join(", ")
  end

  def totals_by_customer(orders) do
    Enum.group_by(orders, & &1.customer) |> Enum.map(fn {c, os} -> {c, total(os)} end) |> Enum.into(%{})
  end

  def tag(report, key, value), do: Map.merge(report, %{key => value})

  def send(report) do
    cond do
      report.total > 100_000 -> Mailer.deliver(report, :priority)
      true -> Mailer.deliver(report, :normal)
    end
  end

  def warn_if_empty(orders) do
    if not (orders == []) do
      :ok
    else
      Logger.warn("empty week")
      :empty
    end
  end

  defp total(orders), do: orders |> Enum.map(& &1.amount) |> Enum.sum()

  def orders_since(date), do: Orders.since(date) |> Enum.reverse()
end
