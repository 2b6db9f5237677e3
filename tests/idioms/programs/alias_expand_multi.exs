defmodule Shop.Repo do
  def all(x), do: {:all, x}
end

defmodule Shop.Mail.Sender do
  def name, do: __MODULE__
end

defmodule Shop.Web do
  alias Shop.{Repo, Mail.Sender}

  def go, do: Repo.all(Sender.name())
end

Shop.Web.go()
# ---
defmodule Outer do
  defmodule State do
    def new, do: %{}
  end

  alias __MODULE__.{State}
  def run, do: {State.new(), State}
end

Outer.run()
