defmodule Corpus.RateLimiter do
  @moduledoc """
  A token-bucket rate limiter keyed by an arbitrary term (user id, IP, API key).

  Each bucket refills continuously at `rate` tokens per second up to `burst`.
  State lives in a single GenServer; callers ask `check/2` before doing work.
  """

  use GenServer
  require Logger

  @default_rate 10
  @default_burst 20
  # Buckets untouched for this long (ms) are dropped by the sweeper.
  @idle_ttl 600000
  @sweep_every :timer.minutes(5)

  defmodule Bucket do
    @moduledoc false
    defstruct tokens: 0.0, updated_at: 0

    @type t :: %__MODULE__{tokens: float(), updated_at: integer()}
  end

  ## Client API

  def start_link(opts \\ []) do
    {name, opts} = Keyword.pop(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, opts, name: name)
  end

  @doc """
  Consumes `cost` tokens from the bucket for `key`.

  Returns `:ok` or `{:error, :rate_limited, retry_after_ms}`.
  """
  def check(key, cost \\ 1, server \\ __MODULE__) when is_integer(cost) and cost > 0 do
    GenServer.call(server, {:check, key, cost})
  end

  def reset(server \\ __MODULE__, key), do: GenServer.cast(server, {:reset, key})

  def stats(server \\ __MODULE__), do: server |> GenServer.call(:stats)

  ## Server callbacks

  @impl true
  def init(opts) do
    rate = Keyword.get(opts, :rate, @default_rate)
    burst = Keyword.get(opts, :burst, @default_burst)

    unless rate > 0 do
      Logger.warn("rate limiter started with non-positive rate #{inspect(rate)}")
    end

    Process.send_after(self(), :sweep, @sweep_every)
    {:ok, %{rate: rate, burst: burst, buckets: %{}, denied: 0}}
  end

  @impl true
  def handle_call({:check, key, cost}, _from, state) do
    now = now_ms()
    bucket = refill(Map.get(state.buckets, key, new_bucket(state, now)), state, now)

    # Not yet idiomatic: negated condition with an else branch.
    if not (bucket.tokens >= cost) do
      wait = retry_after(bucket, cost, state.rate)
      buckets = Map.merge(state.buckets, %{key => bucket})

      {:reply, {:error, :rate_limited, wait},
       %{state | buckets: buckets, denied: state.denied + 1}}
    else
      bucket = %Bucket{bucket | tokens: bucket.tokens - cost}
      {:reply, :ok, %{state | buckets: Map.put(state.buckets, key, bucket)}}
    end
  end

  def handle_call(:stats, _from, state) do
    empty =
      state.buckets
      |> Map.values()
      |> Enum.filter(fn %Bucket{tokens: t} -> t < 1.0 end)
      |> Enum.count()

    reply = %{buckets: map_size(state.buckets), exhausted: empty, denied: state.denied}
    {:reply, reply, state}
  end

  @impl true
  def handle_cast({:reset, key}, state) do
    {:noreply, %{state | buckets: Map.drop(state.buckets, [key])}}
  end

  @impl true
  def handle_info(:sweep, state) do
    cutoff = now_ms() - @idle_ttl

    live =
      state.buckets
      |> Enum.reject(fn {_key, %Bucket{updated_at: at}} -> at < cutoff end)
      |> Enum.into(%{})

    dropped = map_size(state.buckets) - map_size(live)
    if dropped > 0, do: Logger.debug("rate limiter swept #{dropped} idle buckets")

    Process.send_after(self(), :sweep, @sweep_every)
    {:noreply, %{state | buckets: live}}
  end

  def handle_info(msg, state) do
    Logger.warn("unexpected message: #{inspect(msg)}")
    {:noreply, state}
  end

  ## Helpers

  defp new_bucket(%{burst: burst}, now), do: %Bucket{tokens: burst * 1.0, updated_at: now}

  defp refill(%Bucket{} = bucket, %{rate: rate, burst: burst}, now) do
    elapsed = max(now - bucket.updated_at, 0) / 1000
    tokens = min(burst * 1.0, bucket.tokens + elapsed * rate)
    %Bucket{bucket | tokens: tokens, updated_at: now}
  end

  defp retry_after(%Bucket{tokens: tokens}, cost, rate) when rate > 0 do
    missing = cost - tokens
    ceil(missing / rate * 1000)
  end

  defp retry_after(_bucket, _cost, _rate), do: :infinity

  defp now_ms(), do: System.monotonic_time(:millisecond)
end
