"""Elixir's standard-library documentation, read from the installed BEAM files with `Code.fetch_docs/1`.

The docs chunks carry the same Markdown that hexdocs.pm shows: module docs, function/macro/callback docs
with their signatures and the `iex>` examples that Elixir's own doctests run, so they are both
reference text and checked input/output pairs. One `elixir` VM dumps every module as a JSON line (Elixir
1.14 has no JSON module, so the script carries a small encoder); Python turns each module into a Markdown
page record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from markdown_it import MarkdownIt

from finetune.records import Block, Provenance, Record, Skipped
from finetune.sources.iex import is_iex_session, split_iex_session

SOURCE = "beam_docs"
ELIXIR_APPS = ("elixir", "eex", "ex_unit", "logger", "mix", "iex")
LICENCE = "Apache-2.0"  # Elixir and its docs are Apache-2.0
DOC_KINDS = ("function", "macro", "callback", "macrocallback")
_KIND_HEADINGS = {
    "function": "Functions",
    "macro": "Macros",
    "callback": "Callbacks",
    "macrocallback": "Callbacks",
}

# Prints {"elixir_version": ...} and then one JSON object per Elixir module of the requested apps:
# {"app", "module", "source", "moduledoc", "deprecated", "entries": [...]} or {"app", "module", "error"}.
_DUMP_SCRIPT = r"""
defmodule DevstralDocsDump do
  def main(argv) do
    {apps, only} =
      case argv do
        [apps] -> {String.split(apps, ",", trim: true), nil}
        [apps, modules] -> {String.split(apps, ",", trim: true), String.split(modules, ",", trim: true)}
      end

    emit(%{"elixir_version" => System.version()})

    for app_name <- apps do
      app = String.to_atom(app_name)

      case load(app) do
        :ok ->
          modules = Application.spec(app, :modules) || []

          for module <- Enum.sort(modules),
              String.starts_with?(Atom.to_string(module), "Elixir."),
              only == nil or inspect(module) in only do
            emit(module_docs(app_name, module))
          end

        {:error, reason} ->
          emit(%{"app" => app_name, "module" => "", "error" => "cannot load application: " <> inspect(reason)})
      end
    end
  end

  defp load(app) do
    case Application.load(app) do
      {:error, {:already_loaded, _}} -> :ok
      other -> other
    end
  end

  defp module_docs(app, module) do
    name = inspect(module)

    case Code.fetch_docs(module) do
      {:docs_v1, _anno, _language, "text/markdown", moduledoc, metadata, docs} ->
        if moduledoc == :hidden do
          %{"app" => app, "module" => name, "error" => "hidden (@moduledoc false)"}
        else
          %{
            "app" => app,
            "module" => name,
            "source" => source_of(module),
            "moduledoc" => text(moduledoc),
            "deprecated" => Map.get(metadata, :deprecated),
            "entries" => for(entry <- docs, json_entry = entry(entry), json_entry != nil, do: json_entry)
          }
        end

      {:docs_v1, _, _, format, _, _, _} ->
        %{"app" => app, "module" => name, "error" => "unsupported docs format " <> format}

      {:error, reason} ->
        %{"app" => app, "module" => name, "error" => "no docs: " <> inspect(reason)}
    end
  end

  defp entry({{kind, name, arity}, _anno, signature, doc, metadata}) do
    if doc == :hidden or kind not in [:function, :macro, :callback, :macrocallback] do
      nil
    else
      %{
        "kind" => Atom.to_string(kind),
        "name" => Atom.to_string(name),
        "arity" => arity,
        "signature" => Enum.join(signature, "\n"),
        "doc" => text(doc),
        "deprecated" => Map.get(metadata, :deprecated),
        "since" => Map.get(metadata, :since)
      }
    end
  end

  defp text(%{"en" => markdown}), do: markdown
  defp text(_none), do: nil

  defp source_of(module) do
    case module.module_info(:compile)[:source] do
      nil -> nil
      source -> List.to_string(source)
    end
  end

  defp emit(map), do: IO.binwrite([json(map), ?\n])

  defp json(nil), do: "null"
  defp json(true), do: "true"
  defp json(false), do: "false"
  defp json(number) when is_integer(number), do: Integer.to_string(number)
  defp json(atom) when is_atom(atom), do: json(Atom.to_string(atom))
  defp json(string) when is_binary(string), do: [?", escape(string), ?"]
  defp json(list) when is_list(list), do: [?[, Enum.map_intersperse(list, ?,, &json/1), ?]]

  defp json(map) when is_map(map) do
    pairs = Enum.map_intersperse(map, ?,, fn {key, value} -> [json(to_string(key)), ?:, json(value)] end)
    [?{, pairs, ?}]
  end

  # Byte-wise, so that even invalid UTF-8 cannot stop the dump (Python decodes with replacement).
  defp escape(string) do
    for <<byte <- string>>, into: "" do
      case byte do
        ?" -> "\\\""
        ?\\ -> "\\\\"
        ?\n -> "\\n"
        ?\t -> "\\t"
        byte when byte < 0x20 -> "\\u00" <> Base.encode16(<<byte>>)
        byte -> <<byte>>
      end
    end
  end
