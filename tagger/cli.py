"""The command line: a thin layer over :mod:`tagger.scan`, :mod:`tagger.train`, :mod:`tagger.evaluate`.

Progress and tables go to stderr; machine output (CSV file, ``--json`` lines) never
mixes with them. Exit codes: 0 every file handled, 1 some files failed, 2 bad usage.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import sqlite3
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .discover import show_path
from .errors import DatasetError, ModelLoadError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find the instruments in every track of a music library.")
err = Console(stderr=True)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Backend(str, Enum):
    local = "local"
    dask = "dask"
    ray = "ray"


def _setup_logging(verbose: bool, quiet: bool, tagger_level: int | None = None) -> None:
    """Warnings (or errors with --quiet) from everyone; ``tagger_level`` for our own loggers."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    ours = min(level, tagger_level) if tagger_level is not None else level
    # The handler's level also filters loggers that set their own (dask's are at INFO).
    handler = RichHandler(console=err, show_path=False, show_time=False, level=ours)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("tagger").setLevel(ours)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load_scorer(model: Optional[Path], device: Device, batch_size: int):
    from .inference import Scorer

    try:
        return Scorer.from_path(model, device.value, batch_size)
    except ModelLoadError as exc:
        raise _failed(exc) from None


def _failed(exc: ModelLoadError | DatasetError) -> typer.Exit:
    """Exit 2 with the error's one line, prefixed by the file it is about."""
    return _fail(f"{show_path(exc.path)}: {exc}" if exc.path else str(exc))


