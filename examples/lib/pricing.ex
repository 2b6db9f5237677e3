defmodule Shop.Pricing do
  @moduledoc "Discount rules for carts. Amounts are integers in cents."

  alias Shop.Customer

  @loyalty_percent 5

  @doc "Applies the customer's discounts to `total`."
  @spec apply_discounts(non_neg_integer(), String.t()) :: non_neg_integer()
  def apply_discounts(total, customer_id) do
    customer = Customer.fetch!(customer_id)

    total
    |> loyalty_discount(customer)
    |> bulk_discount()
  end

  @doc "Takes `percent` percent off `amount`, rounding down."
  @spec percent_off(non_neg_integer(), 0..100) :: non_neg_integer()
  def percent_off(amount, percent) do
    ‸
  end

  defp loyalty_discount(total, %Customer{loyal?: true}), do: percent_off(total, @loyalty_percent)
  defp loyalty_discount(total, _customer), do: total

  defp bulk_discount(total) when total > 100_00 do
    ‸
  end

  defp bulk_discount(total), do: total
end