end

DevstralDocsDump.main(System.argv())
"""


# --- Markdown helpers (shared with the local source for README and guides) ------------------------------

_MARKDOWN = MarkdownIt("commonmark")


def markdown_title(text: str) -> str:
    """The text of the first heading, or ""."""
    tokens = _MARKDOWN.parse(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and index + 1 < len(tokens):
            return tokens[index + 1].content.strip()
    return ""


def _code_language(info: str, code: str, default: str) -> str:
    if is_iex_session(code):
        return "iex"
    declared = info.split()[0].lower() if info.split() else ""
    return declared or default


def markdown_blocks(text: str, indented_code_language: str = "") -> tuple[Block, ...]:
    """Markdown split into prose and code blocks, in order; IEx sessions are code with language "iex".

    `indented_code_language` names the language of indented code blocks, which carry none (Elixir's docs
    write Elixir that way; in an unknown README they could be anything).
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    prose_start = 0

    def flush_prose(end: int) -> None:
        prose = "\n".join(lines[prose_start:end]).strip("\n")
        if prose.strip():
            blocks.append(Block("prose", prose))

    for token in _MARKDOWN.parse(text):
        if token.level != 0 or token.type not in ("fence", "code_block") or token.map is None:
            continue
        flush_prose(token.map[0])
        code = token.content.rstrip("\n")
        default = indented_code_language if token.type == "code_block" else ""
        blocks.append(Block("code", code, _code_language(token.info, code, default)))
        prose_start = token.map[1]
    flush_prose(len(lines))
    return tuple(blocks)


def doctest_examples(markdown: str) -> list[dict[str, str]]:
    """The `iex>` examples of a doc as {"input", "output"} pairs, in order (what doctests check)."""
    examples: list[dict[str, str]] = []
    for block in markdown_blocks(markdown, indented_code_language="elixir"):
        if block.type == "code" and block.language == "iex":
            examples += [
                {"input": step.input, "output": step.output} for step in split_iex_session(block.text)
            ]
    return examples


# --- the dump --------------------------------------------------------------------------------------------


def _source_path(source: str | None, app: str, module: str) -> str:
    """`lib/enum.ex` inside the app, from the absolute path the BEAM file was compiled from."""
    marker = f"/lib/{app}/"
    if source and marker in source:
        return source.split(marker, 1)[1]
    return f"{module}.ex"


def _entry_heading(entry: dict[str, Any]) -> str:
    signature = entry.get("signature") or f"{entry['name']}/{entry['arity']}"
    return signature.replace("\n", " / ")


def _block_text(markdown: str) -> str:
    # Only blank lines go: leading spaces may open an indented code block.
    return markdown.lstrip("\n").rstrip()


def render_module_page(module: dict[str, Any]) -> str:
    """A module's docs as one Markdown page: moduledoc, then functions, macros and callbacks."""
    parts = [f"# {module['module']}"]
    if module.get("deprecated"):
        parts.append(f"> Deprecated: {module['deprecated']}")
    if module.get("moduledoc"):
        parts.append(_block_text(module["moduledoc"]))
    entries = module.get("entries") or []
    for heading in dict.fromkeys(_KIND_HEADINGS.values()):
        section = [e for e in entries if _KIND_HEADINGS.get(e["kind"]) == heading]
        if not section:
            continue
        parts.append(f"## {heading}")
        for entry in section:
            parts.append(f"### {_entry_heading(entry)}")
            if entry.get("deprecated"):
                parts.append(f"> Deprecated: {entry['deprecated']}")
            if entry.get("doc"):
                parts.append(_block_text(entry["doc"]))
    return "\n\n".join(parts) + "\n"


