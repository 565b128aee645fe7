"""Voices for the corpus: singing from festival's singing mode, speech from festival and espeak-ng.

Commercial music nearly always has a voice in it. The corpus renders voices so that the
model hears singing and speech alone and on top of instruments, and learns that a voice
is not an instrument (DESIGN.md: "a voice must never be reported as an instrument").

- **Singing**: festival's ``text2wave -mode singing`` with the diphone voices. Each note is
  one syllable, given as a frequency in Hz and a duration in seconds (festival's ``NOTE``
  names and ``BEATS`` are off by an octave and by its own tempo rule, so we never use
  them). The melody comes from the clip's key and chords (``material.gen_melody``) or a
  sustained line, in a singer's range.
- **Speech**: ``espeak-ng`` (many languages and variants, pitch and speed drawn per clip)
  and festival's speaking voices.
- Per render: a vocal-tract length factor (render at ``f / r`` for ``r`` times as long,
  then resample by ``r``: pitch, formants and timing all move together, so a few male
  diphone voices become many singers), delayed vibrato on sung notes, and sometimes a
  choir (3-5 voices of one melody, slightly detuned and late) or a double-tracked lead.

Voices are split into ``train`` and ``heldout`` sets (``VOICE_SPLITS``): the held-out set
has a speaker (festival's female Italian diphone voice ``lp``) and an engine (festival's
HTS voice ``cmu_us_slt_arctic_hts``) that training never hears, plus espeak-ng variants
training never uses, so a held-out figure says how the model does on voices it never heard.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .audio import RENDER_SAMPLES, SAMPLE_RATE
from .material import MusicContext, Note, gen_melody, gen_sustained

TEXT2WAVE = "text2wave"
FESTIVAL = "festival"
FESTIVAL_HEAP = 2_000_000  # Lisp cells (64 MB); every voice here renders with it
ESPEAK = "espeak-ng"
DEBIAN_PACKAGES = ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-italp16k",
                   "festvox-itapc16k", "festvox-us-slt-hts", "festvox-ru", "espeak-ng")


@dataclass(frozen=True)
class Voice:
    engine: str  # "festival" or "espeak"
    name: str  # festival voice (voice_<name>) or espeak-ng voice+variant
    sings: bool  # festival's singing mode works with it
    low: int  # MIDI range the singer is asked to sing in (before the tract factor)
    high: int


# Festival's diphone voices sing; its HTS and clunits voices only speak (they ignore the
# singing markup's pitches).
FESTIVAL_VOICES = {
    "kal_diphone": Voice("festival", "kal_diphone", True, 43, 67),  # US English, male
    "ked_diphone": Voice("festival", "ked_diphone", True, 43, 67),  # US English, male
    "pc_diphone": Voice("festival", "pc_diphone", True, 43, 67),  # Italian, male
    "lp_diphone": Voice("festival", "lp_diphone", True, 53, 77),  # Italian, female
    "msu_ru_nsh_clunits": Voice("festival", "msu_ru_nsh_clunits", False, 0, 0),  # Russian, male
    "cmu_us_slt_arctic_hts": Voice("festival", "cmu_us_slt_arctic_hts", False, 0, 0),  # US English, female
}
ESPEAK_LANGUAGES = ("en", "en-us", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "cs", "fi", "hu", "ro", "tr")
ESPEAK_TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2",
                         "croak", "Andy", "Annie", "Denis", "Gene", "Jacky", "Mario", "Michael", "anika",
                         "belinda", "benjamin", "caleb", "david", "edward", "linda", "max", "norbert", "paul")
ESPEAK_HELDOUT_VARIANTS = ("m7", "f5", "klatt3", "Alicia", "Hugo", "aunty", "grandpa", "john")

VOICE_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"sing": ("kal_diphone", "ked_diphone", "pc_diphone"),
              "speak": ("kal_diphone", "ked_diphone", "pc_diphone", "msu_ru_nsh_clunits"),
              "espeak": ESPEAK_TRAIN_VARIANTS},
    "heldout": {"sing": ("lp_diphone",),
                "speak": ("cmu_us_slt_arctic_hts", "lp_diphone"),
                "espeak": ESPEAK_HELDOUT_VARIANTS},
}
MAX_FESTIVAL_HZ = 480.0  # festival 2.5 segfaults when asked to sing above ~500 Hz
VOICE_STYLES = {"sing": 0.55, "choir": 0.15, "speak": 0.1, "espeak": 0.2}

SYLLABLES_EN = ("oh", "love", "night", "my", "heart", "go", "day", "you", "be", "free", "home", "light",
                "la", "na", "hey", "baby", "dream", "away", "time", "fire", "rain", "know", "stay", "sun",
                "yeah", "down", "high", "sky", "gone", "cry", "soul", "run", "true", "blue", "mine", "life")
SYLLABLES_IT = ("a", "mo", "re", "cuo", "re", "la", "no", "tte", "ma", "ri", "so", "le", "vi", "ta", "mi",
                "o", "bel", "la", "can", "to", "sta", "se", "ra", "lu", "na", "fio", "re", "do", "lce")
WORDS = ("the", "night", "is", "young", "and", "we", "are", "running", "through", "the", "city", "lights",
         "I", "never", "knew", "what", "it", "meant", "to", "be", "alone", "tonight", "hold", "on",
         "tell", "me", "something", "real", "every", "morning", "comes", "again", "river", "road",
         "a", "little", "longer", "now", "listen", "people", "money", "world", "turn", "around")


class VoiceError(RuntimeError):
    """A voice engine that is missing or failed."""


def missing_tools() -> list[str]:
    """Debian packages to install for voices, or [] when the engines are there."""
    ok = shutil.which(TEXT2WAVE) and shutil.which(FESTIVAL) and shutil.which(ESPEAK)
    voices = Path("/usr/share/festival/voices")
    ok = ok and all(any(voices.glob(f"*/{v}")) for v in FESTIVAL_VOICES)
    return [] if ok else list(DEBIAN_PACKAGES)


# ---------------------------------------------------------------------------- engines


def _run(cmd: list[str], cwd: str) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError as exc:
        raise VoiceError(f"{cmd[0]} is not installed (Debian: {' '.join(DEBIAN_PACKAGES)})") from exc
    except subprocess.CalledProcessError as exc:
        raise VoiceError(f"{cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()[-200:]}") from exc


def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return audio


def singing_xml(notes: list[tuple[float, float, str]], start: float = 0.0) -> str:
    """Festival singing markup for (frequency Hz, seconds, syllable) notes; a rest of ``start`` s first."""
    body = [f'<REST SECONDS="{start:.3f}"></REST>'] if start > 0.01 else []
    body += [f'<PITCH FREQ="{f:.2f}"><DURATION SECONDS="{d:.3f}">{escape(s)}</DURATION></PITCH>'
             if s else f'<REST SECONDS="{d:.3f}"></REST>' for f, d, s in notes]
    return ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
            '"Singing.v0_1.dtd" []>\n<SINGING BPM="60">\n' + "\n".join(body) + "\n</SINGING>\n")


def text2wave(args: list[str]) -> list[str]:
    """The command that runs festival's ``text2wave`` script with ``args`` and a small Lisp heap.

    ``text2wave`` starts festival with its default heap of 10 million cells (320 MB), and
    festival writes every cell before it reads a word: about 0.4 s of a voice render that
    takes 0.1-0.3 s. The script's own arguments cannot follow ``--heap`` on its ``#!`` line, so
    festival runs it in batch mode with ``argv`` set first; the sound is bit for bit the same.
    Batch mode also exits non-zero on a Scheme error, where ``text2wave`` exits 0.
    """
    script = shutil.which(TEXT2WAVE)
    if script is None:
        raise VoiceError(f"{TEXT2WAVE} is not installed (Debian: {' '.join(DEBIAN_PACKAGES)})")
    quoted = " ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args)
    return [FESTIVAL, "--heap", str(FESTIVAL_HEAP), "-b", f"(set! argv (list {quoted}))", script]


def festival_sing(voice: str, notes: list[tuple[float, float, str]], start: float = 0.0) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="tagger-voice-") as tmp:
        (Path(tmp) / "s.xml").write_text(singing_xml(notes, start))
        _run(text2wave(["-mode", "singing", "s.xml", "-o", "s.wav", "-eval", f"(voice_{voice})"]), tmp)
        return _read(Path(tmp) / "s.wav")


def festival_speak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="tagger-voice-") as tmp:
        (Path(tmp) / "s.txt").write_text(text + "\n")
        _run(text2wave(["s.txt", "-o", "s.wav", "-eval", f"(voice_{voice})"]), tmp)
        return _read(Path(tmp) / "s.wav")


def espeak_speak(voice: str, text: str, pitch: int, speed: int) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="tagger-voice-") as tmp:
        _run([ESPEAK, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", "s.wav", text], tmp)
        return _read(Path(tmp) / "s.wav")


# ---------------------------------------------------------------------------- shaping


def tract_resample(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster: pitch, formants and timing all scale by it."""
    if abs(factor - 1.0) < 1e-3:
        return audio
    n = len(audio)
    t = np.arange(int(n / factor)) * factor
    return np.interp(t, np.arange(n), audio).astype(np.float32)


