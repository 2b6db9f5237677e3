defmodule ZeroArity do
  def config(), do: %{a: 1}
  defp secret() do
    :hidden
  end
  def reveal(), do: {config(), secret()}
end

IO.inspect(ZeroArity.reveal())
{function_exported?(ZeroArity, :config, 0), ZeroArity.__info__(:functions)}
