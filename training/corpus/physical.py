"""Physical and spectral models: the ``physical`` and ``physical_heldout`` sources.

Every stem draws its own instrument: a model *variant* (pickup, amplifier, body family,
mute, ...) and continuous parameters (string damping, brightness, pick and pickup
position, body resonances, vibrato, breath, ...) from the stem's seed, so one label gets
hundreds of distinct timbres. ``physical`` (training) and ``physical_heldout``
(evaluation only) use disjoint variant sets (``VARIANTS``): a model trained on
``physical`` is evaluated on instruments it never heard.

Models (all vectorised: scipy ``lfilter``/``sosfilt`` and numpy over whole notes):

- plucked strings (electric and acoustic guitar, banjo, bass incl. slap, pizzicato):
  Karplus-Strong as one IIR filter per note (delay line + loss filter + all-pass
  fractional delay in the denominator), pick-position comb on the excitation,
  pickup-position comb and pickup resonance on the output, finger damping at note-off,
  natural harmonics; electric guitar through a pedalboard amplifier (compressor, gate,
  pre-EQ, Distortion or Gain+Clipping, tone stack, cabinet EQ, chorus/phaser/delay).
- bowed strings (violin, viola, cello): band-limited Helmholtz sawtooth with per-note
  slope/corner variation and bow-position comb, bow noise, delayed vibrato, portamento,
  a body as a bank of resonances in the instrument's register; double stops.
- winds and brass: additive synthesis with per-harmonic amplitudes following the
  envelope (brass: higher harmonics grow faster with level, so brightness rises with
  dynamics), breath noise, chiff/lip attack, vibrato, portamento/slides.
- piano: inharmonic partials f_n = n f0 sqrt(1 + B n^2), 2-3 detuned strings (beating),
  partial-dependent decay, hammer noise, sustain pedal; electric piano by 2-operator FM.
- accordion and reed organ: detuned banks of band-limited pulse reeds, bellows swell.
- pipe organ: registrations of flue and reed ranks as one additive harmonic table,
  chiff, wind noise; celesta and music box: modal bars / comb tines.

See training/CORPUS.md for the parameters drawn and the held-out split.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from tagger.labels import BUNDLED_LABELS

from .audio import RENDER_SAMPLES, SAMPLE_RATE
from .material import Note
from .oscillators import pulse, saw
from .stems import Coverage, Stem

SR = SAMPLE_RATE
NYQUIST = SR / 2
TAU = 2 * np.pi

PHYSICAL_PROGRAMS: dict[str, tuple[tuple[int, int], ...]] = {
    "electric_guitar": ((0, 26), (0, 27), (0, 28), (0, 29), (0, 30), (0, 31)),
    "acoustic_guitar": ((0, 24), (0, 25)),
    "banjo": ((0, 105),),
    "bass": ((0, 32), (0, 33), (0, 34), (0, 35), (0, 36), (0, 37)),
    "violin": ((0, 40), (0, 41)),
    "cello": ((0, 42),),
    "clarinet": ((0, 71),),
    "saxophone": ((0, 64), (0, 65), (0, 66), (0, 67)),
    "flute": ((0, 73), (0, 72)),
    "trumpet": ((0, 56), (0, 59)),
    "trombone": ((0, 57),),
    "piano": ((0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5)),
    "accordion": ((0, 21), (0, 23)),
    "organ": ((0, 19), (0, 20)),
    "mallet_percussion": ((0, 8), (0, 10)),
}

# label -> (variants used by ``physical`` (training), variants only ``physical_heldout`` uses)
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "electric_guitar": (("single_bridge", "humbucker_bridge", "humbucker_neck"),
                        ("single_neck_middle", "p90_fuzz")),
    "acoustic_guitar": (("dreadnought", "classical"), ("parlour", "jumbo")),
    "banjo": (("resonator",), ("open_back",)),
    "bass": (("precision", "upright"), ("jazz_bridge", "upright_gut")),
    "violin": (("strad_like", "german_dark"), ("bright_student",)),
    "cello": (("strad_like", "german_dark"), ("bright_student",)),
    "clarinet": (("boehm_bb",), ("dark_a",)),
    "saxophone": (("classical", "rock"), ("subtone_jazz",)),
    "flute": (("silver",), ("wooden",)),
    "trumpet": (("open_bright", "harmon"), ("cornet", "cup_mute")),
    "trombone": (("tenor",), ("bass_trombone",)),
    "piano": (("grand", "upright", "tine"), ("old_upright", "reed_ep")),
    "accordion": (("musette_2", "dry_2"), ("musette_3",)),
    "organ": (("flue_chorus",), ("full_reeds",)),
    "mallet_percussion": (("soft",), ("hard",)),
}
assert set(VARIANTS) == set(PHYSICAL_PROGRAMS)


def physical_coverage(heldout: bool = False) -> Coverage:
    source = "physical_heldout" if heldout else "physical"
    skipped = {f"{label}:*": "no physical/spectral model in training/corpus/physical.py"
               for label in BUNDLED_LABELS if label not in PHYSICAL_PROGRAMS}
    skipped.update({"bass:38": "synth bass: the synth source", "bass:39": "synth bass: the synth source",
                    "organ:16-18": "drawbar/percussive/rock organ: the synth source",
                    "mallet_percussion:9,11-13": "glockenspiel, vibraphone, marimba, xylophone: the synth source"})
    programs = {label: progs for label, progs in PHYSICAL_PROGRAMS.items() if label in MODELS}
    return Coverage(source, programs, skipped)


def choose_variant(rng: np.random.Generator, label: str, program: int, heldout: bool) -> str:
    options = VARIANTS[label][1 if heldout else 0]
    if label == "piano":  # acoustic vs electric piano follows the GM program
        ep = program in (4, 5)
        options = tuple(v for v in options if (v in ("tine", "reed_ep")) == ep) or options
    if label == "bass":  # GM 32 is the acoustic (upright) bass, 33-37 electric
        options = tuple(v for v in options if v.startswith("upright") == (program == 32)) or options
    if label == "trumpet":  # GM 59 is the muted trumpet
        options = tuple(v for v in options if (v in ("harmon", "cup_mute")) == (program == 59)) or options
    return str(options[int(rng.integers(len(options)))])


def render_physical(stem: Stem, seed: int, heldout: bool = False) -> np.ndarray:
    """Render one stem: float32 mono, RENDER_SAMPLES long, peak 0.5 (or silent)."""
    rng = np.random.default_rng(seed)
    variant = choose_variant(rng, stem.label, stem.program, heldout)
    fn = MODELS[stem.label]
    out = fn(stem, rng, variant)
    out = np.nan_to_num(out[:RENDER_SAMPLES], nan=0.0, posinf=0.0, neginf=0.0)
    if len(out) < RENDER_SAMPLES:
        out = np.pad(out, (0, RENDER_SAMPLES - len(out)))
    out = signal.lfilter([1, -1], [1, -0.995], out)  # DC blocker
    peak = np.max(np.abs(out))
    return (out / peak * 0.5 if peak > 1e-9 else np.zeros(RENDER_SAMPLES)).astype(np.float32)


# ---------------------------------------------------------------------------- helpers


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def _sos(kind: str, f, order: int = 2) -> np.ndarray:
    if kind == "bandpass":
        lo, hi = f
        return signal.butter(order, [max(lo, 10.0), min(hi, NYQUIST * 0.95)], "bandpass", fs=SR, output="sos")
    return signal.butter(order, min(f, NYQUIST * 0.95), kind, fs=SR, output="sos")


def lowpass(x, f, order=2):
    return signal.sosfilt(_sos("lowpass", f, order), x)


def highpass(x, f, order=2):
    return signal.sosfilt(_sos("highpass", f, order), x)


def bandpass(x, lo, hi, order=2):
    return signal.sosfilt(_sos("bandpass", (lo, hi), order), x)


def resonator(x, f, q, gain=1.0):
    """Constant-peak-gain band-pass biquad (RBJ), peak ``gain`` at ``f``."""
    f = min(f, NYQUIST * 0.9)
    w0 = TAU * f / SR
    alpha = np.sin(w0) / (2 * q)
    b = np.array([alpha, 0.0, -alpha]) * gain
    a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
    return signal.lfilter(b / a[0], a / a[0], x)


def peaking(x, f, q, gain_db):
    f = min(f, NYQUIST * 0.9)
    A = 10 ** (gain_db / 40)
    w0 = TAU * f / SR
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * A, -2 * np.cos(w0), 1 - alpha * A])
    a = np.array([1 + alpha / A, -2 * np.cos(w0), 1 - alpha / A])
    return signal.lfilter(b / a[0], a / a[0], x)


def body_filter(x, modes, direct=1.0):
    """A body as the direct sound plus a bank of parallel resonances (f, q, gain)."""
    y = direct * x
    for f, q, g in modes:
        y = y + resonator(x, f, q, g)
    return y


def smooth_noise(rng, n, cutoff, order=1):
    """Low-frequency random wander, roughly unit RMS."""
    w = lowpass(rng.standard_normal(n + 2000), cutoff, order)[2000:]
    return w / (np.std(w) + 1e-12)


def warp(x: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Read ``x`` at a time-varying speed (pitch bend / slide / vibrato of a rendered note)."""
    pos = np.concatenate([[0.0], np.cumsum(ratio[:-1])])
    return np.interp(pos, np.arange(len(x)), x, right=0.0)