@app.command()
def scan(
    paths: list[Path] = typer.Argument(..., help="Music files or folders (searched recursively)."),
    write_tags: bool = typer.Option(False, "--write-tags", help="Write instruments into the files' tags (default: dry run)."),
    csv_path: Path = typer.Option(Path("instruments.csv"), "--csv", help="Where to write the CSV report."),
    segments_path: Optional[Path] = typer.Option(None, "--segments", help="Also write every scored segment (times, loudness, scores) to this CSV, or Parquet when it ends in .parquet."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML report (library and per-track heat maps) at the end."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label (default: per-label thresholds of the model)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Keep at most K instruments per track."),
    device: Device = typer.Option(Device.auto, help="auto: CUDA when present, else CPU."),
    batch_size: int = typer.Option(256, min=1, help="Segments per model call."),
    jobs: int = typer.Option(0, min=0, help="Decoding processes (0: one per core)."),
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    force: bool = typer.Option(False, help="Overwrite instruments tags that a user wrote, and rescan unchanged files."),
    backend: Backend = typer.Option(Backend.local, help="Where decoding runs: local processes, or a dask/ray cluster."),
    hop: Optional[float] = typer.Option(None, min=0.1, help="Seconds between segment starts (default: the segment length, 3 s)."),
    file_timeout: float = typer.Option(120.0, "--file-timeout", min=0.0, metavar="SECONDS", help="Give up on a file whose decoding takes longer (each 10-minute span of a long file); 0: no limit."),
    file_memory: int = typer.Option(2048, "--file-memory", min=0, metavar="MB", help="Memory cap of each decoding process (with --jobs 2 or more); a file that needs more fails alone; 0: no cap."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip files unchanged since a run with the same model and settings (cache next to the CSV)."),
    json_lines: bool = typer.Option(False, "--json", help="Print one JSON line per file on stdout instead of the summary table."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary, errors only."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Tag every audio file under PATHS; write a CSV report (and tags with --write-tags)."""
    from .backends import BackendError
    from .cache import ResultCache, cache_path_for
    from .discover import discover
    from .report import CsvReport, as_json
    from .scan import Scanner, ScanOptions, ScorerInBackground
    from .timeline import ParquetMissing, TimelineWriter
    from .weights import resolve_device

    _setup_logging(verbose, quiet)
    for p in paths:
        if not os.path.lexists(p):
            raise _fail(f"{p}: no such file or folder")
    try:
        if device == Device.cuda:
            resolve_device(device.value)  # asked for CUDA: say now if there is none
        scorer = ScorerInBackground(model, device.value, batch_size)  # decoding starts while torch loads
    except ModelLoadError as exc:
        raise _failed(exc) from None
    options = ScanOptions(
        write_tags=write_tags, force=force, threshold=threshold, top_k=top_k, hop_seconds=hop, jobs=jobs,
        backend=backend.value, file_timeout=file_timeout or None, file_memory_mb=file_memory or None,
    )
    try:
        scanner = Scanner(scorer, options)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    files = list(discover(paths))
    timeline_tmp = None
    if html_path and not segments_path:  # the HTML report's heat maps need the segments: keep them aside
        timeline_tmp = tempfile.TemporaryDirectory(prefix="tagger-")
        segments_path = Path(timeline_tmp.name) / "segments.csv"
    try:
        timeline = TimelineWriter(segments_path, scorer.labels) if segments_path else contextlib.nullcontext()
    except ParquetMissing as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the segment timeline {segments_path}: {exc}") from None
    try:
        report = CsvReport.open(csv_path, scorer.labels)
        if resume:
            scanner.cache = ResultCache(cache_path_for(csv_path), scanner.result_key)
    except (OSError, sqlite3.Error) as exc:
        raise _fail(f"cannot write the report {csv_path}: {exc}") from None

    counts: Counter[str] = Counter()
    found: Counter[str] = Counter()
    audio_seconds = 0.0
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=quiet, transient=False,
    )
    with progress, report, timeline, (scanner.cache or contextlib.nullcontext()):
        task = progress.add_task("scanning", total=len(files), rate="")
        try:
            results = scanner.scan_files(files)
            first = next(results, None)
        except BackendError as exc:
            raise _fail(str(exc)) from None
        except ModelLoadError as exc:
            raise _failed(exc) from None
        try:
            for result in itertools.chain([first] if first else [], results):
                report.write(result)
                if segments_path:
                    timeline.write(result.path, result.timeline)
                counts[result.status] += 1
                found.update(label for label, _ in result.instruments)
                audio_seconds += result.duration_s
                if result.status == "error":
                    # one line whatever the name: control characters in the path are escaped
                    progress.console.print(f"error: {show_path(result.path)}: {result.error}", style="red", markup=False, highlight=False, soft_wrap=True)
                if json_lines:
                    sys.stdout.write(as_json(result) + "\n")
                    sys.stdout.flush()
                elapsed = max(progress.tasks[0].elapsed or 1e-9, 1e-9)
                progress.update(task, advance=1, rate=f"{sum(counts.values()) / elapsed:.1f} files/s, {audio_seconds / 60 / elapsed:.1f} audio-min/s")
        except ModelLoadError as exc:  # the model loads while the first files decode
            results.close()
            raise _failed(exc) from None
        except KeyboardInterrupt:
            results.close()  # stops the workers; a tag write in progress was rolled back
            progress.stop()
            err.print(f"interrupted after {sum(counts.values())} of {len(files)} files; their rows are in {csv_path}; "
                      "run the same command again to finish", soft_wrap=True)
            raise typer.Exit(130) from None
    if html_path:
        _write_html(csv_path, segments_path, html_path, scorer.checkpoint.thresholds, threshold)
    if timeline_tmp:
        timeline_tmp.cleanup()
    if not quiet and not json_lines:
        _summary(counts, found, csv_path, write_tags)
    raise typer.Exit(1 if counts["error"] else 0)


def _write_html(csv_path: Path, segments_path: Optional[Path], html_path: Path, thresholds: Optional[dict], threshold: Optional[float]) -> None:
    from .html_report import write_report

    try:
        write_report(csv_path, segments_path, html_path, thresholds, threshold)
    except ValueError as exc:  # not a report or not a timeline: bad usage
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the HTML report {html_path}: {exc}", 3) from None


@app.command()
def report(
    csv_report: Path = typer.Argument(..., help="A CSV report written by tagger scan."),
    segments: Optional[Path] = typer.Option(None, "--segments", help="The segment timeline of that scan (CSV or Parquet): adds heat maps."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
    model: Optional[Path] = typer.Option(None, help="Weights whose thresholds mark where instruments play (default: the bundled model, when it made the report)."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label, as given to the scan."),
) -> None:
    """Write one self-contained HTML file (no server, no network) from a report and its timeline."""
    from .html_report import report_model
    from .weights import bundled_model_path, read_header

    _setup_logging(False, False)
    for p in (csv_report, segments):
        if p is not None and not p.is_file():
            raise _fail(f"{p}: no such file")
    thresholds = None  # the model's: ticks on the track scores, and where labels play on the heat maps
    try:
        header = read_header(model or bundled_model_path())
    except ModelLoadError as exc:
        if model is not None:
            raise _failed(exc) from None
        header = None
    try:
        made_by = report_model(csv_report)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if header is not None and (model is not None or made_by in (None, header.version)):
        thresholds = header.thresholds
    elif segments is not None:
        err.print(f"note: the report was made by {made_by}; pass --model with its weights to mark where instruments play", highlight=False)
    _write_html(csv_report, segments, out, thresholds, threshold)
    err.print(f"wrote {out}", highlight=False)


def _summary(counts: Counter, found: Counter, csv_path: Path, write_tags: bool) -> None:
    table = Table(title="tagger scan", show_header=False)
    table.add_row("files ok", str(counts["ok"]))
    table.add_row("skipped", str(counts["skipped"]))
    table.add_row("failed", f"[red]{counts['error']}[/]" if counts["error"] else "0")
    table.add_row("top instruments", ", ".join(f"{label} ({n})" for label, n in found.most_common(5)) or "-")
    table.add_row("report", str(csv_path))
    table.add_row("tags", "written" if write_tags else "dry run (use --write-tags to write)")
    err.print(table)


@app.command()
def info(
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    json_out: bool = typer.Option(False, "--json", help="The model card as JSON on stdout."),
) -> None:
    """Show the model card: labels, thresholds, training data, held-out figures, speed."""
    from .card import card_dict, render
    from .weights import bundled_model_path, read_header

    try:
        path = model or bundled_model_path()
        ckpt = read_header(path)
    except ModelLoadError as exc:
        raise _failed(exc) from None
    info_dict = card_dict(ckpt, path, __version__)
    if json_out:
        print(json.dumps(info_dict, indent=2))
        return
    render(info_dict, Console())


def _rich_progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return progress, report


@app.command()
def train(
    data: list[Path] = typer.Argument(..., help="Datasets: class folders, IRMAS test layout, or manifest CSVs."),
    out: Path = typer.Option(..., help="Run folder: weights, state for resuming, curves, history."),
    val: list[Path] = typer.Option([], help="Validation dataset(s) (default: a stratified split of DATA)."),
    test: list[Path] = typer.Option([], help="Test dataset(s): reported in the model card, never used to select."),
    arch: str = typer.Option("resnet", help="resnet, cnn, crnn, resnet18 or mfcc-mlp."),
    width: int = typer.Option(32, help="Channels of the first resnet stage."),
    epochs: int = typer.Option(30, min=1),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3),
    patience: int = typer.Option(6, min=1, help="Stop after this many epochs without a better validation mAP."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9),
    mixup: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of each batch mixed (as sound: mel powers added, within 6 dB) with another example; labels are the union."),
    specaugment: bool = typer.Option(True, "--specaugment/--no-specaugment"),
    eq_db: float = typer.Option(10.0, min=0.0, help="Random spectral-envelope augmentation, dB peak to peak (0: off)."),
    max_segments: int = typer.Option(4, min=1, help="3-second segments taken per training file."),
    thresholds: str = typer.Option("global", help="global: one threshold for all labels, tuned on validation micro-F1 (default); per-label: each label's own F1 (overfits small validation sets)."),
    init: Optional[Path] = typer.Option(None, help="Start from this checkpoint (fine-tuning; a new label set gets a new head)."),
    name: Optional[str] = typer.Option(None, help="Model name (default: the architecture)."),
    jobs: int = typer.Option(-1, help="Feature extraction processes (-1: all cores)."),
    device: Device = typer.Option(Device.auto),
    seed: int = typer.Option(0),
    cache: Optional[Path] = typer.Option(None, help="Feature cache folder (default OUT/cache); runs sharing one compute each dataset's features once."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a model on your data; the best weights land in OUT/<name>-<sha8>.safetensors."""
    from .models import ARCHITECTURES
    from .train import TrainConfig, train as run_training

    _setup_logging(verbose, False, tagger_level=logging.INFO)
    if thresholds not in ("global", "per-label"):
        raise _fail(f"unknown --thresholds {thresholds!r}; choose global or per-label")
    if arch not in ARCHITECTURES:
        raise _fail(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    cfg = TrainConfig(
        data=[str(p) for p in data], out=str(out), val=[str(p) for p in val], test=[str(p) for p in test],
        val_fraction=val_fraction, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
        patience=patience, mixup=mixup, specaugment=specaugment, eq_db=eq_db, max_segments=max_segments,
        init=str(init) if init else None, name=name, jobs=jobs, device=device.value, seed=seed,
        cache_dir=str(cache) if cache else None, thresholds=thresholds,
    )
    progress, report = _rich_progress()
    try:
        with progress:
            result = run_training(cfg, report)
    except (DatasetError, ModelLoadError) as exc:
        raise _failed(exc) from None
    err.print(f"best weights: [bold]{result.weights}[/]")
    for name_, metrics in (("validation", result.val), ("test", result.test)):
        if metrics:
            err.print(f"{name_}: mAP {metrics['mAP']:.3f}, micro-F1 {metrics['micro_f1']:.3f}, top-1 {metrics['top1_single']:.3f}")


@app.command("eval")
def eval_(
    data: Path = typer.Argument(..., help="A labelled dataset (class folders, IRMAS test layout, manifest CSV)."),
    model: Optional[Path] = typer.Option(None, help="Weights file (default: the bundled model)."),
    out: Optional[Path] = typer.Option(None, help="Folder for metrics.json and confusion.png."),
    irmas: bool = typer.Option(False, "--irmas", help="IRMAS protocol: 1.5 s hop, mean over the excerpt, one threshold; maps IRMAS label codes."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="One threshold for every label."),
    device: Device = typer.Option(Device.auto),
    jobs: int = typer.Option(-1),
    json_out: bool = typer.Option(False, "--json", help="Metrics as JSON on stdout."),
) -> None:
    """Precision, recall, F1 per label, micro/macro F1, mAP, top-1, confusion matrix."""
    from .datasets import IRMAS_CODES, read_dataset
    from .evaluate import evaluate, plot_confusion
    from .weights import resolve_device

    _setup_logging(False, False)
    scorer = _load_scorer(model, device, 256)
    try:
        ds = read_dataset(data, IRMAS_CODES if irmas else None)
    except DatasetError as exc:
        raise _failed(exc) from None
    progress, report = _rich_progress()
    with progress:
        result = evaluate(scorer.checkpoint, ds, resolve_device(device.value), jobs, None,
                          "irmas" if irmas else "track", threshold, report)
    m = result.metrics
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(m, indent=2))
        plot_confusion(result, out / "confusion.png")
    if json_out:
        print(json.dumps(m, indent=2))
        return
    table = Table(title=f"{scorer.checkpoint.version} on {data} ({m['protocol']} protocol, {m['items']} files)")
    for col in ("label", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, r in m["per_label"].items():
        table.add_row(label, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]))
    Console().print(table)
    Console().print(", ".join(f"{k} {m[k]:.3f}" for k in ("mAP", "micro_f1", "macro_f1", "top1_single", "mixtures_micro_f1") if isinstance(m.get(k), float)))
    if m["failed_files"] or m["labels_not_in_model"]:
        err.print(f"{m['failed_files']} files could not be read; labels the model does not know: {', '.join(m['labels_not_in_model']) or 'none'}")


def main() -> None:  # pragma: no cover
    app()
