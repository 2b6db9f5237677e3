defmodule Warehouse.Inventory do
  @moduledoc """
  Stock levels and reservations for a single warehouse.

  The inventory is a plain struct, so callers can keep it in whatever process
  they like (a GenServer, an Agent, a test). Every function returns a new
  inventory or a tagged error.
  """

  alias __MODULE__, as: Inventory

  defstruct stock: %{}, reservations: %{}, next_ref: 1

  @type sku :: String.t()
  @type ref :: pos_integer()
  @type t :: %Inventory{
          stock: %{sku() => non_neg_integer()},
          reservations: %{ref() => {sku(), pos_integer()}},
          next_ref: ref()
        }

  @doc "Builds an inventory from `{sku, quantity}` pairs."
  @spec new([{sku(), non_neg_integer()}]) :: t()
  def new(levels \\ []) do
    Enum.reduce(levels, %Inventory{}, fn {sku, qty}, inv -> receive_stock(inv, sku, qty) end)
  end

  @doc "Adds delivered units to the stock of `sku`."
  @spec receive_stock(t(), sku(), non_neg_integer()) :: t()
  def receive_stock(%Inventory{} = inv, sku, qty) when is_integer(qty) and qty >= 0 do
    %{inv | stock: Map.update(inv.stock, sku, qty, &(&1 + qty))}
  end

  @doc "Units of `sku` that are neither shipped nor reserved."
  @spec available(t(), sku()) :: integer()
  def available(%Inventory{} = inv, sku) do
    on_hand = Map.get(inv.stock, sku, 0)

    reserved =
      inv.reservations
      |> Map.values()
      |> Enum.filter(fn {reserved_sku, _qty} -> reserved_sku == sku end)
      |> Enum.map(fn {_sku, qty} -> qty end)
      |> Enum.sum()

    on_hand - reserved
  end

  @doc """
  Reserves `qty` units of `sku` for an order.

  Returns `{:ok, ref, inventory}`; the reference is needed to release or
  fulfil the reservation later.
  """
  @spec reserve(t(), sku(), pos_integer()) ::
          {:ok, ref(), t()}
          | {:error, :unknown_sku | :invalid_quantity | {:short, non_neg_integer()}}
  def reserve(%Inventory{} = inv, sku, qty) do
    with :ok <- validate_quantity(qty),
         {:ok, _on_hand} <- fetch_sku(inv, sku),
         :ok <- ensure_available(inv, sku, qty) do
      ref = inv.next_ref
      reservations = Map.put(inv.reservations, ref, {sku, qty})
      {:ok, ref, %{inv | reservations: reservations, next_ref: ref + 1}}
    end
  end

  @doc "Cancels a reservation, making its units available again."
  @spec release(t(), ref()) :: {:ok, t()} | {:error, :unknown_reservation}
  def release(%Inventory{} = inv, ref) do
    case Map.pop(inv.reservations, ref) do
      {nil, _reservations} -> {:error, :unknown_reservation}
      {_reservation, rest} -> {:ok, %{inv | reservations: rest}}
    end
  end

  @doc "Ships a reserved order: its units leave the stock for good."
  @spec fulfil(t(), ref()) :: {:ok, t()} | {:error, :unknown_reservation}
  def fulfil(%Inventory{} = inv, ref) do
    with {:ok, {sku, qty}} <- tag(Map.fetch(inv.reservations, ref), :unknown_reservation) do
      stock = Map.update!(inv.stock, sku, &(&1 - qty))
      {:ok, %{inv | stock: stock, reservations: Map.delete(inv.reservations, ref)}}
    end
  end

  @doc "SKUs whose available quantity is at or below `threshold`, sorted."
  @spec low_stock(t(), non_neg_integer()) :: [sku()]
  def low_stock(%Inventory{} = inv, threshold) do
    inv.stock
    |> Map.keys()
    |> Enum.filter(&(available(inv, &1) <= threshold))
    |> Enum.sort()
  end

  defp validate_quantity(qty) when is_integer(qty) and qty > 0, do: :ok
  defp validate_quantity(_qty), do: {:error, :invalid_quantity}

  defp fetch_sku(inv, sku), do: tag(Map.fetch(inv.stock, sku), :unknown_sku)

  defp ensure_available(inv, sku, qty) do
    case available(inv, sku) do
      free when free >= qty -> :ok
      free -> {:error, {:short, free}}
    end
  end

  defp tag({:ok, value}, _reason), do: {:ok, value}
  defp tag(:error, reason), do: {:error, reason}
end
