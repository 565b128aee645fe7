"""beets plugin ``instruments``: find the instruments of library items with tagger.

Enable it with ``plugins: instruments`` in beets' config. It behaves like beets' own
analysis plugins (keyfinder, autobpm, replaygain):

- Three media fields, declared once with one storage style per tag system, the very
  styles tagger writes with (:mod:`tagger.tags`), so beets reads them from the files on
  import (a file already tagged by ``tagger scan --write-tags`` imports with its
  instruments) and writes them with ``beet write``, ``beet modify`` or ``import: write:``
  like any other field:

  - ``instruments``: the labels found, highest score first (a list, like ``genres``:
    ``beet ls instruments:saxophone``, ``$instruments`` prints them joined with ``; ``)
  - ``instruments_confidence``: ``label:0.912``, one per label, in the same order
  - ``instruments_source``: ``tagger <version> <model>``, what found them

- ``beet instruments [QUERY] [-f]`` analyses the matching items through tagger's library
  API (:class:`tagger.scan.Scanner`), which only reads the files, stores the fields in
  the library and, when beets' ``write`` option is on, has beets write them to the files
  (``Item.try_write``). With ``auto: yes`` (the default) imported items are analysed as
  they are imported; the plugin never writes a file then: beets writes the files it
  imports (the copies, in copy or move mode) when ``import: write:`` is on and it applies
  metadata to them. Items that already have ``instruments_source`` are skipped unless
  ``-f``, and so are items with instruments of their own (a user's tag, no source), as
  ``tagger scan`` keeps them; a file that fails is logged and the others go on.
- When ``instruments`` is edited by hand (``beet modify instruments=...``), its labels no
  longer match ``instruments_confidence``: the value is then the user's own, and the
  confidences and source are dropped from the item, so that a later ``tagger scan
  --write-tags`` keeps it as a user's tag (unless ``--force``).

Options (``instruments:`` section): ``auto``, ``force``, ``model`` (weights file;
default: the bundled model), ``threshold`` and ``top_k`` (as ``tagger scan``),
``device``, ``jobs`` (decoding processes; 1 decodes in the beets process),
``score_fields`` (``no``; ``yes`` also stores every label's score as a number,
``instrument_<label>``, for range queries like ``instrument_piano:0.5..``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mediafile
from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from tagger.tags import CONFIDENCE, INSTRUMENTS, SOURCE, TAG_KINDS, TagField

if TYPE_CHECKING:
    from collections.abc import Sequence

    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

SCORE_PREFIX = "instrument_"  # score fields, with `score_fields: yes`


class TaggerStorageStyle(mediafile.ListStorageStyle):
    """One of tagger's fields in one tag system, as a mediafile storage style.

    It reads and writes through tagger's own storage style of that tag system, so beets
    reads exactly what tagger writes and writes exactly what tagger reads. An empty value
    removes the field from the file.
    """

    def __init__(self, field: TagField, kind: str) -> None:
        super().__init__(key="")
        self.field, self.kind = field, kind
        # mediafile picks the styles of a file by its mutagen class's name
        self.formats = [cls.__name__ for cls, k in TAG_KINDS.items() if k == kind]

    def get_list(self, mutagen_file: Any) -> list[str] | None:
        if mutagen_file.tags is None:
            return None
        return self.field.get(self.kind, mutagen_file.tags) or None

    def get(self, mutagen_file: Any) -> str | None:
        values = self.get_list(mutagen_file)
        return values[0] if values else None

    def set_list(self, mutagen_file: Any, values: Sequence[Any] | None) -> None:
        self.field.set(self.kind, mutagen_file.tags, [str(v) for v in values or [] if str(v)])

    def set(self, mutagen_file: Any, value: Any) -> None:
        self.set_list(mutagen_file, [] if value is None else [value])

    def delete(self, mutagen_file: Any) -> None:
        self.set_list(mutagen_file, [])


def _styles(field: TagField) -> list[TaggerStorageStyle]:
    return [TaggerStorageStyle(field, kind) for kind in field.styles]


def media_fields() -> dict[str, mediafile.MediaField]:
    """The plugin's media fields: name -> descriptor (one storage style per tag system)."""
    return {
        "instruments": mediafile.ListMediaField(*_styles(INSTRUMENTS)),
        "instruments_confidence": mediafile.ListMediaField(*_styles(CONFIDENCE)),
        "instruments_source": mediafile.MediaField(*_styles(SOURCE)),
    }


def _model_labels(model: str | None) -> tuple[str, ...]:
    """The model's labels, from its header only (no torch); () when it cannot be read."""
    from tagger.errors import ModelLoadError
    from tagger.weights import bundled_model_path, read_header

    try:
        return read_header(Path(model) if model else bundled_model_path()).labels
    except ModelLoadError:
        return ()


def _shown(item: Item) -> str:
    """The item's path for a log line: control characters and odd bytes escaped."""
    from tagger.discover import show_path

    return show_path(os.fsdecode(item.path))


