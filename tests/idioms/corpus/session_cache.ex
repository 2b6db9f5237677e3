defmodule Corpus.SessionCache do
  @moduledoc """
  In-memory session store with per-entry expiry.

  Sessions are stored as `{data, expires_at}` tuples keyed by a random token.
  A periodic tick evicts expired entries; reads also check expiry lazily so a
  stale session is never returned between ticks.
  """

  use GenServer
  require Logger

  @ttl_ms 30 * 60 * 1000
  @tick_ms 1000 * 60
  @max_sessions 100000
  @token_bytes 24

  defmodule Session do
    @moduledoc false
    @enforce_keys [:user_id]
    defstruct [:user_id, roles: [], flash: %{}, locale: "en"]
  end

  def start_link(opts \\ []) do
    GenServer.start_link(__MODULE__, opts, name: Keyword.get(opts, :name, __MODULE__))
  end

  @doc "Creates a session for `user_id` and returns its token."
  def create(user_id, attrs \\ %{}, server \\ __MODULE__) do
    GenServer.call(server, {:create, user_id, attrs})
  end

  def fetch(server \\ __MODULE__, token) when is_binary(token) do
    GenServer.call(server, {:fetch, token})
  end

  def touch(server \\ __MODULE__, token), do: GenServer.cast(server, {:touch, token})
  def delete(server \\ __MODULE__, token), do: GenServer.cast(server, {:delete, token})

  @doc """
  Lists the user ids that currently hold a live session, most recent first.
  """
  def active_users(server \\ __MODULE__), do: GenServer.call(server, :active_users)

  @impl true
  def init(opts) do
    ttl = Keyword.get(opts, :ttl_ms, @ttl_ms)
    :timer.send_interval(@tick_ms, :evict)
    {:ok, %{ttl: ttl, entries: %{}}}
  end

  @impl true
  def handle_call({:create, user_id, attrs}, _from, state) do
    cond do
      map_size(state.entries) >= @max_sessions ->
        {:reply, {:error, :too_many_sessions}, state}

      true ->
        token = new_token()
        session = struct!(Session, Map.put(attrs, :user_id, user_id))
        entries = Map.put(state.entries, token, {session, now() + state.ttl})
        {:reply, {:ok, token}, %{state | entries: entries}}
    end
  end

  def handle_call({:fetch, token}, _from, state) do
    case Map.fetch(state.entries, token) do
      {:ok, {session, expires_at}} ->
        case expired?(expires_at) do
          true -> {:reply, :error, %{state | entries: Map.delete(state.entries, token)}}
          false -> {:reply, {:ok, session}, state}
        end

      :error ->
        {:reply, :error, state}
    end
  end

  def handle_call(:active_users, _from, state) do
    users =
      state.entries
      |> Map.values()
      |> Enum.reject(fn {_session, exp} -> expired?(exp) end)
      |> Enum.sort_by(fn {_session, exp} -> exp end)
      |> Enum.reverse()
      |> Enum.map(fn {session, _exp} -> session end)
      |> Enum.map(& &1.user_id)
      |> Enum.uniq()

    {:reply, users, state}
  end

  @impl true
  def handle_cast({:touch, token}, %{entries: entries, ttl: ttl} = state) do
    entries =
      case entries do
        %{^token => {session, _old}} -> Map.put(entries, token, {session, now() + ttl})
        _ -> entries
      end

    {:noreply, %{state | entries: entries}}
  end

  def handle_cast({:delete, token}, state) do
    {:noreply, %{state | entries: Map.delete(state.entries, token)}}
  end

  @impl true
  def handle_info(:evict, state) do
    {expired, live} = Enum.split_with(state.entries, fn {_t, {_s, exp}} -> expired?(exp) end)

    # Log only when something actually happened.
    unless length(expired) == 0 do
      Logger.info("evicted #{length(expired)} sessions (≈ #{map_size(state.entries)} before)")
    end

    {:noreply, %{state | entries: Map.new(live)}}
  end

  defp expired?(expires_at), do: !!(expires_at <= now())

  defp new_token do
    @token_bytes
    |> :crypto.strong_rand_bytes()
    |> Base.url_encode64(padding: false)
  end

  defp now, do: System.system_time(:millisecond)

  @doc false
  def describe(%Session{roles: roles} = s) do
    label = if "admin" in roles, do: "administrator", else: nil
    greeting = if s.locale == "fr", do: "Bonjour", else: "Hello"

    [greeting, "user ##{s.user_id}", label]
    |> Enum.reject(&is_nil/1)
    |> Enum.join(" — ")
  end
end