def bend_curve(stem: Stem) -> np.ndarray | None:
    """Pitch-bend wheel as semitones per sample over the render (GM range +-2), or None.
    Each event holds until the next (as a MIDI wheel), smoothed over ~5 ms."""
    if not stem.phrase.bends:
        return None
    pts = sorted(stem.phrase.bends)
    times = np.array([t for t, _ in pts])
    vals = np.array([0.0] + [v / 8192.0 * 2.0 for _, v in pts])
    idx = np.searchsorted(times, np.arange(RENDER_SAMPLES) / SR, side="right")
    a = np.exp(-1.0 / (0.005 * SR))
    return signal.lfilter([1 - a], [1, -a], vals[idx])


def notes_in_render(stem: Stem) -> list[Note]:
    return sorted((n for n in stem.phrase.notes if n.start * SR < RENDER_SAMPLES and n.end > n.start),
                  key=lambda n: (n.start, n.pitch))


def allocate_voices(notes: list[Note], max_voices: int) -> list[list[Note]]:
    """Greedy voice allocation: a note takes a free voice, else steals the one whose note
    started earliest (that note is cut at the new note's start: legato)."""
    voices: list[list[Note]] = []
    for n in notes:
        free = [v for v in voices if v[-1].end <= n.start + 1e-4]
        if free:
            # keep a melodic line together: the free voice whose last pitch is nearest
            v = min(free, key=lambda v: abs(v[-1].pitch - n.pitch))
            v.append(n)
        elif len(voices) < max_voices:
            voices.append([n])
        else:
            v = min(voices, key=lambda v: v[-1].start)
            last = v[-1]
            if n.start - last.start < 0.03:  # a chord note beyond the voices: dropped
                continue
            v[-1] = Note(last.start, n.start, last.pitch, last.velocity)
            v.append(n)
    return voices


# ---------------------------------------------------------------------------- plucked strings


def ks_pluck(f0: float, n: int, rng: np.random.Generator, *, t60: float, bright: float,
             pick_pos: float, hardness: float, excitation: np.ndarray | None = None) -> np.ndarray:
    """One plucked-string note (Karplus-Strong) as a single IIR filter.

    Loop: delay z^-L, loss filter g((1-s) + s z^-1) (s=0.5 dark, small s bright) and a
    first-order all-pass for the fractional part of the period; the decay of the
    fundamental is ``t60`` seconds, higher partials decay faster. The excitation is a
    one-period noise burst, low-passed by the pick's ``hardness`` and combed by the pick
    position (fraction of the string from the bridge)."""
    P = SR / f0
    s = float(np.clip(0.5 - 0.45 * bright, 0.03, 0.5))
    L = int(np.floor(P - s - 0.5))
    L = max(L, 2)
    d = P - s - L
    c = (1 - d) / (1 + d)
    w0 = TAU * f0 / SR
    hmag = np.sqrt((1 - s) ** 2 + s ** 2 + 2 * s * (1 - s) * np.cos(w0))
    g = min(10 ** (-3 * P / (t60 * SR)) / hmag, 0.99995)
    b0, b1 = g * (1 - s), g * s
    den = np.zeros(L + 3)
    den[0], den[1] = 1.0, c
    den[L] += -b0 * c
    den[L + 1] += -(b0 + b1 * c)
    den[L + 2] += -b1
    if excitation is None:
        m = max(int(round(P)), 2)
        ex = rng.standard_normal(m) + 0.5 * np.sin(np.pi * np.arange(m) / m) * rng.choice([-1, 1])
        a = float(np.clip(1.0 - hardness, 0.0, 0.95))  # one-pole low-pass of the pick
        ex = signal.lfilter([1 - a], [1, -a], ex)
        ex -= ex.mean()
    else:
        ex = excitation
    x = np.zeros(n)
    x[:min(len(ex), n)] = ex[:n]
    k = int(round(pick_pos * P))
    if 1 <= k < n:
        x[k:] -= x[:-k].copy()
    return signal.lfilter([1.0, c], den, x)


def lowpass_q(x, f, q):
    """RBJ resonant low-pass (a pickup's RLC resonance)."""
    w0 = TAU * min(f, NYQUIST * 0.9) / SR
    alpha = np.sin(w0) / (2 * q)
    cw = np.cos(w0)
    b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return signal.lfilter(b / a[0], a / a[0], x)


def comb(y: np.ndarray, delay: float, amount: float = 1.0) -> np.ndarray:
    k = int(round(delay))
    if k < 1 or k >= len(y):
        return y
    out = y.copy()
    out[k:] -= amount * y[:-k]
    return out


def damp_after(y: np.ndarray, held: int, tau: float) -> np.ndarray:
    if held < len(y):
        y = y.copy()
        y[held:] *= np.exp(-np.arange(len(y) - held) / (tau * SR))
    return y


def pluck_stem(stem: Stem, rng: np.random.Generator, p: dict) -> np.ndarray:
    """All notes of a plucked stem. ``p``: t60 (s at C4, scaled with pitch), bright,
    pick (pick-position range), hardness, pickup (fraction or None), pickup2, release,
    mute_prob, slide (glide seconds between close notes, 0 = none), twang."""
    notes = notes_in_render(stem)
    out = np.zeros(RENDER_SAMPLES)
    bend = bend_curve(stem)
    palm = p.get("palm", False)
    for i, n in enumerate(notes):
        a = int(n.start * SR)
        held = max(int((n.end - n.start) * SR), 1)
        vel = n.velocity / 127.0
        f0 = hz(n.pitch)
        t60 = p["t60"] * (261.6 / f0) ** p.get("t60_slope", 0.5) * rng.uniform(0.85, 1.15)
        bright = np.clip(p["bright"] + 0.25 * (vel - 0.6) + rng.normal(0, 0.05), 0, 1)
        short = n.end - n.start < 0.4
        muted = (palm and (n.end - n.start < p.get("palm_max", 10.0))) or (short and rng.random() < p.get("mute_prob", 0.0))
        if muted:
            t60 = rng.uniform(0.08, 0.25)
            bright *= 0.5
        length = min(RENDER_SAMPLES - a, held + int(p["release"] * 6 * SR), int(min(t60 * 1.2, 5.0) * SR) + 64)
        if length <= 16:
            continue
        y = ks_pluck(f0, length, rng, t60=t60, bright=bright, pick_pos=rng.uniform(*p["pick"]),
                     hardness=np.clip(p["hardness"] + 0.3 * (vel - 0.6), 0.05, 1.0))
        P = SR / f0
        if p.get("pickup") is not None:
            pu = comb(y, p["pickup"] * P)
            if p.get("pickup2") is not None:
                pu = 0.5 * (pu + p.get("pickup2_sign", 1.0) * comb(y, p["pickup2"] * P))
            y = pu
        y = damp_after(y, held, p["release"])
        ratio = None
        if p.get("twang", 0) > 0:  # tension modulation: sharp at the attack, settling
            t = np.arange(length) / SR
            ratio = 2 ** (p["twang"] * vel * np.exp(-t / 0.06) / 12)
        if p.get("slide", 0) > 0 and i + 1 < len(notes):
            nxt = notes[i + 1]
            if 0 <= nxt.start - n.end < 0.05 and abs(nxt.pitch - n.pitch) <= 5 and rng.random() < 0.5:
                t = np.arange(length) / SR
                k = (nxt.start - n.start) - p["slide"]
                glide = np.clip((t - k) / p["slide"], 0, 1) * (nxt.pitch - n.pitch)
                ratio = (ratio if ratio is not None else 1.0) * 2 ** (glide / 12)
        if p.get("vibrato") and n.end - n.start > 0.45:  # finger vibrato on held notes
            t = np.arange(length) / SR
            depth = rng.uniform(10, 40) * np.clip((t - rng.uniform(0.15, 0.3)) / 0.2, 0, 1) * (t < n.end - n.start)
            vib = depth * np.sin(TAU * rng.uniform(4.5, 6.5) * t) / 100.0
            ratio = (ratio if ratio is not None else 1.0) * 2 ** (vib / 12)
        if bend is not None:
            seg = bend[a:a + length]
            if np.any(seg != 0):
                ratio = (ratio if ratio is not None else 1.0) * 2 ** (seg / 12)
        if ratio is not None:
            y = warp(y, np.broadcast_to(ratio, y.shape).astype(float))
        if p.get("click", 0) > 0:  # the pick leaving the string
            k = min(length, int(0.004 * SR))
            y = y.copy()
            y[:k] += p["click"] * vel * highpass(rng.standard_normal(k), 2000) * np.linspace(1, 0, k) * np.max(np.abs(y))
        out[a:a + length] += y * vel ** 1.2
    return out