def _confidence_labels(values: Sequence[str]) -> list[str]:
    return [str(v).rsplit(":", 1)[0] for v in values]


class InstrumentsPlugin(BeetsPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": True, "model": None, "threshold": None, "top_k": None, "device": "auto", "jobs": 1,
                         "force": False, "score_fields": False})
        self._scorer = None
        for name, field in media_fields().items():
            try:
                self.add_media_field(name, field)
            except ValueError:  # declared by an earlier instance in this process
                pass
        self.item_types = {
            "instruments": types.MULTI_VALUE_DSV,
            "instruments_confidence": types.MULTI_VALUE_DSV,
            "instruments_source": types.STRING,
        }
        if self.config["score_fields"].get(bool):
            self.item_types.update({f"{SCORE_PREFIX}{label}": types.Float(3) for label in _model_labels(self._model())})
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
        self.register_listener("write", self.on_write)

    def _model(self) -> str | None:
        model = self.config["model"].get()
        return os.path.expanduser(str(model)) if model else None

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("instruments", help="find the instruments of items with tagger")
        cmd.parser.add_option("-f", "--force", dest="force", action="store_true", default=False,
                              help="re-analyse items that already have instruments (also a user's own)")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts, args: list[str]) -> None:
        force = self.config["force"].get(bool) or opts.force
        self.find_instruments(list(lib.items(args)), write=ui.should_write(), force=force)

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        # Never write here: the items still point at the files being imported; beets
        # writes the files it imports (the copies, in copy mode) after this stage.
        self.find_instruments(task.imported_items(), write=False, force=self.config["force"].get(bool))

    def scorer(self):
        """tagger's scorer, loaded once (in a thread, while the first files decode)."""
        if self._scorer is None:
            from tagger.scan import ScorerInBackground

            self._scorer = ScorerInBackground(self._model(), self.config["device"].as_str())
        return self._scorer

    def find_instruments(self, items: Sequence[Item], write: bool = False, force: bool = False) -> None:
        """Analyse `items` (those without ``instruments_source`` unless `force`) and store
        the fields; with `write`, beets writes them to the files."""
        from tagger.errors import ModelLoadError, TaggerError
        from tagger.scan import Scanner, ScanOptions

        todo = []
        for item in items:
            if force:
                todo.append(item)
            elif item.get("instruments_source"):
                self._log.info("{}: already has instruments (use -f to redo it)", _shown(item))
            elif item.get("instruments"):
                self._log.info("{}: has its own instruments, kept (use -f to replace them)", _shown(item))
            else:
                todo.append(item)
        if not todo:
            return
        threshold, top_k = self.config["threshold"].get(), self.config["top_k"].get()
        # tagger only reads the files here (write_tags=False); beets writes them.
        options = ScanOptions(write_tags=False, force=force, threshold=None if threshold is None else float(threshold),
                              top_k=None if top_k is None else int(top_k), jobs=self.config["jobs"].get(int))
        try:
            scanner = Scanner(self.scorer(), options)
            files = [Path(os.fsdecode(item.path)) for item in todo]
            for item, result in zip(todo, scanner.scan_files(files)):
                self._store(item, result, scanner.source, write)
        except (ModelLoadError, TaggerError) as exc:
            raise ui.UserError(f"instruments: {exc}") from exc

    def _store(self, item: Item, result, source: str, write: bool) -> None:
        if result.status == "error":
            self._log.error("{}: {}", _shown(item), result.error)
            return
        labels = [label for label, _ in result.instruments]
        item["instruments"] = labels
        item["instruments_confidence"] = [f"{label}:{score:.3f}" for label, score in result.instruments]
        item["instruments_source"] = source
        if self.config["score_fields"].get(bool):
            for label, score in result.scores.items():
                item[f"{SCORE_PREFIX}{label}"] = round(score, 3)
        self._log.info("{}: {}", _shown(item), ", ".join(labels) or "no instrument")
        if write:
            item.try_write()
        item.store()

    def on_write(self, item: Item, path: bytes, tags: dict[str, Any]) -> None:
        """Before beets writes a file: a hand-edited ``instruments`` is the user's own.

        tagger's values always have one confidence per label, in the same order; when the
        labels differ from those of the confidences, the instruments were edited, and the
        confidences and source (which no longer describe them) are dropped from the item
        and the file.
        """
        instruments = tags.get("instruments") or []
        confidences = tags.get("instruments_confidence") or []
        if not (tags.get("instruments_source") or confidences):
            return
        if list(instruments) == _confidence_labels(confidences):
            return
        self._log.debug("{}: instruments edited by hand, kept as the user's own", _shown(item))
        for name in ("instruments_confidence", "instruments_source"):
            tags[name] = None  # removed from the file
        item["instruments_confidence"], item["instruments_source"] = [], ""
