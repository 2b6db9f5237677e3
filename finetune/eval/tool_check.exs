# Checks many files in one VM for finetune/eval/metrics.py `tool_metrics`, the way
# `mix format --check-formatted` and `elixirc --warnings-as-errors` check one file each.
#
#   elixir tool_check.exs NONCE TIMEOUT_MS DIR...      (each DIR holds a code.ex)
#
# Prints `NONCE F <one 0/1 per DIR> NONCE`, then per DIR, in order, `NONCE C <position> <0/1> <first error
# line> NONCE`. The trailing nonce marks a complete line (the sandbox truncates output). Compile-time code
# runs with a throwaway group leader, so its prints never reach stdout.

defmodule DevstralElixirToolCheck do
  @error_chars 100

  def main([nonce, timeout_ms | dirs]) do
    timeout = String.to_integer(timeout_ms)
    root = File.cwd!()
    code_path = MapSet.new(:code.get_path(), &to_string/1)

    options =
      for(key <- Code.available_compiler_options(), do: {key, Code.get_compiler_option(key)})
      |> Keyword.put(:warnings_as_errors, true)

    # Formatting runs no user code: every verdict is out before the first compile can kill the VM.
    flags =
      Enum.map(dirs, fn dir ->
        from = generated_from(Path.join([root, dir, "from"]))
        if formatted?(Path.join([root, dir, "code.ex"]), from, timeout), do: "1", else: "0"
      end)

    IO.puts("#{nonce} F #{Enum.join(flags)} #{nonce}")

    dirs
    |> Enum.with_index()
    |> Enum.each(fn {dir, position} ->
      {ok, error} = compile(Path.join(root, dir), options, code_path, timeout)
      IO.puts("#{nonce} C #{position} #{if ok, do: 1, else: 0} #{error} #{nonce}")
    end)
  end

  # `mix format` with no .formatter.exs: Code.format_string!/2 with only :file, plus a final newline.
  defp formatted?(path, from, timeout),
    do: isolated(fn -> same_when_formatted?(path, from) end, timeout) == {:ok, true}

  # The first line of generated code (0-based); the lines above it are given and not judged.
  defp generated_from(path) do
    case File.read(path) do
      {:ok, text} -> String.to_integer(String.trim(text))
      {:error, _} -> 0
    end
  end

  defp same_when_formatted?(path, from) do
    input = File.read!(path)

    output =
      case Code.format_string!(input, file: path) do
        [] -> ""
        formatted -> IO.iodata_to_binary([formatted, ?\n])
      end

    if from == 0,
      do: input == output,
      else: untouched_from?(String.split(input, "\n"), String.split(output, "\n"), from)
  rescue
    # mix format fails on code it cannot parse
    _ -> false
  end

  # Formatting deletes or changes no line at index >= from, and inserts none after it (a blank line
  # it inserts right before `from` belongs to the given code above).
  defp untouched_from?(before, after_formatting, from) do
    before
    |> List.myers_difference(after_formatting)
    |> Enum.reduce_while(0, fn
      {:eq, lines}, index -> {:cont, index + length(lines)}
      {:del, lines}, index when index + length(lines) <= from -> {:cont, index + length(lines)}
      {:ins, _lines}, index when index <= from -> {:cont, index}
      _edit, _index -> {:halt, :changed}
    end)
    |> Kernel.!=(:changed)
  end

  # What Kernel.CLI does for `elixirc --warnings-as-errors -o ebin code.ex` (Elixir 1.14).
  defp compile(dir, options, code_path, timeout) do
    File.cd!(dir)
    Code.compiler_options(options)
    loaded = Map.new(:code.all_loaded())

    outcome =
      isolated(
        fn ->
          File.mkdir_p!("ebin")
          Kernel.ParallelCompiler.compile_to_path(["code.ex"], "ebin", [])
        end,
        timeout
      )

    unload_new_modules(loaded, code_path)

    case outcome do
      {:ok, {:ok, _modules, _warnings}} -> {true, ""}
      {:ok, {:error, [first | _], _}} -> {false, describe(first)}
      {:ok, {:error, [], _}} -> {false, "compilation failed"}
      {:crash, reason} -> {false, clip("crashed: " <> Exception.format_exit(reason))}
      :timeout -> {false, "timed out after #{timeout} ms"}
    end
  end

  # Runs `fun` in a process whose group leader swallows output, within `timeout` ms; afterwards kills
  # every process that inherited that group leader (what compile-time code spawned, hung compilers).
  defp isolated(fun, timeout) do
    sink = spawn(&sink/0)
    tag = make_ref()
    parent = self()

    {pid, monitor} =
      spawn_monitor(fn ->
        Process.group_leader(self(), sink)
        send(parent, {tag, fun.()})
      end)

    outcome =
      receive do
        {^tag, value} -> {:ok, value}
        {:DOWN, ^monitor, :process, ^pid, reason} -> {:crash, reason}
      after
        timeout -> :timeout
      end

    Process.demonitor(monitor, [:flush])

    for process <- Process.list(),
        process != sink,
        Process.info(process, :group_leader) == {:group_leader, sink},
        do: Process.exit(process, :kill)

    Process.exit(sink, :kill)
    outcome
  end

  # The same module name recurs across files (every completion of a problem): drop what this file
  # loaded or replaced, so the next file compiles as in a fresh VM. Code loaded from the code path
  # (stdlib modules loaded on first use) stays.
  defp unload_new_modules(before, code_path) do
    for {module, file} <- :code.all_loaded(),
        Map.get(before, module) != file,
        not system_code?(file, code_path) do
      :code.purge(module)
      :code.delete(module)
      :code.purge(module)
    end
  end

  defp system_code?(file, code_path) when is_list(file) do
    Path.type(file) == :absolute and MapSet.member?(code_path, to_string(Path.dirname(file)))
  end

  defp system_code?(_preloaded_or_cover_compiled, _code_path), do: true

  defp describe({file, position, message}) do
    text = IO.iodata_to_binary(message)

    if String.starts_with?(text, "** (") do
      clip(text)
    else
      clip("#{Path.relative_to_cwd(file)}:#{line(position)}: #{text}")
    end
  end

  defp line({line, _column}), do: line
  defp line(line), do: line

  defp clip(text) do
    text |> String.split("\n", parts: 2) |> hd() |> String.trim() |> String.slice(0, @error_chars)
  end

  defp sink do
    receive do
      {:io_request, from, reply_as, request} ->
        send(from, {:io_reply, reply_as, sink_reply(request)})
        sink()

      _ ->
        sink()
    end
  end

  defp sink_reply(request) when elem(request, 0) == :put_chars, do: :ok
  defp sink_reply(request) when elem(request, 0) in [:get_chars, :get_line, :get_until], do: :eof
  defp sink_reply(_other), do: {:error, :request}
end

DevstralElixirToolCheck.main(System.argv())