def natural_harmonics(stem: Stem, rng, p: dict) -> np.ndarray:
    """GM 31: natural harmonics. The string (sounding f0/k) is touched at 1/k of its length,
    which damps every partial that has no node there: the output keeps only partials that
    are multiples of k (a k-tap comb over the string's period)."""
    out = np.zeros(RENDER_SAMPLES)
    for n in notes_in_render(stem):
        f0 = hz(n.pitch)
        ks = [k for k in (2, 3, 4) if f0 / k >= 82.0]
        if ks:
            k = ks[int(rng.integers(len(ks)))]
        else:  # below E3 no string has it: the 12th-fret harmonic of the note's own string
            k, f0 = 2, f0 * 2
        a = int(n.start * SR)
        held = max(int((n.end - n.start) * SR), 1)
        length = min(RENDER_SAMPLES - a, held + int(p["release"] * 6 * SR))
        if length <= 16:
            continue
        fs = f0 / k
        y = ks_pluck(fs, length, rng, t60=p["t60"] * rng.uniform(0.8, 1.2), bright=p["bright"],
                     pick_pos=rng.uniform(*p["pick"]), hardness=p["hardness"])
        period = SR / fs
        idx = np.arange(length, dtype=float)
        y = sum(np.interp(idx - j * period / k, idx, y, left=0.0) for j in range(k)) / k
        if p.get("pickup") is not None:
            y = comb(y, p["pickup"] * period)
        out[a:a + length] += damp_after(y, held, p["release"]) * (n.velocity / 127) ** 1.2
    return out


def _pedalboard(x: np.ndarray, plugins: list) -> np.ndarray:
    import pedalboard

    board = pedalboard.Pedalboard(plugins)
    return board(x.astype(np.float32)[None, :], float(SR))[0].astype(np.float64)


def amp_chain(rng: np.random.Generator, x: np.ndarray, kind: str, fuzz: bool) -> np.ndarray:
    """Guitar amplifier: pre-EQ, drive, cabinet (HP + LP + peaks), optional modulation."""
    import pedalboard as pb

    x = x / (np.max(np.abs(x)) + 1e-9)
    plugins: list = []
    if kind != "clean" and rng.random() < 0.4:
        plugins.append(pb.NoiseGate(threshold_db=float(rng.uniform(-60, -45)), ratio=4.0,
                                    release_ms=float(rng.uniform(50, 150))))
    if rng.random() < 0.3:  # compressor pedal
        thr, ratio = float(rng.uniform(-30, -15)), float(rng.uniform(3, 8))
        plugins += [pb.Compressor(threshold_db=thr, ratio=ratio, attack_ms=float(rng.uniform(2, 20)),
                                  release_ms=float(rng.uniform(80, 250))),
                    pb.Gain(-thr * (1 - 1 / ratio) * 0.8)]  # make-up gain
    plugins += [pb.HighpassFilter(float(rng.uniform(60, 150))),
                pb.PeakFilter(float(rng.uniform(500, 1200)), float(rng.uniform(-3, 9)), float(rng.uniform(0.5, 1.5)))]
    if kind == "clean":
        if rng.random() < 0.5:
            plugins.append(pb.Distortion(drive_db=float(rng.uniform(0, 6))))  # tube warmth
    elif kind == "crunch":
        plugins += ([pb.Gain(float(rng.uniform(6, 15))), pb.Clipping(threshold_db=float(rng.uniform(-10, -4)))]
                    if fuzz else [pb.Distortion(drive_db=float(rng.uniform(14, 26)))])
    else:  # high gain: boosted, two stages
        if fuzz:
            plugins += [pb.Gain(float(rng.uniform(15, 30))), pb.Clipping(threshold_db=float(rng.uniform(-6, -2)))]
        else:
            plugins += [pb.Distortion(drive_db=float(rng.uniform(22, 34))),
                        pb.PeakFilter(float(rng.uniform(600, 1000)), float(rng.uniform(-8, -2)), 0.8),
                        pb.Distortion(drive_db=float(rng.uniform(6, 15)))]
    # tone stack (bass / treble), then the cabinet: a 1x12 / 4x12 approximated by band
    # limits and a couple of resonances
    plugins += [pb.LowShelfFilter(float(rng.uniform(150, 300)), float(rng.uniform(-6, 6)), 0.7),
                pb.HighShelfFilter(float(rng.uniform(1500, 3000)), float(rng.uniform(-6, 6)), 0.7)]
    plugins += [pb.HighpassFilter(float(rng.uniform(80, 120))),
                pb.LowpassFilter(float(rng.uniform(3000, 6000))),
                pb.PeakFilter(float(rng.uniform(90, 140)), float(rng.uniform(0, 5)), 1.2),
                pb.PeakFilter(float(rng.uniform(1800, 3500)), float(rng.uniform(-6, 6)), float(rng.uniform(1, 3)))]
    if kind != "clean":
        plugins.append(pb.LowpassFilter(float(rng.uniform(4000, 7000))))
    if rng.random() < 0.12:  # wah pedal before the amp: rocked by the foot or by the envelope
        x = wah(x, rng)
    r = rng.random()
    if r < 0.2:
        plugins.append(pb.Chorus(rate_hz=float(rng.uniform(0.3, 2.0)), depth=float(rng.uniform(0.1, 0.4)),
                                 mix=float(rng.uniform(0.3, 0.5))))
    elif r < 0.3:
        plugins.append(pb.Phaser(rate_hz=float(rng.uniform(0.2, 1.5)), mix=float(rng.uniform(0.3, 0.6))))
    if rng.random() < 0.25:
        plugins.append(pb.Delay(delay_seconds=float(rng.uniform(0.18, 0.45)), feedback=float(rng.uniform(0.1, 0.4)),
                                mix=float(rng.uniform(0.1, 0.3))))
    return _pedalboard(x, plugins)


def wah(x: np.ndarray, rng, block: int = 64) -> np.ndarray:
    """Wah: a resonant band-pass (RBJ, Q 2-6) swept 400-2200 Hz by a rocking foot (slow
    periodic sweep) or by the playing envelope (auto-wah); coefficients per 64 samples."""
    nb = len(x) // block + 1
    tb = np.arange(nb) * block / SR
    if rng.random() < 0.5:
        pos = 0.5 + 0.5 * np.sin(TAU * rng.uniform(0.5, 3.0) * tb + rng.random() * TAU)
    else:
        e = np.abs(x)
        e = signal.lfilter([0.01], [1, -0.99], e)[::block][:nb]
        pos = np.clip(e / (e.max() + 1e-9) * rng.uniform(1.0, 2.0), 0, 1)
        pos = np.pad(pos, (0, nb - len(pos)))
    fc = 400 * (2200 / 400) ** pos
    q = rng.uniform(2, 6)
    y = np.zeros_like(x)
    zi = np.zeros(2)
    for i, f in enumerate(fc):
        seg = slice(i * block, (i + 1) * block)
        if seg.start >= len(x):
            break
        w0 = TAU * f / SR
        alpha = np.sin(w0) / (2 * q)
        b = np.array([alpha, 0.0, -alpha]) * q ** 0.5
        a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
        y[seg], zi = signal.lfilter(b / a[0], a / a[0], x[seg], zi=zi)
    return 0.8 * y + 0.2 * x


def electric_guitar(stem: Stem, rng, variant: str) -> np.ndarray:
    # (pickup position as a fraction of the string from the bridge, second coil/pickup,
    #  base brightness, pickup resonance Hz (coil inductance + cable capacitance), its Q)
    coil = rng.uniform(0.025, 0.032)  # humbucker coil spacing, ~18 mm on a 648 mm scale
    pickups = {
        "single_bridge": (rng.uniform(0.07, 0.11), None, 0.6, rng.uniform(3500, 6000), rng.uniform(1.5, 3.5)),
        "humbucker_bridge": ((b := rng.uniform(0.08, 0.12)), b + coil, 0.4, rng.uniform(1800, 3200), rng.uniform(1.0, 2.0)),
        "humbucker_neck": ((b := rng.uniform(0.22, 0.28)), b + coil, 0.25, rng.uniform(1800, 3000), rng.uniform(1.0, 2.0)),
        "single_neck_middle": (rng.uniform(0.15, 0.19), rng.uniform(0.24, 0.3), 0.5, rng.uniform(3500, 6000),
                               rng.uniform(1.5, 3.0)),
        "p90_fuzz": (rng.uniform(0.12, 0.16), None, 0.45, rng.uniform(2500, 4000), rng.uniform(1.5, 2.5)),
    }[variant]
    kind = {26: "clean", 27: "clean", 28: str(rng.choice(["clean", "crunch"])), 29: "crunch", 30: "high",
            31: str(rng.choice(["clean", "crunch"], p=[0.7, 0.3]))}[stem.program]
    if variant == "humbucker_neck" and stem.program == 26:
        kind = "clean"
    p = dict(t60=rng.uniform(2.0, 5.0), t60_slope=0.6, bright=pickups[2] + rng.uniform(0.0, 0.3),
             pick=(0.06, 0.2), hardness=rng.uniform(0.5, 0.95), pickup=pickups[0], pickup2=pickups[1],
             pickup2_sign=1.0, release=rng.uniform(0.02, 0.08),
             palm=stem.program == 28 or (kind == "high" and rng.random() < 0.5),
             palm_max=10.0 if stem.program == 28 else 0.3,
             mute_prob=0.1 if kind != "clean" else 0.03, slide=rng.uniform(0.03, 0.08), twang=0.0,
             click=rng.uniform(0.0, 0.3), vibrato=rng.random() < (0.5 if kind != "clean" else 0.25))
    if stem.program == 26:  # jazz guitar: flatwounds, neck, soft
        p.update(bright=rng.uniform(0.0, 0.2), hardness=rng.uniform(0.2, 0.5), t60=rng.uniform(1.0, 2.5), click=0.0)
    dry = natural_harmonics(stem, rng, p) if stem.program == 31 else pluck_stem(stem, rng, p)
    dry = lowpass_q(dry, pickups[3] * (0.7 if stem.program == 26 else 1.0), pickups[4])
    return amp_chain(rng, dry, kind, fuzz=variant == "p90_fuzz")


