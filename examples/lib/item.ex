defmodule Shop.Item do
  @moduledoc "An item that can be put in a cart."

  @enforce_keys [:sku, :name, :price]
  defstruct [:sku, :name, :price, tags: []]

  @type t :: %__MODULE__{sku: String.t(), name: String.t(), price: non_neg_integer(), tags: [atom()]}

  @doc "Builds an item, checking that the price is not negative."
  @spec new(String.t(), String.t(), integer()) :: {:ok, t()} | {:error, :negative_price}
  def new(sku, name, price) when price >= 0 do
    {:ok, %__MODULE__{sku: sku, name: name, price: price}}
  end

  def new(_sku, _name, _price), do: {:error, :negative_price}

  @doc "True when the item carries `tag`."
  @spec tagged?(t(), atom()) :: boolean()
  def tagged?(%__MODULE__{tags: tags}, tag), do: ‸
end
