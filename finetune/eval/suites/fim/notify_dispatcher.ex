defmodule Notify.Channel do
  @moduledoc "Behaviour for delivery channels (e-mail, SMS, chat webhooks, ...)."

  @type message :: %{to: String.t(), body: String.t()}

  @callback deliver(message(), keyword()) :: :ok | {:error, term()}
  @callback max_length() :: pos_integer() | :infinity

  @optional_callbacks max_length: 0
end

defprotocol Notify.Recipient do
  @fallback_to_any true

  @doc "The address to use on `channel`, or nil when the recipient cannot be reached there."
  def address(recipient, channel)
end

defimpl Notify.Recipient, for: Any do
  def address(_recipient, _channel), do: nil
end

defimpl Notify.Recipient, for: Map do
  def address(recipient, :email), do: Map.get(recipient, :email)
  def address(recipient, :sms), do: Map.get(recipient, :phone)
  def address(_recipient, _channel), do: nil
end

defmodule Notify.Channels.Mailbox do
  @moduledoc "A channel that only sends the message to a process; handy in tests."
  @behaviour Notify.Channel

  @impl true
  def deliver(message, opts) do
    send(Keyword.get(opts, :test_pid, self()), {:delivered, message})
    :ok
  end

  @impl true
  def max_length, do: 160
end

defmodule Notify.Dispatcher do
  @moduledoc """
  Sends one notification to many recipients over the configured channels, in
  order: a recipient without an address on the first channel is tried on the
  next one.
  """

  require Logger

  @type result :: {:sent, atom()} | {:failed, term()} | :unreachable

  @spec dispatch([term()], String.t(), keyword()) :: %{optional(term()) => result()}
  def dispatch(recipients, body, opts \\ []) do
    channels = Keyword.get(opts, :channels, email: Notify.Channels.Mailbox)

    recipients
    |> Task.async_stream(fn recipient -> {recipient, deliver_one(recipient, body, channels, opts)} end,
      max_concurrency: Keyword.get(opts, :concurrency, 4),
      timeout: Keyword.get(opts, :timeout, 5_000),
      on_timeout: :kill_task
    )
    |> Enum.zip(recipients)
    |> Map.new(fn
      {{:ok, {recipient, result}}, _recipient} -> {recipient, result}
      {{:exit, reason}, recipient} -> {recipient, {:failed, reason}}
    end)
  end

  defp deliver_one(recipient, body, channels, opts) do
    Enum.reduce_while(channels, :unreachable, fn {name, module}, _acc ->
      case Notify.Recipient.address(recipient, name) do
        nil ->
          {:cont, :unreachable}

        address ->
          message = %{to: address, body: truncate(body, module)}
          {:halt, send_with(module, name, message, opts)}
      end
    end)
  end

  defp send_with(module, name, message, opts) do
    case module.deliver(message, opts) do
      :ok ->
        {:sent, name}

      {:error, reason} ->
        Logger.warning("#{inspect(module)} could not deliver to #{message.to}: #{inspect(reason)}")
        {:failed, reason}
    end
  end

  defp truncate(body, module) do
    limit =
      if Code.ensure_loaded?(module) and function_exported?(module, :max_length, 0),
        do: module.max_length(),
        else: :infinity

    cond do
      limit == :infinity -> body
      String.length(body) <= limit -> body
      true -> String.slice(body, 0, limit - 1) <> "…"
    end
  end
end