def acoustic_guitar(stem: Stem, rng, variant: str) -> np.ndarray:
    nylon = stem.program == 24
    air, top = {"dreadnought": (rng.uniform(95, 110), rng.uniform(180, 215)),
                "classical": (rng.uniform(100, 118), rng.uniform(190, 230)),
                "parlour": (rng.uniform(125, 150), rng.uniform(235, 280)),
                "jumbo": (rng.uniform(82, 95), rng.uniform(160, 185))}[variant]
    p = dict(t60=rng.uniform(1.2, 2.5) if nylon else rng.uniform(2.0, 4.5), t60_slope=0.7,
             bright=rng.uniform(0.05, 0.3) if nylon else rng.uniform(0.35, 0.75),
             pick=(0.08, 0.25) if nylon else (0.05, 0.18), hardness=rng.uniform(0.2, 0.5) if nylon else rng.uniform(0.55, 0.95),
             pickup=None, release=rng.uniform(0.05, 0.15), mute_prob=0.02, slide=rng.uniform(0.04, 0.09),
             click=0.0 if nylon else rng.uniform(0.0, 0.25), vibrato=nylon and rng.random() < 0.3)
    dry = pluck_stem(stem, rng, p)
    modes = [(air, rng.uniform(8, 16), rng.uniform(1.5, 3.0)), (top, rng.uniform(10, 20), rng.uniform(1.5, 3.0))]
    for f in np.exp(rng.uniform(np.log(300), np.log(3500), int(rng.integers(4, 9)))):
        modes.append((f, rng.uniform(8, 30), rng.uniform(0.3, 1.2)))
    y = body_filter(dry, modes, direct=rng.uniform(0.4, 0.8))
    if not nylon:
        y = peaking(y, rng.uniform(2500, 5000), 1.0, rng.uniform(0, 4))
    return y


def banjo(stem: Stem, rng, variant: str) -> np.ndarray:
    open_back = variant == "open_back"
    p = dict(t60=rng.uniform(0.6, 1.4) if open_back else rng.uniform(0.4, 0.9), t60_slope=0.4,
             bright=rng.uniform(0.6, 0.85) if not open_back else rng.uniform(0.4, 0.65),
             pick=(0.04, 0.12), hardness=rng.uniform(0.7, 1.0) if not open_back else rng.uniform(0.45, 0.75),
             pickup=None, release=rng.uniform(0.03, 0.08), mute_prob=0.0, slide=rng.uniform(0.03, 0.06),
             twang=rng.uniform(0.15, 0.4), click=rng.uniform(0.05, 0.3))
    dry = pluck_stem(stem, rng, p)
    head = rng.uniform(1000, 1800) if open_back else rng.uniform(1800, 3500)  # membrane
    modes = [(head, rng.uniform(2, 5), rng.uniform(3, 6)), (head * rng.uniform(1.5, 2.2), rng.uniform(3, 8), rng.uniform(1, 3)),
             (rng.uniform(300, 600), rng.uniform(3, 8), rng.uniform(0.5, 1.5))]
    y = body_filter(highpass(dry, rng.uniform(150, 300)), modes, direct=rng.uniform(0.2, 0.5))
    return y


def bass(stem: Stem, rng, variant: str) -> np.ndarray:
    """Electric (33 finger, 34 pick, 35 fretless, 36/37 slap) or upright (32) bass."""
    prog = stem.program
    upright = variant.startswith("upright")
    pickup = {"precision": rng.uniform(0.18, 0.26), "jazz_bridge": rng.uniform(0.06, 0.1)}.get(variant)
    picked = prog == 34
    slap = prog in (36, 37)
    p = dict(t60=rng.uniform(1.5, 4.0) if not upright else rng.uniform(0.8, 1.8), t60_slope=0.4,
             bright=(rng.uniform(0.3, 0.6) if picked else rng.uniform(0.05, 0.35)) if not upright else rng.uniform(0.0, 0.15),
             pick=(0.08, 0.25) if not picked else (0.04, 0.1),
             hardness=rng.uniform(0.6, 0.95) if picked else rng.uniform(0.2, 0.5),
             pickup=pickup, release=rng.uniform(0.02, 0.08), mute_prob=0.05,
             slide=rng.uniform(0.05, 0.12) if (prog == 35 or upright) else 0.0,
             click=rng.uniform(0.05, 0.3) if picked else 0.0, vibrato=prog == 35 and rng.random() < 0.5)
    if slap:  # thumb slap at the end of the fingerboard: the string hits the frets
        p.update(bright=rng.uniform(0.6, 0.85), hardness=1.0, pick=(0.18, 0.26), click=rng.uniform(0.3, 0.7),
                 twang=rng.uniform(0.1, 0.3), t60=rng.uniform(0.8, 2.0), mute_prob=0.3)
    if variant == "upright_gut":
        p.update(t60=rng.uniform(0.5, 1.0), bright=0.0, hardness=rng.uniform(0.1, 0.3))
    y = pluck_stem(stem, rng, p)
    if upright:
        body = (rng.uniform(60, 90), rng.uniform(100, 150)) if variant == "upright" else (rng.uniform(90, 110), rng.uniform(160, 200))
        modes = [(body[0], 8, 2.0), (body[1], 10, 1.5)] + [(f, rng.uniform(6, 15), rng.uniform(0.3, 1.0))
                                                          for f in rng.uniform(250, 1500, 4)]
        y = lowpass(body_filter(y, modes, direct=0.6), rng.uniform(2000, 4000))
    elif slap:  # scooped mids, bright top, compressed
        y = peaking(lowpass(y, rng.uniform(5000, 8000)), rng.uniform(400, 800), 0.8, rng.uniform(-9, -3))
        y = y / (np.max(np.abs(y)) + 1e-9)
        g = rng.uniform(1.5, 3.0)
        y = np.tanh(g * y) / np.tanh(g)
    else:
        y = lowpass(y, rng.uniform(1500, 4500) if not picked else rng.uniform(2500, 6000))
        if rng.random() < 0.3:  # light drive
            g = rng.uniform(1.2, 2.5)
            y = y / (np.max(np.abs(y)) + 1e-9)
            y = lowpass(np.tanh(g * y) / np.tanh(g), rng.uniform(2500, 5000))
    return y


def _pizzicato(stem: Stem, rng, cello: bool) -> np.ndarray:
    p = dict(t60=rng.uniform(0.3, 0.8) if not cello else rng.uniform(0.6, 1.4), t60_slope=0.5,
             bright=rng.uniform(0.0, 0.25), pick=(0.15, 0.35), hardness=rng.uniform(0.1, 0.35),
             pickup=None, release=rng.uniform(0.1, 0.3), mute_prob=0.0, slide=0.0)
    return pluck_stem(stem, rng, p)


# ---------------------------------------------------------------------------- sustained voices


def _onset_index(starts: np.ndarray) -> np.ndarray:
    """For every sample, the index of the latest note start at or before it (-1 before)."""
    return np.searchsorted(starts, np.arange(RENDER_SAMPLES), side="right") - 1


