# Output is silenced (timestamps would differ); the return values are compared.
require Logger
previous = Logger.level()
Logger.configure(level: :error)
results = [Logger.warn("disk almost full"), Logger.warn(fn -> "lazy" end, unit: :mb)]
Logger.configure(level: previous)
results
# ---
require Logger
previous = Logger.level()
Logger.configure(level: :error)
result = "piped" |> Logger.warn()
Logger.configure(level: previous)
{result, previous}