def module_record(module: dict[str, Any], elixir_version: str) -> Record | Skipped:
    """The page record of one dumped module, or Skipped when it has nothing documented."""
    name = module["module"]
    entries = sorted(
        module.get("entries") or [], key=lambda e: (DOC_KINDS.index(e["kind"]), e["name"], e["arity"])
    )
    if not module.get("moduledoc") and not any(entry.get("doc") for entry in entries):
        return Skipped(f"{module['app']}:{name}", "no documentation")
    module = {**module, "entries": entries}
    text = render_module_page(module)
    functions = [
        {
            "name": entry["name"],
            "arity": entry["arity"],
            "kind": entry["kind"],
            "signature": entry.get("signature") or "",
            "doc": entry.get("doc") or "",
            "examples": doctest_examples(entry.get("doc") or ""),
            "deprecated": entry.get("deprecated") or "",
            "since": entry.get("since") or "",
        }
        for entry in entries
    ]
    return Record(
        kind="doc",
        language="markdown",
        text=text,
        provenance=Provenance(
            source=SOURCE,
            package=module["app"],
            version=elixir_version,
            path=_source_path(module.get("source"), module["app"], name),
            licence=LICENCE,
            url=f"https://hexdocs.pm/{module['app']}/{elixir_version}/{name}.html",
        ),
        meta={
            "module": name,
            "functions": functions,
            "examples": doctest_examples(module.get("moduledoc") or ""),
        },
        blocks=markdown_blocks(text, indented_code_language="elixir"),
    )


def collect(
    apps: Sequence[str] = ELIXIR_APPS,
    *,
    modules: Sequence[str] | None = None,
    elixir: str = "elixir",
    timeout: float = 600.0,
) -> Iterator[Record | Skipped]:
    """One doc record per module of Elixir's own `apps` (optionally only the named `modules`, e.g. "Enum").

    Modules without docs, hidden modules and a missing or failing `elixir` are reported as Skipped.
    """
    executable = shutil.which(elixir)
    if executable is None:
        yield Skipped(elixir, "elixir executable not found")
        return
    with tempfile.TemporaryDirectory(prefix="beam-docs-") as scratch:
        script = Path(scratch) / "dump_docs.exs"
        script.write_text(_DUMP_SCRIPT, encoding="utf-8")
        argv = [executable, str(script), ",".join(apps)]
        if modules is not None:
            argv.append(",".join(modules))
        # stderr goes to a file: a pipe nobody reads while stdout streams could fill up and stall the VM.
        with (Path(scratch) / "stderr.txt").open("w+b") as stderr:
            yield from _run_dump(argv, timeout, scratch, stderr)


def _run_dump(argv: list[str], timeout: float, cwd: str, stderr: IO[bytes]) -> Iterator[Record | Skipped]:
    # Streamed line by line: the full dump is megabytes, and records flow on while the VM still works.
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, env={**os.environ})
    timer = _Deadline(process, timeout)
    elixir_version = ""
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                yield Skipped("elixir docs dump", f"malformed line: {error}")
                continue
            if "elixir_version" in item:
                elixir_version = item["elixir_version"]
            elif "error" in item:
                yield Skipped(
                    f"{item['app']}:{item['module']}" if item["module"] else item["app"], item["error"]
                )
            else:
                yield module_record(item, elixir_version)
        returncode = process.wait()
        stderr.seek(0)
        errors = stderr.read().decode("utf-8", errors="replace").strip()
        if timer.expired:
            yield Skipped("elixir docs dump", f"timed out after {timeout:.0f} s")
        elif returncode != 0:
            yield Skipped("elixir docs dump", f"elixir exited with {returncode}: {errors[-500:]}")
    finally:
        timer.cancel()
        if process.poll() is None:  # the consumer stopped early
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _Deadline:
    """Kills the VM when the dump takes longer than allowed (reading stdout would otherwise block)."""

    def __init__(self, process: subprocess.Popen[bytes], seconds: float) -> None:
        self.expired = False
        self._process = process
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        if self._process.poll() is None:
            self.expired = True
            self._process.kill()

    def cancel(self) -> None:
        self._timer.cancel()
