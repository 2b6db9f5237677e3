defmodule Corpus.Web.OrderController do
  @moduledoc """
  Checkout endpoints. Like the user controller, `conn` is a bare map; the
  "inventory" is a map of SKU => stock held in `conn.assigns`.

  Prices are integer cents. Quantities above `@max_qty` are rejected.
  """

  require Logger

  @max_qty 1_000
  @free_shipping_cents 50000
  @shipping_cents 499
  @sku_pattern ~r/^[A-Z]{3}-\d{4}$/

  defmodule Cart do
    @moduledoc false
    defstruct items: [], coupon: nil

    def add(%__MODULE__{items: items} = cart, sku, qty) do
      %{cart | items: [{sku, qty} | items]}
    end

    def skus(%__MODULE__{items: items}), do: items |> Enum.map(&elem(&1, 0))
  end

  def create(conn, %{"items" => items} = params) when is_list(items) do
    coupon = Map.get(params, "coupon")

    with {:ok, cart} <- build_cart(items, coupon),
         :ok <- check_stock(cart, conn.assigns.inventory),
         {:ok, order} <- price(cart, conn.assigns.prices) do
      {:ok, order}
    else
      {:error, reason} -> {:error, reason}
    end
    |> respond(conn)
  end

  def create(conn, _params), do: respond({:error, :bad_request}, conn)

  def cancel(conn, %{"id" => id}) do
    orders = conn.assigns.orders

    unless Map.has_key?(orders, id) do
      respond({:error, :not_found}, conn)
    else
      conn = put_in(conn.assigns.orders, Map.drop(orders, [id]))
      respond({:ok, %{id: id, status: "cancelled"}}, conn)
    end
  end

  def receipt(conn, %{"id" => id}) do
    with {:ok, order} <- Map.fetch(conn.assigns.orders, id) do
      lines =
        order.lines
        |> Enum.map(fn {sku, qty, cents} -> "#{sku} × #{qty}  #{cents}" end)
        |> Enum.join("\n")

      respond({:ok, %{id: id, text: lines <> "\n" <> "Total: #{order.total}"}}, conn)
    end
    |> case do
      :error -> respond({:error, :not_found}, conn)
      conn -> conn
    end
  end

  def health(), do: %{status: 200, resp_body: %{ok: true, node: node()}}

  defp build_cart(items, coupon) do
    try do
      cart =
        Enum.reduce(items, %Cart{coupon: coupon}, fn %{"sku" => sku, "qty" => qty}, cart ->
          if !(sku =~ @sku_pattern) or qty not in 1..@max_qty, do: throw({:invalid, sku})
          Cart.add(cart, sku, qty)
        end)

      {:ok, %{cart | items: Enum.reverse(cart.items)}}
    catch
      {:invalid, sku} -> {:error, {:invalid_item, sku}}
    end
  end

  defp check_stock(cart, inventory) do
    short =
      cart.items
      |> Enum.filter(fn {sku, _qty} -> Map.has_key?(inventory, sku) end)
      |> Enum.filter(fn {sku, qty} -> Map.fetch!(inventory, sku) < qty end)
      |> Enum.into([])

    cond do
      short == [] -> :ok
      true -> {:error, {:out_of_stock, Enum.map(short, &elem(&1, 0))}}
    end
  end

  defp price(%Cart{items: items, coupon: coupon}, prices) do
    lines = for {sku, qty} <- items, do: {sku, qty, Map.get(prices, sku, 0) * qty}
    subtotal = lines |> Enum.map(&elem(&1, 2)) |> Enum.sum()
    discount = if !!coupon and coupon == "WELCOME10", do: div(subtotal, 10), else: 0
    shipping = if subtotal - discount >= @free_shipping_cents, do: 0, else: @shipping_cents

    total =
      (subtotal - discount + shipping)
      |> (fn cents -> apply(Kernel, :max, [cents, 0]) end).()

    {:ok, %{lines: lines, subtotal: subtotal, discount: discount, total: total}}
  end

  defp respond({:ok, body}, conn), do: %{conn | status: 200, resp_body: body}

  defp respond({:error, reason}, conn) do
    Logger.info("order request failed: #{inspect(reason)}")
    %{conn | status: status_for(reason), resp_body: %{error: inspect(reason)}}
  end

  defp status_for(:not_found), do: 404
  defp status_for(:bad_request), do: 400
  defp status_for({:out_of_stock, _}), do: 409
  defp status_for(_), do: 422
end