def voice_tracks(notes: list[Note], rng: np.random.Generator, *, glide: tuple[float, float],
                 glide_prob: float, vib_rate: tuple[float, float], vib_cents: tuple[float, float],
                 vib_delay: tuple[float, float], attack: tuple[float, float], release: tuple[float, float],
                 scoop_cents: float = 0.0, scoop_time: float = 0.03, swell: float = 0.3,
                 bend: np.ndarray | None = None, jitter_cents: float = 3.0, legato_gap: float = 0.04):
    """Continuous pitch (MIDI, float) and amplitude envelope of one monophonic voice.

    Legato neighbours (gap < ``legato_gap``) glide with probability ``glide_prob`` over
    ``glide`` seconds (portamento / trombone slide), else change in 10 ms; detached
    attacks start ``scoop_cents`` flat; vibrato fades in after a per-note delay with a
    rate and depth drawn per note around the stem's; dynamics move inside every note
    (``swell``: random crescendo / diminuendo)."""
    t = np.arange(RENDER_SAMPLES) / SR
    starts = np.array([int(n.start * SR) for n in notes])
    knots_t, knots_p = [0.0], [float(notes[0].pitch)]
    legato = [False]
    for prev, n in zip(notes, notes[1:]):
        lg = n.start - prev.end < legato_gap
        legato.append(lg)
        dur = rng.uniform(*glide) if (lg and rng.random() < glide_prob) else 0.01
        knots_t += [n.start, n.start + dur]
        knots_p += [float(prev.pitch), float(n.pitch)]
    pitch = np.interp(t, knots_t, knots_p)
    k = _onset_index(starts)
    kk = np.maximum(k, 0)
    since = t - starts[kk] / SR
    rate0, depth0 = rng.uniform(*vib_rate), rng.uniform(*vib_cents)
    rates = rate0 * rng.uniform(0.92, 1.08, len(notes))
    depths = depth0 * rng.uniform(0.6, 1.3, len(notes))
    delays = rng.uniform(*vib_delay, len(notes))
    ramp = np.clip((since - delays[kk]) / 0.35, 0, 1) * (k >= 0)
    vib_phase = np.cumsum(TAU * rates[kk] / SR)
    pitch = pitch + depths[kk] * ramp * np.sin(vib_phase) / 100.0
    if scoop_cents:
        detached = np.array([not lg for lg in legato])
        amt = scoop_cents * rng.uniform(0.5, 1.5, len(notes)) * detached
        pitch = pitch - amt[kk] * np.exp(-since / scoop_time) * (k >= 0) / 100.0
    if jitter_cents:
        pitch = pitch + jitter_cents / 100.0 * smooth_noise(rng, RENDER_SAMPLES, 12.0)
    if bend is not None:
        pitch = pitch + bend
    env = np.zeros(RENDER_SAMPLES)
    for i, n in enumerate(notes):
        a = starts[i]
        end = int(n.end * SR)
        rel = rng.uniform(*release)
        b = min(RENDER_SAMPLES, end + int(rel * 5 * SR))
        if b <= a:
            continue
        tt = np.arange(b - a) / SR
        dur = max(n.end - n.start, 1e-3)
        att = rng.uniform(*attack) * (0.4 if legato[i] else 1.0)
        level = (n.velocity / 127.0) * (1 + rng.uniform(-swell, swell) * np.clip(tt / dur, 0, 1))
        e = np.clip(tt / att, 0, 1) * level
        held = tt < dur
        e[~held] = e[held][-1] * np.exp(-(tt[~held] - dur) / rel) if held.any() else 0.0
        env[a:b] = np.maximum(env[a:b], e)
    phrase_db = rng.uniform(0, 2.5) * smooth_noise(rng, RENDER_SAMPLES, 0.3, 2)  # dynamics across the phrase
    env = env * 10 ** (phrase_db / 20)
    return pitch, np.clip(env, 0, 1.5), k, since


def phase_of(pitch: np.ndarray, rng) -> np.ndarray:
    f = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    return np.cumsum(f / SR) + rng.random(), f


def harmonics(phase: np.ndarray, f: np.ndarray, amp_fn, nmax: int = 60, fmax: float = 9000.0,
              active: np.ndarray | None = None) -> np.ndarray:
    """Additive synthesis: sum of n = 1..nmax harmonics of ``phase`` (cycles), harmonic n
    weighted by ``amp_fn(n)`` (scalar or per-sample) and faded out near ``fmax``. float32
    sines on the wrapped phase (fast and exact enough)."""
    out = np.zeros(len(phase))
    idx = np.flatnonzero(active) if active is not None else None
    if idx is not None and idx.size == 0:
        return out
    ph = phase if idx is None else phase[idx]
    ff = f if idx is None else f[idx]
    acc = np.zeros(len(ph))
    fmax = min(fmax, NYQUIST * 0.92)
    fhi, flo = float(ff.max()), float(ff.min())
    frac = (ph - np.floor(ph)).astype(np.float32)
    for n in range(1, nmax + 1):
        if n * flo >= fmax:
            break
        a = amp_fn(n)
        if np.isscalar(a):
            if a == 0:
                continue
        elif idx is not None:
            a = a[idx]
        fade = 1.0 if n * fhi <= 0.95 * fmax else np.clip((fmax - n * ff) / (0.05 * fmax), 0, 1)
        x = np.float32(n) * frac  # float32 is exact enough for n * (phase in [0, 1))
        x -= np.floor(x)
        acc += (a * fade) * np.sin(np.float32(TAU) * x)
    if idx is None:
        return acc
    out[idx] = acc
    return out


def breath(rng, n, lo, hi):
    return bandpass(rng.standard_normal(n), lo, hi)


# ---------------------------------------------------------------------------- bowed strings

# body families: (A0, B1-, B1+, bridge hill centre, bridge hill gain, extra nasal peak)
BOWED_BODIES = {
    "strad_like": dict(a0=(268, 285), b1m=(450, 475), b1p=(530, 560), hill=(2200, 2700), hill_g=(2.0, 3.5), nasal=None),
    "german_dark": dict(a0=(255, 272), b1m=(425, 450), b1p=(500, 530), hill=(1800, 2200), hill_g=(1.2, 2.2), nasal=None),
    "bright_student": dict(a0=(285, 300), b1m=(475, 500), b1p=(565, 610), hill=(2800, 3300), hill_g=(3.0, 4.5),
                           nasal=(1100, 1400)),
}
BOWED_SCALE = {40: 1.0, 41: 0.8, 42: 1 / 2.83}  # violin, viola (a fifth down), cello


def bowed_body(rng, variant: str, scale: float) -> list[tuple[float, float, float]]:
    b = BOWED_BODIES[variant]
    sc = scale * rng.uniform(0.96, 1.04)
    modes = [(rng.uniform(*b["a0"]) * sc, rng.uniform(10, 20), rng.uniform(1.5, 3.0)),
             (rng.uniform(380, 420) * sc, rng.uniform(10, 20), rng.uniform(0.5, 1.2)),  # CBR
             (rng.uniform(*b["b1m"]) * sc, rng.uniform(12, 25), rng.uniform(2.0, 4.0)),
             (rng.uniform(*b["b1p"]) * sc, rng.uniform(12, 25), rng.uniform(2.0, 4.0)),
             (rng.uniform(*b["hill"]) * sc, rng.uniform(1.0, 2.0), rng.uniform(*b["hill_g"]))]
    if b["nasal"]:
        modes.append((rng.uniform(*b["nasal"]) * sc, rng.uniform(3, 6), rng.uniform(1.5, 3.0)))
    for f in np.exp(rng.uniform(np.log(650 * sc), np.log(6000 * sc), int(rng.integers(8, 16)))):
        modes.append((f, rng.uniform(10, 40), rng.uniform(0.3, 1.5)))
    return modes