def vibrato(audio: np.ndarray, rng: np.random.Generator, rate: float, cents: float, onset: float) -> np.ndarray:
    """Periodic pitch modulation (``cents`` peak, ``rate`` Hz) fading in over ``onset`` s."""
    n = len(audio)
    t = np.arange(n) / SAMPLE_RATE
    depth = 2 ** (cents / 1200) - 1  # peak pitch ratio deviation
    fade = np.clip(t / max(onset, 1e-3), 0, 1)
    rate_t = rate * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    phase = 2 * np.pi * np.cumsum(rate_t) / SAMPLE_RATE
    # d(position)/dt = 1 + depth * fade * sin(phase): integrate for the read position
    position = np.cumsum(1 + depth * fade * np.sin(phase)) - 1
    return np.interp(np.clip(position, 0, n - 1), np.arange(n), audio).astype(np.float32)


def _fit(audio: np.ndarray, offset: int = 0) -> np.ndarray:
    out = np.zeros(RENDER_SAMPLES, dtype=np.float32)
    piece = audio[: max(0, RENDER_SAMPLES - offset)]
    out[offset : offset + len(piece)] = piece
    return out


def _normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio / peak if peak > 0 else audio


# ---------------------------------------------------------------------------- performances


def _sung_notes(rng: np.random.Generator, ctx: MusicContext, voice: Voice, factor: float, shift: int
                ) -> tuple[list[tuple[float, float, str]], float]:
    """(Hz, seconds, syllable) notes for festival, already stretched by the tract factor."""
    lo, hi = voice.low + shift, voice.high + shift
    if rng.random() < 0.75:
        phrase = gen_melody(rng, ctx, lo, hi, 80.0)
    else:
        phrase = gen_sustained(rng, ctx, lo, hi, 80.0)
    words = SYLLABLES_IT if voice.name in ("pc_diphone", "lp_diphone") else SYLLABLES_EN
    notes: list[Note] = sorted({n.start: n for n in phrase.notes}.values(), key=lambda n: n.start)  # monophonic
    out: list[tuple[float, float, str]] = []
    t = notes[0].start if notes else 0.0
    start = t
    for i, note in enumerate(notes):
        end = notes[i + 1].start if i + 1 < len(notes) else note.end
        if note.start > t + 0.02:
            out.append((0.0, (note.start - t) * factor, ""))
        legato = min(end, max(note.end, note.start + 0.12))
        hz = 440.0 * 2 ** ((note.pitch - 69) / 12) / factor
        while hz > MAX_FESTIVAL_HZ:  # festival's singing mode crashes above ~500 Hz
            hz /= 2
        out.append((hz, (legato - note.start) * factor, str(rng.choice(words))))
        t = legato
    return out, start * factor


