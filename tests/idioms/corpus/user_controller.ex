defmodule Corpus.Web.UserController do
  @moduledoc """
  Phoenix-style controller without Phoenix: a `conn` is a plain map with
  `:params`, `:assigns`, `:status` and `:resp_body`, and every action returns
  the updated conn.
  """

  require Logger

  alias Corpus.Web.UserController.{Store, Params}

  @page_size 25
  @max_page_size 100
  @username_format ~r/\A[\p{L}\p{N}_.-]{3,32}\z/u

  defmodule Store do
    @moduledoc false
    # A fake repository backed by a map in the conn's assigns.

    def get(users, id), do: Map.get(users, id)
    def all(users), do: Map.values(users)

    def insert(users, attrs) do
      id = map_size(users) + 1
      user = Map.put(attrs, :id, id)
      {:ok, user, Map.put(users, id, user)}
    end
  end

  defmodule Params do
    @moduledoc false

    def integer(params, key, default) do
      case Map.get(params, key) do
        nil -> {:ok, default}
        value when is_integer(value) -> {:ok, value}
        value when is_binary(value) -> parse_int(value, key)
        _ -> {:error, {key, "must be an integer"}}
      end
    end

    defp parse_int(value, key) do
      case Integer.parse(value) do
        {int, ""} -> {:ok, int}
        _ -> {:error, {key, "must be an integer"}}
      end
    end
  end

  def index(conn, params) do
    with {:ok, page} <- Params.integer(params, "page", 1),
         {:ok, size} <- Params.integer(params, "page_size", @page_size) do
      users =
        conn.assigns.users
        |> Store.all()
        |> Enum.sort_by(& &1.id)
        |> Enum.drop((page - 1) * size)
        |> Enum.take(min(size, @max_page_size))

      render(conn, 200, %{data: Enum.map(users, &user_json/1), page: page})
    else
      {:error, {field, msg}} -> render(conn, 422, %{errors: %{field => msg}})
    end
  end

  def show(conn, params = %{"id" => id}) do
    Logger.debug("show user #{inspect(params)}")

    with {:ok, id} <- Params.integer(%{"id" => id}, "id", nil),
         %{} = user <- Store.get(conn.assigns.users, id) do
      render(conn, 200, %{data: user_json(user)})
    else
      nil -> render(conn, 404, %{error: "not found"})
      {:error, {field, msg}} -> render(conn, 400, %{errors: %{field => msg}})
    end
  end

  def create(conn, %{"user" => user_params}) do
    with {:ok, attrs} <- validate(user_params),
         {:ok, user, users} <- Store.insert(conn.assigns.users, attrs) do
      conn
      |> assign(:users, users)
      |> render(201, %{data: user_json(user)})
    else
      {:error, errors} -> render(conn, 422, %{errors: errors})
    end
  end

  def create(conn, _params), do: render(conn, 400, %{error: "missing user"})

  defp validate(params) do
    username = params |> Map.get("username", "") |> String.trim
    email = String.downcase(Map.get(params, "email", "")) |> String.trim()

    errors =
      []
      |> check(username =~ @username_format, {:username, "is invalid"})
      |> check(String.contains?(email, "@"), {:email, "is invalid"})

    if !(errors == []) do
      {:error, Map.new(errors)}
    else
      {:ok, %{username: username, email: email, admin: params["admin"] == "true"}}
    end
  end

  defp check(errors, true, _error), do: errors
  defp check(errors, false, error), do: [error | errors]

  defp user_json(user) do
    badge = if user.admin, do: "★ admin", else: nil
    %{id: user.id, username: user.username, email: user.email, badge: badge}
  end

  defp assign(conn, key, value), do: %{conn | assigns: Map.merge(conn.assigns, %{key => value})}

  defp render(conn, status, body) do
    case status >= 400 do
      true ->
        Logger.warn("responding #{status}: #{inspect(body)}")
        %{conn | status: status, resp_body: body}

      false ->
        %{conn | status: status, resp_body: body}
    end
  end
end