def bowed(stem: Stem, rng, variant: str) -> np.ndarray:
    cello = stem.label == "cello"
    scale = BOWED_SCALE.get(stem.program, 1.0)
    modes = bowed_body(rng, variant, scale)
    notes = notes_in_render(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    short = np.median([n.end - n.start for n in notes]) < 0.3
    if rng.random() < (0.35 if short else 0.08):  # pizzicato
        dry = _pizzicato(stem, rng, cello)
        return lowpass(body_filter(dry, modes, direct=rng.uniform(0.1, 0.3)), 8000 * scale ** 0.3)
    out = np.zeros(RENDER_SAMPLES)
    bend = bend_curve(stem)
    bow_noise = rng.uniform(0.01, 0.05)
    long_notes = np.median([n.end - n.start for n in notes]) > 0.6
    tremolo = rng.uniform(6.0, 9.0) if long_notes and rng.random() < 0.12 else 0.0  # strokes per second / 2
    for voice in allocate_voices(notes, 2):  # double stops at most
        pitch, env, k, since = voice_tracks(
            voice, rng, glide=(0.05, 0.14), glide_prob=rng.uniform(0.1, 0.6), vib_rate=(4.5, 7.0),
            vib_cents=(8.0, 30.0) if rng.random() < 0.85 else (0.0, 4.0), vib_delay=(0.08, 0.35),
            attack=(0.03, 0.15), release=(0.04, 0.15), swell=rng.uniform(0.1, 0.5), bend=bend,
            jitter_cents=rng.uniform(1.0, 5.0))
        ph, f = phase_of(pitch, rng)
        saw = -_saw_blep(ph, np.minimum(f / SR, 0.5))
        kk = np.maximum(k, 0)
        nv = len(voice)
        # per-note Helmholtz corner rounding (bow pressure/speed) and slope, brighter when louder
        soft = np.clip(rng.uniform(0.0, 0.45, nv)[kk] - 0.3 * env, 0, 1)
        y = saw * (1 - soft) + lowpass(saw, rng.uniform(1500, 3500) * scale ** 0.3, 1) * soft * 1.6
        beta = rng.uniform(0.06, 0.18, nv)[kk]  # bow position: comb notches at multiples of 1/beta
        n_idx = np.arange(RENDER_SAMPLES)
        delayed = np.interp(n_idx - beta * SR / f, n_idx, y)
        y = y - 0.6 * delayed
        y *= 1 + 0.03 * smooth_noise(rng, RENDER_SAMPLES, 25.0)  # bow irregularity
        if tremolo:  # bowed tremolo: fast alternating strokes on long notes
            strokes = np.sin(np.cumsum(TAU * (tremolo + 1.5 * smooth_noise(rng, RENDER_SAMPLES, 3.0)) / SR))
            env = env * (1 - 0.7 * (since > 0.05) * np.abs(strokes) ** 0.5 * (env > 1e-4)) 
        scratch = np.exp(-since / rng.uniform(0.02, 0.06)) * (k >= 0) * rng.uniform(0.5, 2.0)
        noise = breath(rng, RENDER_SAMPLES, 1500 * scale ** 0.5, 7000 * scale ** 0.3)
        out += env * y + noise * env * (bow_noise + 0.3 * scratch * bow_noise * 4)
    y = body_filter(out, modes, direct=rng.uniform(0.1, 0.3))
    return lowpass(y, rng.uniform(6500, 9000) * scale ** 0.3)


def _saw_blep(phase: np.ndarray, dt: np.ndarray) -> np.ndarray:
    return saw(phase, dt)


# ---------------------------------------------------------------------------- winds and brass


def _mono(stem: Stem) -> list[Note]:
    notes = notes_in_render(stem)
    return allocate_voices(notes, 1)[0] if notes else []


def clarinet(stem: Stem, rng, variant: str) -> np.ndarray:
    notes = _mono(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    dark = variant == "dark_a"
    pitch, env, k, since = voice_tracks(
        notes, rng, glide=(0.03, 0.08), glide_prob=0.2, vib_rate=(4.5, 6.0),
        vib_cents=(0.0, 3.0) if rng.random() < 0.8 else (5.0, 15.0), vib_delay=(0.2, 0.5),
        attack=(0.02, 0.06), release=(0.03, 0.08), swell=rng.uniform(0.1, 0.4), bend=bend_curve(stem),
        jitter_cents=1.5)
    ph, f = phase_of(pitch, rng)
    cutoff = rng.uniform(1200, 1700) if not dark else rng.uniform(900, 1300)  # tone-hole lattice
    chalumeau = f < rng.uniform(380, 420)
    even_low = rng.uniform(0.03, 0.12)
    even_high = rng.uniform(0.3, 0.6)
    gamma = rng.uniform(0.1, 0.3)
    e = np.clip(env, 1e-4, 1.0)

    def amp(n):
        below = np.clip(1.0 - n * f / cutoff, 0, 1)  # odd/even contrast only below cutoff
        if n % 2:
            base = 1.0 / n
        else:
            base = np.where(chalumeau, even_low, even_high) / n
            base = base + (1.0 / n - base) * (1 - below)
        roll = 1.0 / (1.0 + (n * f / (cutoff * 2.2)) ** 2)
        return base * roll * e ** (gamma * (n - 1))

    y = env * harmonics(ph, f, amp, nmax=40, fmax=8000, active=env > 1e-4)
    y += env * breath(rng, RENDER_SAMPLES, 1000, 5000) * rng.uniform(0.005, 0.03)
    return body_filter(y, [(rng.uniform(2500, 3500), 3, rng.uniform(0.3, 1.0))], 1.0)


def saxophone(stem: Stem, rng, variant: str) -> np.ndarray:
    notes = _mono(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    size = {64: 1.35, 65: 1.0, 66: 0.78, 67: 0.55}[stem.program]
    subtone = variant == "subtone_jazz"
    rock = variant == "rock"
    pitch, env, k, since = voice_tracks(
        notes, rng, glide=(0.03, 0.1), glide_prob=0.35, vib_rate=(4.5, 6.5), vib_cents=(5.0, 30.0),
        vib_delay=(0.1, 0.4), attack=(0.015, 0.05), release=(0.03, 0.1), scoop_cents=rng.uniform(0, 60),
        scoop_time=rng.uniform(0.03, 0.08), swell=rng.uniform(0.2, 0.5), bend=bend_curve(stem), jitter_cents=3.0)
    ph, f = phase_of(pitch, rng)
    alpha = rng.uniform(0.5, 0.9) if not subtone else rng.uniform(1.2, 1.8)
    gamma = rng.uniform(0.15, 0.35) if not rock else rng.uniform(0.05, 0.15)
    e = np.clip(env, 1e-4, 1.0)
    y = env * harmonics(ph, f, lambda n: n ** -alpha * e ** (gamma * (n - 1)), nmax=50, fmax=9000,
                        active=env > 1e-4)
    if rock or rng.random() < 0.2:  # growl: throat modulation and a little edge
        g = 1 + rng.uniform(0.2, 0.5) * np.sin(TAU * rng.uniform(25, 45) * np.arange(RENDER_SAMPLES) / SR)
        y = np.tanh(rng.uniform(1.0, 3.0) * y * g / (np.max(np.abs(y)) + 1e-9))
    air = rng.uniform(0.005, 0.03) if not subtone else rng.uniform(0.05, 0.12)
    y += env * breath(rng, RENDER_SAMPLES, 800 * size, 6000) * air * (np.max(np.abs(y)) + 1e-9)
    formants = [(rng.uniform(450, 650) * size, rng.uniform(2, 4), rng.uniform(1, 2.5)),
                (rng.uniform(1300, 2000) * size ** 0.5, rng.uniform(2, 5), rng.uniform(0.5, 2.0)),
                (rng.uniform(2600, 3600), rng.uniform(2, 4), rng.uniform(0.2, 1.2) if not subtone else 0.1)]
    return lowpass(body_filter(y, formants, 0.6), 7000 if not subtone else 4000)


def flute(stem: Stem, rng, variant: str) -> np.ndarray:
    notes = _mono(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    wooden = variant == "wooden"
    pitch, env, k, since = voice_tracks(
        notes, rng, glide=(0.02, 0.06), glide_prob=0.15, vib_rate=(4.5, 6.0),
        vib_cents=(5.0, 20.0) if not wooden else (0.0, 8.0), vib_delay=(0.1, 0.3), attack=(0.03, 0.08),
        release=(0.03, 0.08), swell=rng.uniform(0.1, 0.4), bend=bend_curve(stem), jitter_cents=2.0)
    ph, f = phase_of(pitch, rng)
    r = rng.uniform(0.2, 0.45) if not wooden else rng.uniform(0.08, 0.2)
    low = np.clip((1000 - f) / 600, 0, 1)  # the low register has more harmonics
    e = np.clip(env, 1e-4, 1.0)
    kk = np.maximum(k, 0)
    trem = 1 + rng.uniform(0.03, 0.12) * np.sin(np.cumsum(TAU * rng.uniform(4.5, 5.5) / SR * np.ones(RENDER_SAMPLES)))
    y = env * trem * harmonics(ph, f, lambda n: 1.0 if n == 1 else (r * (0.5 + low)) ** (n - 1) * e ** (0.2 * n),
                               nmax=12, fmax=9000, active=env > 1e-4)
    chiff = np.exp(-since / rng.uniform(0.01, 0.03)) * (k >= 0)
    air = rng.uniform(0.02, 0.06) if not wooden else rng.uniform(0.06, 0.15)
    noise = breath(rng, RENDER_SAMPLES, 1500, 9000)
    tonal_noise = resonator(rng.standard_normal(RENDER_SAMPLES), float(np.median(f[env > 1e-3])) if (env > 1e-3).any() else 500.0, 8.0)
    y += env * (noise * air + tonal_noise * air * 0.5) + chiff * noise * rng.uniform(0.1, 0.4) * (env > 1e-3)
    del kk
    return y


def brass(stem: Stem, rng, variant: str) -> np.ndarray:
    notes = _mono(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    trombone = stem.label == "trombone"
    params = {
        "open_bright": dict(formant=(1100, 1500), roll=(3500, 5000), gamma=(0.35, 0.6)),
        "harmon": dict(formant=(1200, 1600), roll=(3500, 5000), gamma=(0.3, 0.5)),
        "cornet": dict(formant=(800, 1100), roll=(2200, 3200), gamma=(0.5, 0.8)),
        "cup_mute": dict(formant=(900, 1300), roll=(2500, 3500), gamma=(0.4, 0.7)),
        "tenor": dict(formant=(480, 650), roll=(1800, 2800), gamma=(0.35, 0.6)),
        "bass_trombone": dict(formant=(330, 450), roll=(1300, 2000), gamma=(0.5, 0.8)),
    }[variant]
    pitch, env, k, since = voice_tracks(
        notes, rng, glide=(0.06, 0.16) if trombone else (0.02, 0.05), glide_prob=0.5 if trombone else 0.1,
        vib_rate=(4.5, 6.0), vib_cents=(0.0, 12.0), vib_delay=(0.2, 0.5), attack=(0.02, 0.05),
        release=(0.03, 0.1), scoop_cents=rng.uniform(30, 90), scoop_time=rng.uniform(0.015, 0.035),
        swell=rng.uniform(0.15, 0.45), bend=bend_curve(stem), jitter_cents=2.0)
    ph, f = phase_of(pitch, rng)
    fc = rng.uniform(*params["formant"])
    roll = rng.uniform(*params["roll"])
    gamma = rng.uniform(*params["gamma"])
    e = np.clip(env, 1e-4, 1.0)

    def amp(n):  # bell: weak low harmonics below the formant; brightness grows with level
        fn = n * f
        shape = (fn / fc) / (1 + fn / fc) / (1 + (fn / roll) ** 2)
        return shape * e ** (gamma * (n - 1))

    y = env * harmonics(ph, f, amp, nmax=60, fmax=9000, active=env > 1e-4)
    lip = np.exp(-since / 0.015) * (k >= 0) * (env > 1e-3)
    y += lip * breath(rng, RENDER_SAMPLES, 500, 4000) * rng.uniform(0.02, 0.08) * (np.max(np.abs(y)) + 1e-9)
    if variant == "harmon":
        y = resonator(highpass(y, 700, 2), rng.uniform(1500, 2300), rng.uniform(3, 6), 3.0) + 0.2 * y
    elif variant == "cup_mute":  # a cup mute: nasal band, weaker lows and highs
        y = resonator(highpass(y, 400, 2), rng.uniform(700, 1100), rng.uniform(1.0, 1.8), 2.0) + 0.25 * y
    return y


# ---------------------------------------------------------------------------- piano

PIANO_KINDS = {  # inharmonicity B at C4, strings detune (cents), hammer hardness, T60 at C4 (s)
    "grand": dict(B=(2.5e-4, 5e-4), detune=(0.3, 1.5), hard=(0.5, 1.0), t60=(8, 14)),
    "upright": dict(B=(6e-4, 1.2e-3), detune=(0.5, 2.5), hard=(0.4, 0.9), t60=(5, 9)),
    "old_upright": dict(B=(8e-4, 1.8e-3), detune=(3.0, 8.0), hard=(0.3, 0.7), t60=(4, 7)),
}


def _piano_note(rng, pitch: int, vel: float, length: int, kind: dict, p: dict) -> np.ndarray:
    """One piano note: inharmonic partials n f0 sqrt(1 + B n^2) of 1-3 detuned strings,
    amplitudes from the hammer position and hardness (softer blows: steeper spectrum),
    two-stage decay faster for higher partials, and a hammer thump. float32 sines."""
    f0 = hz(pitch) * (1 + p["stretch"] * (pitch - 60) / 1200)
    B = p["B"] * 2 ** ((pitch - 60) / 18)
    n_str = 1 if pitch < 35 else (2 if pitch < 48 else 3)
    t = (np.arange(length, dtype=np.float32) / np.float32(SR))
    xh = p["strike"]
    t60 = p["t60"] * (261.6 / f0) ** 0.6
    out = np.zeros(length, dtype=np.float32)
    hard = p["hard"] * (0.5 + 0.7 * vel)
    amps = []
    for n in range(1, 31):
        fn = n * f0 * np.sqrt(1 + B * n * n)
        if fn > min(6500, NYQUIST * 0.9):
            break
        amps.append((n, fn, abs(np.sin(np.pi * n * xh)) / n ** (2.2 - 1.2 * hard)
                     * np.exp(-(fn / (2500 + 5000 * hard)) ** 2 * 0.5)))
    top = max(a for _, _, a in amps)
    for n, fn, a in amps:
        if a < top * 1e-3:
            continue
        tau1 = t60 / 6.9 / (1 + 0.15 * (n - 1) + (fn / 3000) ** 2)
        m = min(length, int(3 * tau1 * np.log(a / (top * 1e-3) + 1) * SR) + 1)  # to -60 dB re the note
        tt = t[:m]
        decay = (1 - p["after"]) * np.exp(-tt / np.float32(tau1)) + p["after"] * np.exp(-tt / np.float32(3 * tau1))
        strings = n_str if n <= 4 else (min(n_str, 2) if n <= 12 else 1)  # beating: low partials
        tone = np.zeros(m, dtype=np.float32)
        for s in range(strings):
            cents = (s - (strings - 1) / 2) * p["detune"] * rng.uniform(0.6, 1.4)
            ph = tt * np.float32(fn * 2 ** (cents / 1200)) + np.float32(rng.random())
            ph -= np.floor(ph)
            tone += np.sin(np.float32(TAU) * ph)
        out[:m] += np.float32(a / strings) * decay * tone
    k = min(length, int(0.02 * SR))
    thump = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.004 * SR))
    res = out.astype(np.float64)
    res[:k] += p["noise"] * vel * lowpass(thump, 1500 + 4000 * hard)
    return res * vel ** 1.3


def piano(stem: Stem, rng, variant: str) -> np.ndarray:
    if variant in ("tine", "reed_ep"):
        return epiano(stem, rng, variant)
    kind = PIANO_KINDS[variant]
    p = dict(B=rng.uniform(*kind["B"]), detune=rng.uniform(*kind["detune"]), hard=rng.uniform(*kind["hard"]),
             t60=rng.uniform(*kind["t60"]), strike=rng.uniform(1 / 9, 1 / 7), after=rng.uniform(0.1, 0.35),
             stretch=rng.uniform(0.0, 0.6), noise=rng.uniform(0.05, 0.25))
    if stem.program == 1:  # bright acoustic
        p["hard"] = min(1.0, p["hard"] + 0.3)
    if stem.program == 3:  # honky-tonk: strongly detuned unisons
        p["detune"] = rng.uniform(6.0, 15.0)
    pedal = rng.random() < 0.5
    out = np.zeros(RENDER_SAMPLES)
    notes = notes_in_render(stem)
    for n in notes:
        a = int(n.start * SR)
        end = n.end + (rng.uniform(0.3, 1.5) if pedal else 0.0)  # the sustain pedal holds the dampers
        held = int((end - n.start) * SR)
        damper = rng.uniform(0.05, 0.12)
        length = min(RENDER_SAMPLES - a, held + int(damper * 5 * SR))
        if length <= 0:
            continue
        y = _piano_note(rng, n.pitch, n.velocity / 127.0, length, kind, p)
        out[a:a + length] += damp_after(y, held, damper)
    body = [(f, rng.uniform(3, 10), rng.uniform(0.2, 0.8)) for f in rng.uniform(80, 2500, 6)]
    return body_filter(out, body, 1.0)


def epiano(stem: Stem, rng, variant: str) -> np.ndarray:
    """Electric piano by two-operator FM: a decaying modulator (tine: ratio 1 plus a
    metallic 'bell' partial; reed: odd ratio, more bark), velocity-sensitive index."""
    tine = variant == "tine"
    ratio = 1.0 if tine else float(rng.choice([1.0, 3.0]))
    bell_ratio = rng.uniform(13.5, 14.5) if tine else rng.uniform(6.5, 8.5)
    idx0 = rng.uniform(0.5, 2.0) if tine else rng.uniform(1.5, 3.5)
    out = np.zeros(RENDER_SAMPLES)
    trem_depth = rng.uniform(0.0, 0.3) if rng.random() < 0.5 else 0.0
    for n in notes_in_render(stem):
        a = int(n.start * SR)
        held = int((n.end - n.start) * SR)
        rel = rng.uniform(0.05, 0.15)
        length = min(RENDER_SAMPLES - a, held + int(rel * 6 * SR))
        if length <= 0:
            continue
        t = np.arange(length) / SR
        f0 = hz(n.pitch)
        vel = n.velocity / 127
        idx = idx0 * (0.3 + vel) * np.exp(-t / rng.uniform(0.2, 0.8))
        mod = np.sin((TAU * np.mod(ratio * f0 * t, 1.0)).astype(np.float32))
        car = np.sin((TAU * np.mod(f0 * t + idx * mod / TAU, 1.0)).astype(np.float32))
        t60 = rng.uniform(2.0, 4.0) * (261.6 / f0) ** 0.5
        tone = car * np.exp(-t * 6.9 / t60)
        if f0 * bell_ratio < NYQUIST * 0.9:
            tone += 0.3 * vel * np.sin(TAU * np.mod(f0 * bell_ratio * t, 1.0)) * np.exp(-t / 0.05)
        if not tine:
            tone = np.tanh(tone * (1 + 2 * vel))
        out[a:a + length] += damp_after(tone, held, rel) * vel ** 1.5
    if trem_depth:
        tt = np.arange(RENDER_SAMPLES) / SR
        out *= 1 - trem_depth * (0.5 + 0.5 * np.sin(TAU * rng.uniform(3, 6) * tt))
    return lowpass(out, rng.uniform(4000, 8000))


# ---------------------------------------------------------------------------- accordion


def _reeds(notes: list[Note], rng, banks: list[tuple[float, float]], width: float, attack=(0.01, 0.04),
           max_voices: int = 6) -> np.ndarray:
    """Free reeds: per voice, one band-limited pulse per bank (cents offset, gain)."""
    out = np.zeros(RENDER_SAMPLES)
    for voice in allocate_voices(notes, max_voices):
        pitch, env, k, since = voice_tracks(
            voice, rng, glide=(0.01, 0.02), glide_prob=0.0, vib_rate=(5, 6), vib_cents=(0.0, 0.0),
            vib_delay=(0.1, 0.2), attack=attack, release=(0.02, 0.06), swell=0.1, jitter_cents=0.5)
        if not (env > 1e-4).any():
            continue
        for cents, g in banks:
            ph, f = phase_of(pitch + cents / 100.0, rng)
            out += g * env * pulse(ph, np.minimum(f / SR, 0.5), width)
    return out


def accordion(stem: Stem, rng, variant: str) -> np.ndarray:
    """Free reeds: 2-3 banks of band-limited pulse reeds detuned against each other
    (musette) or an octave apart (dry), a reed-block resonance and bellows swell."""
    notes = notes_in_render(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    d = rng.uniform(8, 30)
    banks = {"musette_2": [(0.0, 1.0), (d, 0.9)], "dry_2": [(0.0, 1.0), (-1200.0, rng.uniform(0.3, 0.7))],
             "musette_3": [(-d, 0.8), (0.0, 1.0), (d * rng.uniform(0.8, 1.2), 0.8)]}[variant]
    out = _reeds(notes, rng, banks, rng.uniform(0.15, 0.4))
    bellows = 1 + rng.uniform(0.05, 0.2) * smooth_noise(rng, RENDER_SAMPLES, 0.7)
    swell = np.clip(np.arange(RENDER_SAMPLES) / (rng.uniform(0.05, 0.4) * SR), 0, 1)
    y = out * bellows * swell
    modes = [(rng.uniform(700, 1200), 2.0, rng.uniform(0.5, 1.5)), (rng.uniform(2000, 3000), 2.5, rng.uniform(0.3, 1.0))]
    return lowpass(body_filter(y, modes, 0.7), rng.uniform(4000, 7000))


# ---------------------------------------------------------------------------- pipe and reed organ

# stops as harmonic amplitude tables relative to the 8' fundamental (index = harmonic number):
# a pipe rank of footage 8/k sounds harmonic k of the 8' pitch; 16' sounds at half.
def _stop(kind: str, rng) -> dict[float, float]:
    if kind == "principal":  # open flue pipe: all harmonics, moderately falling
        return {n: n ** -rng.uniform(1.2, 1.8) for n in range(1, 12)}
    if kind == "flute":  # open flute: nearly sinusoidal
        return {1: 1.0, 2: rng.uniform(0.05, 0.2), 3: rng.uniform(0.02, 0.08)}
    if kind == "gedackt":  # stopped pipe: odd harmonics
        return {1: 1.0, 3: rng.uniform(0.1, 0.3), 5: rng.uniform(0.02, 0.08)}
    if kind == "string":  # narrow-scaled: many harmonics
        return {n: n ** -rng.uniform(0.7, 1.0) for n in range(1, 20)}
    if kind == "trumpet":  # reed stop: bright, all harmonics
        return {n: n ** -rng.uniform(0.4, 0.8) for n in range(1, 30)}
    raise ValueError(kind)


ORGAN_REGISTRATIONS = {  # variant -> list of (stop, footage) choices
    "flue_chorus": [[("principal", 8)], [("principal", 8), ("principal", 4)],
                    [("principal", 8), ("principal", 4), ("principal", 2)], [("flute", 8), ("principal", 4)],
                    [("gedackt", 8)], [("gedackt", 8), ("flute", 4)], [("principal", 16), ("principal", 8), ("flute", 4)],
                    [("string", 8)], [("string", 8), ("flute", 8)]],
    "full_reeds": [[("principal", 8), ("principal", 4), ("principal", 2), ("mixture", 0), ("trumpet", 8)],
                   [("principal", 16), ("principal", 8), ("trumpet", 8), ("mixture", 0)],
                   [("trumpet", 8), ("flute", 8)], [("principal", 8), ("principal", 4), ("mixture", 0)]],
}


def pipe_organ(stem: Stem, rng, variant: str) -> np.ndarray:
    """Additive pipe organ: the drawn registration's ranks merged into one harmonic table
    (ranks of an organ are tuned pure to the 8' pitch), slow speech with chiff, wind
    noise, optional tremulant; a 16' rank adds the sub-octave series."""
    notes = notes_in_render(stem)
    if not notes:
        return np.zeros(RENDER_SAMPLES)
    options = ORGAN_REGISTRATIONS[variant]
    reg = options[int(rng.integers(len(options)))]
    table: dict[int, float] = {}  # harmonic of the 16' pitch (f/2) -> amplitude
    for stop, foot in reg:
        gain = rng.uniform(0.5, 1.0)
        if stop == "mixture":  # pure ranks 2 2/3', 2', 1 1/3', 1'
            for k in (3, 4, 6, 8):
                table[2 * k] = table.get(2 * k, 0.0) + gain * 0.35
            continue
        mult = {16: 1, 8: 2, 4: 4, 2: 8}[foot]
        for n, a in _stop(stop, rng).items():
            table[n * mult] = table.get(n * mult, 0.0) + gain * a
    chiff_amt = rng.uniform(0.0, 0.3)
    trem = rng.random() < 0.2
    out = np.zeros(RENDER_SAMPLES)
    sounding = np.zeros(RENDER_SAMPLES)
    for voice in allocate_voices(notes, 6):
        pitch, env, k, since = voice_tracks(
            voice, rng, glide=(0.01, 0.02), glide_prob=0.0, vib_rate=(5, 6), vib_cents=(0.0, 0.0),
            vib_delay=(0.1, 0.2), attack=(0.02, 0.07), release=(0.04, 0.12), swell=0.0, jitter_cents=0.3)
        active = env > 1e-4
        if not active.any():
            continue
        ph, f = phase_of(pitch - 12.0, rng)  # the 16' pitch; harmonic 2 is the 8' fundamental
        y = harmonics(ph, f, lambda n: table.get(n, 0.0), nmax=max(table), fmax=9000, active=active)
        chiff = np.exp(-since / rng.uniform(0.01, 0.03)) * (k >= 0) * active
        y = y * env + chiff * chiff_amt * bandpass(rng.standard_normal(RENDER_SAMPLES), 1000, 6000)
        out += y
        sounding = np.maximum(sounding, env)
    # wind noise of the open pallets
    out += rng.uniform(0.002, 0.01) * lowpass(rng.standard_normal(RENDER_SAMPLES), 800) * sounding * (np.abs(out).max() + 1e-9)
    if trem:
        tt = np.arange(RENDER_SAMPLES) / SR
        out *= 1 - rng.uniform(0.1, 0.25) * (0.5 + 0.5 * np.sin(TAU * rng.uniform(5, 7) * tt))
    return out


def organ(stem: Stem, rng, variant: str) -> np.ndarray:
    if stem.program == 20:  # reed organ / harmonium: foot-pumped free reeds
        notes = notes_in_render(stem)
        if not notes:
            return np.zeros(RENDER_SAMPLES)
        banks = [(0.0, 1.0)]
        if variant == "full_reeds":  # held out: 8' + 4' (+ 16') sets
            banks += [(1200.0, rng.uniform(0.3, 0.6))] + ([(-1200.0, rng.uniform(0.3, 0.6))] if rng.random() < 0.5 else [])
        elif rng.random() < 0.5:
            banks.append((rng.uniform(3, 8), rng.uniform(0.5, 0.9)))  # a voix celeste
        y = _reeds(notes, rng, banks, rng.uniform(0.3, 0.5), attack=(0.03, 0.08))
        pump = 1 + rng.uniform(0.05, 0.15) * smooth_noise(rng, RENDER_SAMPLES, 0.5, 2)
        return lowpass(body_filter(y * pump, [(rng.uniform(400, 900), 1.5, 1.0)], 0.6), rng.uniform(2500, 4500))
    return pipe_organ(stem, rng, variant)


# ---------------------------------------------------------------------------- celesta, music box

MALLET_MODES = {  # (partial ratios, amplitudes), decay at C5 (s)
    8: ((1.0, 2.756, 5.404), (1.0, 0.12, 0.04), 1.2),  # celesta: steel bars over wooden resonators
    10: ((1.0, 6.267, 17.55), (1.0, 0.25, 0.08), 2.0),  # music box: cantilever comb tines
}


def mallets(stem: Stem, rng, variant: str) -> np.ndarray:
    ratios, amps, decay_c5 = MALLET_MODES[stem.program]
    hard = variant == "hard"
    hardness = rng.uniform(0.6, 1.0) if hard else rng.uniform(0.2, 0.6)
    mistune = rng.uniform(0.0, 15.0) if stem.program == 10 else rng.uniform(0.0, 4.0)  # cents per tine
    out = np.zeros(RENDER_SAMPLES)
    for n in notes_in_render(stem):
        f0 = hz(n.pitch) * 2 ** (rng.normal(0, mistune) / 1200)
        decay = decay_c5 * rng.uniform(0.7, 1.3) * (523.3 / f0) ** 0.5
        a = int(n.start * SR)
        length = min(RENDER_SAMPLES - a, int(5 * decay * SR))
        if stem.program == 8:  # celesta: the damper falls at key release
            length = min(length, int((n.end - n.start + 0.5) * SR))
        if length <= 0:
            continue
        t = np.arange(length, dtype=np.float32) / np.float32(SR)
        tone = np.zeros(length, dtype=np.float32)
        for i, (r, amp) in enumerate(zip(ratios, amps)):
            f = f0 * r * (1 + rng.normal(0, 0.003) * (i > 0))
            if f > NYQUIST * 0.9:
                continue
            ph = t * np.float32(f) + np.float32(rng.random())
            ph -= np.floor(ph)
            tone += np.float32(amp * hardness ** i) * np.sin(np.float32(TAU) * ph) * np.exp(-t / np.float32(decay / (1 + 3 * i)))
        y = tone.astype(np.float64)
        if stem.program == 8:
            y = damp_after(y, int((n.end - n.start) * SR), 0.08)
        k = min(length, int(0.003 * SR))
        y[:k] += (0.02 + 0.1 * hardness) * highpass(rng.standard_normal(k), 2000) * np.linspace(1, 0, k)
        out[a:a + length] += y * (n.velocity / 127) ** 1.3
    if stem.program == 8:  # the resonator box
        out = body_filter(out, [(rng.uniform(200, 400), 3, 0.5)], 1.0)
    return out


MODELS = {
    "electric_guitar": electric_guitar,
    "acoustic_guitar": acoustic_guitar,
    "banjo": banjo,
    "bass": bass,
    "violin": bowed,
    "cello": bowed,
    "clarinet": clarinet,
    "saxophone": saxophone,
    "flute": flute,
    "trumpet": brass,
    "trombone": brass,
    "piano": piano,
    "accordion": accordion,
    "organ": organ,
    "mallet_percussion": mallets,
}
