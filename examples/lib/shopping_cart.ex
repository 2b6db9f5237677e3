defmodule Shop.ShoppingCart do
  @moduledoc """
  A shopping cart kept in a GenServer: add items, remove them, total the price. Prices are in cents.
  `make demo` asks for completions at the cursor markers in this file (removed before opening it).
  """
  use GenServer

  alias Shop.{Item, Pricing}
  require Logger

  @type cart :: %{optional(String.t()) => {Item.t(), pos_integer()}}

  ## Client API

  @doc "Starts a cart process for the given customer."
  @spec start_link(String.t()) :: GenServer.on_start()
  def start_link(customer) do
    GenServer.start_link(__MODULE__, customer, name: via(customer))
  end

  @doc "Adds `quantity` units of `item` to the cart."
  @spec add_item(GenServer.server(), Item.t(), pos_integer()) :: :ok
  def add_item(cart, %Item{} = item, quantity \\ 1) when quantity > 0 do
    GenServer.call(cart, {:add, item, quantity})
  end

  @doc "Removes every unit of the item with `sku` from the cart."
  @spec remove_item(GenServer.server(), String.t()) :: :ok
  def remove_item(cart, sku) do
    ‸
  end

  @doc "The total price of the cart in cents, discounts applied (« Ünïcödé » safe)."
  @spec total(GenServer.server()) :: non_neg_integer()
  def total(cart) do
    GenServer.call(cart, :total)
  end

  ## Server callbacks

  @impl true
  def init(customer) do
    Logger.debug("cart started for #{customer}")
    {:ok, %{customer: customer, items: %{}}}
  end

  @impl true
  def handle_call({:add, item, quantity}, _from, state) do
    items = Map.update(state.items, item.sku, {item, quantity}, fn {item, n} -> {item, n + quantity} end)
    {:reply, :ok, %{state | items: items}}
  end

  def handle_call({:remove, sku}, _from, state) do
    {:reply, :ok, %{state | items: Map.delete(state.items, sku)}}
  end

  def handle_call(:total, _from, state) do
    total =
      state.items
      |> Map.values()
      |> Enum.map(fn {item, quantity} -> ‸ end)
      |> Enum.sum()

    {:reply, Pricing.apply_discounts(total, state.customer), state}
  end

  defp via(customer), do: {:via, Registry, {Shop.CartRegistry, customer}}
end
