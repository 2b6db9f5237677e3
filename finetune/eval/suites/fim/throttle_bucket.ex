defmodule Throttle.Bucket do
  @moduledoc """
  A token bucket per client key.

  Each key starts with `capacity` tokens. Every `refill_ms` milliseconds every
  bucket gains `refill` tokens, never more than `capacity`. A request takes one
  token; without a token it is denied and the caller learns how long to wait.
  """

  use GenServer

  require Logger

  @default_opts [capacity: 10, refill: 1, refill_ms: 1_000]

  defstruct [:capacity, :refill, :refill_ms, buckets: %{}]

  ## Client API

  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    {name, opts} = Keyword.pop(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, opts, name: name)
  end

  @doc "Takes a token for `key`: `:ok`, or `{:error, :rate_limited, retry_after_ms}`."
  @spec check(GenServer.server(), term()) :: :ok | {:error, :rate_limited, non_neg_integer()}
  def check(server \\ __MODULE__, key) do
    GenServer.call(server, {:check, key})
  end

  @doc "Tokens left for `key` (a full bucket for a key never seen)."
  @spec remaining(GenServer.server(), term()) :: non_neg_integer()
  def remaining(server \\ __MODULE__, key) do
    GenServer.call(server, {:remaining, key})
  end

  @doc "Forgets every bucket, e.g. between tests."
  @spec reset(GenServer.server()) :: :ok
  def reset(server \\ __MODULE__), do: GenServer.cast(server, :reset)

  ## Server callbacks

  @impl true
  def init(opts) do
    opts = Keyword.merge(@default_opts, opts)
    state = struct!(__MODULE__, Keyword.take(opts, [:capacity, :refill, :refill_ms]))
    schedule_refill(state.refill_ms)
    {:ok, state}
  end

  @impl true
  def handle_call({:check, key}, _from, state) do
    tokens = Map.get(state.buckets, key, state.capacity)

    if tokens > 0 do
      {:reply, :ok, put_in(state.buckets[key], tokens - 1)}
    else
      Logger.debug("rate limited #{inspect(key)}")
      {:reply, {:error, :rate_limited, state.refill_ms}, state}
    end
  end

  def handle_call({:remaining, key}, _from, state) do
    {:reply, Map.get(state.buckets, key, state.capacity), state}
  end

  @impl true
  def handle_cast(:reset, state) do
    {:noreply, %{state | buckets: %{}}}
  end

  @impl true
  def handle_info(:refill, state) do
    # Full buckets are dropped: a missing key means "full", which keeps the map small.
    buckets =
      state.buckets
      |> Enum.map(fn {key, tokens} -> {key, min(tokens + state.refill, state.capacity)} end)
      |> Enum.reject(fn {_key, tokens} -> tokens == state.capacity end)
      |> Map.new()

    schedule_refill(state.refill_ms)
    {:noreply, %{state | buckets: buckets}}
  end

  def handle_info(message, state) do
    Logger.warning("#{inspect(__MODULE__)} got an unexpected message: #{inspect(message)}")
    {:noreply, state}
  end

  defp schedule_refill(ms), do: Process.send_after(self(), :refill, ms)
end
