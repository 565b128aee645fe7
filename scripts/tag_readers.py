"""What common readers show of the instruments tag, per container, today's form and the old one.

    PYTHONPATH=.:tests python scripts/tag_readers.py

Makes a tiny real file of each container (tests/tagfixtures.py), writes three labels
with tagger's writer, and prints what ffprobe, exiftool, mutagen and beets' mediafile
(with the plugin's media fields) show of INSTRUMENTS; then the same for the form
earlier versions wrote (one value per label in every tag system). A reader missing
from PATH, or one that does not read a container, shows "-".
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import mutagen
from mutagen.asf import ASFUnicodeAttribute
from mutagen.id3 import TXXX

import tagfixtures as fx
from tagger.tags import INSTRUMENTS, InstrumentTags, write_instruments

LABELS = ["saxophone", "piano", "drums"]
TAGS = InstrumentTags(LABELS, {"saxophone": 0.9, "piano": 0.8, "drums": 0.7}, "tagger 0.0 demo")


def _ffprobe(path: Path) -> str:
    if not shutil.which("ffprobe"):
        return "-"
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    probe = json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout or "{}")
    for section in [probe.get("format", {}), *probe.get("streams", [])]:
        for key, value in section.get("tags", {}).items():
            if key.upper() == "INSTRUMENTS":
                return repr(value)
    return "-"


def _exiftool(path: Path) -> str:
    if not shutil.which("exiftool"):
        return "-"
    cmd = ["exiftool", "-a", "-s", "-G1", "-charset", "utf8", str(path)]
    found = []
    for line in subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines():
        tag, _, value = line.split("]", 1)[-1].partition(":")
        tag, value = tag.strip(), value.strip()
        if tag == "UserDefinedText":
            tag, _, value = value[1:].partition(") ")
        if tag.upper() == "INSTRUMENTS":
            found.append(value.replace("\x00", "<NUL>"))
    return repr(found[0] if len(found) == 1 else found) if found else "-"


def _mutagen(path: Path, kind: str) -> str:
    f = mutagen.File(path)
    return repr(INSTRUMENTS.styles[kind].get(f.tags))  # the stored values, not split


def _mediafile(path: Path) -> str:
    try:
        from beets.dbcore.types import MULTI_VALUE_DSV
        from mediafile import MediaFile

        from beetsplug.instruments import media_fields
    except ImportError:
        return "-"

    class WithOurFields(MediaFile):
        pass

    for name, field in media_fields().items():
        WithOurFields.add_field(name, field)
    return repr(MULTI_VALUE_DSV.normalize(WithOurFields(str(path)).instruments))


def _write_old_form(path: Path, kind: str) -> None:
    """INSTRUMENTS as earlier versions wrote it: one value per label everywhere."""
    f = mutagen.File(path)
    if kind == "id3":
        f.tags.add(TXXX(encoding=3, desc="INSTRUMENTS", text=LABELS))
    elif kind == "mp4":
        f.tags["----:com.apple.iTunes:INSTRUMENTS"] = [v.encode() for v in LABELS]
    elif kind == "ape":
        f.tags["Instruments"] = LABELS
    elif kind == "asf":
        f.tags["INSTRUMENTS"] = [ASFUnicodeAttribute(v) for v in LABELS]
    else:
        f.tags["INSTRUMENTS"] = LABELS
    f.save()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for form in ("today", "earlier versions"):
            print(f"\n== {form}")
            print("container | stored (mutagen) | ffprobe | exiftool | beets (mediafile)")
            for container in fx.CONTAINERS:
                if fx.encoder_missing(container.codec):
                    continue
                path = fx.make_audio(Path(tmp) / f"{form[0]}-{container.name}{container.suffix}", container)
                fx.seed_tags(path, container.kind)
                if form == "today":
                    write_instruments(path, TAGS)
                else:
                    _write_old_form(path, container.kind)
                print(" | ".join([container.name, _mutagen(path, container.kind), _ffprobe(path),
                                  _exiftool(path), _mediafile(path)]))


if __name__ == "__main__":
    main()
