defmodule Docs.Toc do
  @moduledoc """
  Generates a table of contents for a Markdown document.

  Only ATX headings (`#` to `######`) outside fenced code blocks count.
  Anchors follow GitHub's style: lowercase, punctuation removed, spaces turned
  into dashes, and repeated anchors numbered `-1`, `-2`, ...
  """

  @type heading :: %{level: 1..6, title: String.t(), anchor: String.t()}

  @heading ~R/^(#{1,6})\s+(.+?)(?:\s+#+)?\s*$/

  @doc "The headings of `markdown`, in document order."
  @spec headings(String.t()) :: [heading()]
  def headings(markdown) do
    markdown
    |> String.split(~r/\r?\n/)
    |> drop_code_blocks()
    |> Enum.flat_map(&parse_heading/1)
    |> assign_anchors()
  end

  @doc """
  Renders a nested bullet list of links.

  Headings deeper than `:max_level` (default 3) are left out, and the list is
  indented relative to the shallowest heading present.
  """
  @spec render(String.t(), keyword()) :: String.t()
  def render(markdown, opts \\ []) do
    max_level = Keyword.get(opts, :max_level, 3)
    items = markdown |> headings() |> Enum.filter(&(&1.level <= max_level))

    case items do
      [] ->
        ""

      _ ->
        base = items |> Enum.map(& &1.level) |> Enum.min()

        Enum.map_join(items, "\n", fn %{level: level, title: title, anchor: anchor} ->
          String.duplicate("  ", level - base) <> "- [#{title}](##{anchor})"
        end)
    end
  end

  @doc "GitHub-style anchor for a heading title."
  @spec slug(String.t()) :: String.t()
  def slug(title) do
    title
    |> String.downcase()
    |> String.replace(~r/[^\p{L}\p{N}\s_-]/u, "")
    |> String.replace(~r/\s/u, "-")
  end

  @doc "Inserts the rendered table of contents after the first level-1 heading."
  @spec insert(String.t(), keyword()) :: String.t()
  def insert(markdown, opts \\ []) do
    toc = render(markdown, opts)
    lines = String.split(markdown, "\n")

    case Enum.find_index(lines, &String.starts_with?(&1, "# ")) do
      nil ->
        markdown

      index ->
        {head, tail} = Enum.split(lines, index + 1)
        Enum.join(head ++ ["", toc] ++ tail, "\n")
    end
  end

  defp drop_code_blocks(lines) do
    {kept, _in_fence?} =
      Enum.flat_map_reduce(lines, false, fn line, in_fence? ->
        cond do
          String.starts_with?(String.trim_leading(line), "```") -> {[], not in_fence?}
          in_fence? -> {[], true}
          true -> {[line], false}
        end
      end)

    kept
  end

  defp parse_heading(line) do
    case Regex.run(@heading, line) do
      [_line, hashes, title] -> [%{level: String.length(hashes), title: title}]
      nil -> []
    end
  end

  defp assign_anchors(headings) do
    {with_anchors, _seen} =
      Enum.map_reduce(headings, %{}, fn heading, seen ->
        base = slug(heading.title)
        count = Map.get(seen, base, 0)
        anchor = if count == 0, do: base, else: "#{base}-#{count}"
        {Map.put(heading, :anchor, anchor), Map.put(seen, base, count + 1)}
      end)

    with_anchors
  end
end