def sing(rng: np.random.Generator, ctx: MusicContext, voice_name: str, factor: float, shift: int = 0) -> np.ndarray:
    voice = FESTIVAL_VOICES[voice_name]
    notes, start = _sung_notes(rng, ctx, voice, factor, shift)
    audio = tract_resample(festival_sing(voice.name, notes, start), factor)
    if rng.random() < 0.8:
        audio = vibrato(audio, rng, rng.uniform(4.5, 6.8), rng.uniform(15, 60), rng.uniform(0.2, 1.2))
    return audio


def speak(rng: np.random.Generator, engine: str, voice_name: str, factor: float) -> np.ndarray:
    text = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 16))))
    if engine == "espeak":
        language = str(rng.choice(ESPEAK_LANGUAGES))
        audio = espeak_speak(f"{language}+{voice_name}", text, int(rng.integers(15, 85)),
                             int(rng.integers(120, 230)))
    else:
        audio = festival_speak(voice_name, text)
    return tract_resample(audio, factor)


def render_voice(rng: np.random.Generator, ctx: MusicContext, split: str = "train",
                 style: str | None = None, weights: dict[str, float] | None = None) -> tuple[np.ndarray, str]:
    """One voice part of RENDER_SAMPLES at 22 050 Hz (peak 1) and a description of it.

    The style is ``style``, else drawn with ``weights`` (default ``VOICE_STYLES``; a style
    left out of ``weights`` is never drawn).
    """
    voices = VOICE_SPLITS[split]
    styles = {k: v for k, v in (weights or VOICE_STYLES).items() if v > 0 and voices["sing" if k == "choir" else k]}
    if style is None:
        names = list(styles)
        p = np.array([styles[k] for k in names])
        style = names[int(rng.choice(len(names), p=p / p.sum()))]
    offset = int(rng.integers(0, int(0.4 * SAMPLE_RATE)))
    if style == "sing":
        name = str(rng.choice(voices["sing"]))
        factor = float(rng.uniform(0.9, 1.25))
        audio = _fit(sing(rng, ctx, name, factor), offset)
        if rng.random() < 0.25:  # double-tracked lead: a second take, a little late and detuned
            second = sing(np.random.default_rng(rng.integers(2**31)), ctx, name, factor * rng.uniform(0.99, 1.01))
            audio = audio + 0.7 * _fit(second, offset + int(rng.integers(200, 900)))
        return _normalise(audio), f"sing {name} x{factor:.2f}"
    if style == "choir":
        n = int(rng.integers(3, 6))
        seed = int(rng.integers(2**31))  # every singer sings the same melody
        audio = np.zeros(RENDER_SAMPLES, dtype=np.float32)
        for k in range(n):
            name = str(rng.choice(voices["sing"]))
            factor = float(rng.uniform(0.9, 1.3))
            shift = int(rng.choice([0, 0, -12, -5, 4]))
            part = sing(np.random.default_rng(seed), ctx, name, factor, shift)
            audio += _fit(part, offset + int(rng.integers(0, 800)))
        return _normalise(audio), f"choir of {n}"
    if style == "speak":
        name = str(rng.choice(voices["speak"]))
        factor = float(rng.uniform(0.9, 1.2))
        return _normalise(_fit(speak(rng, "festival", name, factor), offset)), f"speak {name} x{factor:.2f}"
    name = str(rng.choice(voices["espeak"]))
    factor = float(rng.uniform(0.95, 1.1))
    return _normalise(_fit(speak(rng, "espeak", name, factor), offset)), f"espeak {name} x{factor:.2f}"

