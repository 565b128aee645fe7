"""beets plugin ``instruments``: find the instruments of library items with tagger.

Enable it with ``plugins: instruments`` in beets' config. ``beet instruments [QUERY] [-f]``
scans the matching items through tagger's library API (:class:`tagger.scan.Scanner`) and
stores flexible attributes on each item:

- ``instruments``: the labels found, highest score first, joined with ``;``
  (``beet ls instruments:saxophone``)
- ``instruments_source``: ``tagger <version> <model>``
- ``instrument_<label>``: the track score of every label of the model, in [0, 1]
  (``beet ls instrument_saxophone:0.5..``)

The files' own tags are written, by tagger's own safe writer (atomic replace, other tags
untouched, a user's own instruments tag kept unless ``-f``), only when beets' ``write``
option (``import: write:``) is on. Items that already have ``instruments_source`` are
skipped unless ``-f``. A file that fails is logged and the others go on. With
``auto: yes`` (the default, like beets' autobpm and keyfinder) imported items are
scanned as they are imported.

Options (``instruments:`` section): ``auto``, ``model`` (weights file; default: the bundled
model), ``threshold`` and ``top_k`` (as ``tagger scan``), ``device``, ``jobs`` (decoding
processes; 1 decodes in the beets process).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

SCORE_PREFIX = "instrument_"


def _model_labels(model: str | None) -> tuple[str, ...]:
    """The model's labels, from its header only (no torch); () when it cannot be read."""
    from tagger.errors import ModelLoadError
    from tagger.weights import bundled_model_path, read_header

    try:
        return read_header(Path(model) if model else bundled_model_path()).labels
    except ModelLoadError:
        return ()


class InstrumentsPlugin(BeetsPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": True, "model": None, "threshold": None, "top_k": None, "device": "auto", "jobs": 1,
                         "force": False})
        self._scorer = None
        self.item_types = {"instruments": types.STRING, "instruments_source": types.STRING}
        self.item_types.update({f"{SCORE_PREFIX}{label}": types.Float(3) for label in _model_labels(self._model())})
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def _model(self) -> str | None:
        model = self.config["model"].get()
        return os.path.expanduser(str(model)) if model else None

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("instruments", help="find the instruments of items with tagger")
        cmd.parser.add_option("-f", "--force", dest="force", action="store_true", default=False,
                              help="re-analyse items that already have instruments, and overwrite a user's own instruments tag")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts, args: list[str]) -> None:
        force = self.config["force"].get(bool) or opts.force
        self.find_instruments(list(lib.items(args)), write=ui.should_write(), force=force)

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        self.find_instruments(task.imported_items(), write=ui.should_write(), force=self.config["force"].get(bool))

    def scorer(self):
        """tagger's scorer, loaded once (in a thread, while the first files decode)."""
        if self._scorer is None:
            from tagger.scan import ScorerInBackground

            self._scorer = ScorerInBackground(self._model(), self.config["device"].as_str())
        return self._scorer

    def find_instruments(self, items: Sequence[Item], write: bool = False, force: bool = False) -> None:
        from tagger.errors import ModelLoadError, TaggerError
        from tagger.scan import Scanner, ScanOptions

        todo = [item for item in items if force or not item.get("instruments_source")]
        skipped = len(items) - len(todo)
        if skipped:
            self._log.info("{} items already have instruments (use -f to redo them)", skipped)
        if not todo:
            return
        threshold, top_k = self.config["threshold"].get(), self.config["top_k"].get()
        options = ScanOptions(write_tags=write, force=force, threshold=None if threshold is None else float(threshold),
                              top_k=None if top_k is None else int(top_k), jobs=self.config["jobs"].get(int))
        try:
            scanner = Scanner(self.scorer(), options)
            files = [Path(os.fsdecode(item.path)) for item in todo]
            for item, result in zip(todo, scanner.scan_files(files)):
                self._store(item, result, scanner.source)
        except (ModelLoadError, TaggerError) as exc:
            raise ui.UserError(f"instruments: {exc}") from exc

    def _store(self, item: Item, result, source: str) -> None:
        if result.status == "error":
            self._log.error("{}: {}", item.filepath, result.error)
            return
        if result.tags == "kept":
            self._log.warning("{}: has its own instruments tag, kept (use -f to overwrite it)", item.filepath)
            return
        labels = [label for label, _ in result.instruments]
        item["instruments"] = ";".join(labels)
        item["instruments_source"] = source
        for label, score in result.scores.items():
            item[f"{SCORE_PREFIX}{label}"] = round(score, 3)
        item.store()
        self._log.info("{}: {}{}", item.filepath, ", ".join(labels) or "no instrument",
                       " (tags written)" if result.tags == "written" else "")
