"""The project's own synthesiser: the ``synth`` source.

It renders only what its method genuinely is:

- ``synthesizer``: subtractive synthesis (band-limited saw / square / pulse oscillators,
  detuned unison, sub-oscillator, amplitude ADSR, resonant low-pass with its own envelope
  and LFO): leads, plucks, pads, polysynths.
- ``bass``: the same engine as a synth bass (GM 38/39 "Synth Bass" are members of the
  bass label in DESIGN.md).
- ``drums``: an analogue drum machine (TR-808/909-style kick, snare, clap, hats, toms,
  cymbals, cowbell, congas) built from sine sweeps, noise and metallic square clusters
  (GM kit 25 "TR-808" and 24 "Electronic" are drum kits in GM).
- ``organ``: an additive tonewheel/drawbar organ (nine sine drawbars, key click,
  percussion, rotary-speaker tremolo), which is what a drawbar organ physically is.
- ``mallet_percussion``: modal synthesis of struck bars (marimba, xylophone,
  vibraphone with motor tremolo, glockenspiel) from their measured partial ratios.

Not rendered (no honest recipe here): guitars, banjo, bowed strings, winds, brass,
piano, accordion. The stem's ``program`` names the GM instrument a model imitates.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from tagger.labels import BUNDLED_LABELS

from .audio import RENDER_SAMPLES, SAMPLE_RATE
from .material import Note
from .oscillators import pulse, saw
from .stems import DRUM_BANK, Coverage, Stem

SR = SAMPLE_RATE
NYQUIST = SR / 2

SYNTH_PROGRAMS: dict[str, tuple[tuple[int, int], ...]] = {
    "synthesizer": ((0, 80), (0, 81), (0, 84), (0, 87), (0, 89), (0, 90), (0, 95)),
    "bass": ((0, 38), (0, 39)),
    "drums": ((DRUM_BANK, 24), (DRUM_BANK, 25)),
    "organ": ((0, 16), (0, 17)),
    "mallet_percussion": ((0, 9), (0, 11), (0, 12), (0, 13)),
}
SYNTH_DRUM_KEYS = frozenset({35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
                             52, 53, 54, 55, 56, 57, 59, 60, 61, 62, 63, 64, 70, 75, 76, 77, 82})


def synth_coverage() -> Coverage:
    skipped = {f"{label}:*": "no honest synthesis recipe in training/corpus/synth.py"
               for label in BUNDLED_LABELS if label not in SYNTH_PROGRAMS}
    return Coverage("synth", dict(SYNTH_PROGRAMS), skipped, drum_keys=SYNTH_DRUM_KEYS)


def render_synth(stem: Stem, seed: int) -> np.ndarray:
    """Render one stem: float32 mono, RENDER_SAMPLES long."""
    rng = np.random.default_rng(seed)
    if stem.label == "drums":
        out = _drums(stem.phrase.notes, rng, analog=stem.program == 25)
    elif stem.label == "organ":
        out = _organ(stem.phrase.notes, rng)
    elif stem.label == "mallet_percussion":
        out = _mallets(stem.phrase.notes, rng, stem.program)
    elif stem.label in ("synthesizer", "bass"):
        out = _subtractive(stem.phrase.notes, rng, _patch(rng, stem.label, stem.program))
    else:
        raise ValueError(f"the synth source does not render {stem.label}")
    peak = np.max(np.abs(out))
    return (out / peak * 0.5 if peak > 0 else out).astype(np.float32)


# ---------------------------------------------------------------------------- helpers


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def _span(note: Note, release: float) -> tuple[int, int]:
    a = int(note.start * SR)
    b = min(RENDER_SAMPLES, int((note.end + release) * SR))
    return a, max(a, b)


def _adsr(n: int, held: float, a: float, d: float, s: float, r: float) -> np.ndarray:
    """Envelope over n samples for a key held ``held`` s (attack, decay, sustain, release)."""
    t = np.arange(n) / SR
    knots, values = [0.0, a, a + max(d, 1e-4)], [0.0, 1.0, s]
    env = np.interp(t, knots, values)
    rel = t >= held
    level = float(np.interp(max(held, 0.0), knots, values))
    env[rel] = level * np.exp(-(t[rel] - held) * 6.9 / max(r, 1e-3))  # -60 dB after r
    return env


def _phase(freq: np.ndarray) -> np.ndarray:
    return np.cumsum(freq / SR)


def _bandpass(x, lo, hi, order=2):
    return signal.sosfilt(signal.butter(order, [lo, min(hi, NYQUIST * 0.95)], "bandpass", fs=SR, output="sos"), x)


def _highpass(x, f, order=2):
    return signal.sosfilt(signal.butter(order, min(f, NYQUIST * 0.95), "highpass", fs=SR, output="sos"), x)


def _lowpass(x, f, order=2):
    return signal.sosfilt(signal.butter(order, min(f, NYQUIST * 0.95), "lowpass", fs=SR, output="sos"), x)


# ---------------------------------------------------------------------------- subtractive


def _patch(rng: np.random.Generator, label: str, program: int) -> dict:
    """Random patch parameters for a family of sounds (program: the GM sound imitated)."""
    if label == "bass":
        return dict(wave=str(rng.choice(["saw", "square", "pulse"])), voices=1, detune=0.0,
                    sub=rng.uniform(0.0, 0.8), a=0.003, d=rng.uniform(0.1, 0.5), s=rng.uniform(0.3, 0.9),
                    r=rng.uniform(0.03, 0.15), cutoff=rng.uniform(150, 900), env_oct=rng.uniform(1, 4),
                    f_decay=rng.uniform(0.05, 0.4), q=rng.uniform(0.7, 6.0), vib=0.0, lfo_filter=0.0,
                    width=rng.uniform(0.15, 0.5), drive=rng.uniform(0, 1.5))
    family = {80: "lead", 81: "lead", 84: "lead", 87: "pluck", 89: "pad", 90: "poly", 95: "pad"}[program]
    wave = {80: "square", 81: "saw", 84: "saw"}.get(program, str(rng.choice(["saw", "square", "pulse"])))
    if family == "lead":
        return dict(wave=wave, voices=int(rng.integers(1, 3)), detune=rng.uniform(3, 12), sub=rng.uniform(0, 0.4),
                    a=rng.uniform(0.002, 0.03), d=rng.uniform(0.1, 0.4), s=rng.uniform(0.5, 1.0), r=rng.uniform(0.05, 0.3),
                    cutoff=rng.uniform(700, 4000), env_oct=rng.uniform(0.5, 3), f_decay=rng.uniform(0.1, 0.6),
                    q=rng.uniform(0.7, 5.0), vib=rng.uniform(0, 25), lfo_filter=0.0, width=rng.uniform(0.1, 0.5),
                    drive=rng.uniform(0, 2.5 if program == 84 else 0.8))
    if family == "pluck":
        return dict(wave=wave, voices=int(rng.integers(1, 3)), detune=rng.uniform(2, 10), sub=0.0,
                    a=0.002, d=rng.uniform(0.1, 0.5), s=0.0, r=rng.uniform(0.1, 0.4),
                    cutoff=rng.uniform(300, 1500), env_oct=rng.uniform(2, 5), f_decay=rng.uniform(0.05, 0.3),
                    q=rng.uniform(1, 8), vib=0.0, lfo_filter=0.0, width=rng.uniform(0.1, 0.5), drive=0.0)
    if family == "poly":
        return dict(wave=wave, voices=2, detune=rng.uniform(5, 15), sub=0.0,
                    a=rng.uniform(0.005, 0.08), d=rng.uniform(0.2, 0.8), s=rng.uniform(0.4, 0.9), r=rng.uniform(0.2, 0.6),
                    cutoff=rng.uniform(600, 3000), env_oct=rng.uniform(0.5, 2.5), f_decay=rng.uniform(0.2, 0.8),
                    q=rng.uniform(0.7, 3.0), vib=0.0, lfo_filter=rng.uniform(0, 0.5), width=rng.uniform(0.2, 0.5), drive=0.0)
    return dict(wave=wave, voices=int(rng.integers(2, 4)), detune=rng.uniform(8, 25), sub=0.0,  # pad
                a=rng.uniform(0.15, 0.8), d=rng.uniform(0.3, 1.0), s=rng.uniform(0.6, 1.0), r=rng.uniform(0.4, 1.2),
                cutoff=rng.uniform(400, 2500), env_oct=rng.uniform(0, 1.5), f_decay=rng.uniform(0.5, 2.0),
                q=rng.uniform(0.7, 3.0), vib=rng.uniform(0, 8), lfo_filter=rng.uniform(0.3, 1.2),
                width=rng.uniform(0.2, 0.5), drive=0.0)


def _subtractive(notes: list[Note], rng: np.random.Generator, p: dict) -> np.ndarray:
    """Oscillators per note, then one resonant low-pass over the stem (paraphonic, as many
    analogue polysynths), its cutoff driven by an envelope retriggered at each note."""
    out = np.zeros(RENDER_SAMPLES)
    lfo_rate = rng.uniform(4.5, 6.5)
    detunes = np.linspace(-p["detune"], p["detune"], p["voices"]) if p["voices"] > 1 else [0.0]
    for n in notes:
        a, b = _span(n, p["r"])
        if b <= a:
            continue
        t = np.arange(b - a) / SR
        vib = p["vib"] * np.clip(t / 0.4, 0, 1) * np.sin(2 * np.pi * lfo_rate * t) / 1200.0
        f0 = _hz(n.pitch)
        tone = np.zeros(b - a)
        for cents in detunes:
            f = f0 * 2.0 ** (cents / 1200.0 + vib)
            ph = _phase(f) + rng.random()
            dt = np.minimum(f / SR, 0.5)
            if p["wave"] == "saw":
                tone += saw(ph, dt)
            elif p["wave"] == "square":
                tone += pulse(ph, dt, 0.5)
            else:
                tone += pulse(ph, dt, p["width"] + 0.1 * np.sin(2 * np.pi * 0.7 * t))
        if p["sub"] > 0:
            tone += p["sub"] * np.sin(2 * np.pi * _phase(np.full(b - a, f0 / 2)))
        env = _adsr(b - a, n.end - n.start, p["a"], p["d"], p["s"], p["r"])
        out[a:b] += tone / len(detunes) * env * (n.velocity / 127.0) ** 1.5
    # filter cutoff per 64-sample block: base * 2^(env_oct * filter envelope) * LFO
    block = 64
    nb = RENDER_SAMPLES // block
    tb = np.arange(nb) * block / SR
    fenv = np.zeros(nb)
    for n in notes:
        m = tb >= n.start
        fenv[m] = np.exp(-(tb[m] - n.start) / p["f_decay"]) * (n.velocity / 127.0)  # retrigger
    lfo = 2.0 ** (p["lfo_filter"] * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * tb + rng.random() * 6.28))
    cutoff = np.clip(p["cutoff"] * 2.0 ** (p["env_oct"] * fenv) * lfo, 40, NYQUIST * 0.45)
    y = _time_varying_lowpass(out, cutoff, p["q"], block)
    if p["drive"] > 0:
        y = np.tanh(y * (1 + p["drive"] * 3)) / np.tanh(1 + p["drive"] * 3)
    return y


def _time_varying_lowpass(x: np.ndarray, cutoff: np.ndarray, q: float, block: int) -> np.ndarray:
    """RBJ resonant low-pass whose cutoff changes every ``block`` samples (state carried)."""
    y = np.zeros_like(x)
    zi = np.zeros(2)
    for i, fc in enumerate(cutoff):
        w0 = 2 * np.pi * fc / SR
        alpha = np.sin(w0) / (2 * q)
        cw = np.cos(w0)
        b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
        a = np.array([1 + alpha, -2 * cw, 1 - alpha])
        seg = slice(i * block, (i + 1) * block)
        y[seg], zi = signal.lfilter(b / a[0], a / a[0], x[seg], zi=zi)
    return y


# ---------------------------------------------------------------------------- organ

DRAWBAR_RATIOS = np.array([0.5, 1.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])  # 16' 5 1/3' 8' 4' ... 1'
REGISTRATIONS = ("888000000", "838000000", "808000008", "688600000", "800000888", "886600000",
                 "888888888", "008800000", "868000004", "888800000", "006876540", "888000888")


def _organ(notes: list[Note], rng: np.random.Generator) -> np.ndarray:
    reg = REGISTRATIONS[int(rng.integers(len(REGISTRATIONS)))] if rng.random() < 0.8 else "".join(
        str(int(v)) for v in rng.integers(0, 9, 9))
    levels = np.array([0.0 if c == "0" else 10 ** ((int(c) - 8) * 3 / 20) for c in reg])
    if levels.sum() == 0:
        levels[2] = 1.0
    percussion = rng.random() < 0.35
    perc_ratio = 2.0 if rng.random() < 0.5 else 3.0
    click = rng.uniform(0.0, 0.15)
    fast = rng.random() < 0.4
    rotor = rng.uniform(5.8, 7.0) if fast else rng.uniform(0.6, 1.0)  # Hz, rotary speaker
    out = np.zeros(RENDER_SAMPLES)
    for n in notes:
        a, b = _span(n, 0.02)
        if b <= a:
            continue
        L = b - a
        f0 = _hz(n.pitch)
        ph = 2 * np.pi * (f0 * np.arange(L) / SR + rng.random())
        tone = np.zeros(L)
        for r, lv in zip(DRAWBAR_RATIOS, levels):
            if lv > 0 and f0 * r < NYQUIST * 0.9:
                tone += lv * np.sin(r * ph)
        env = _adsr(L, n.end - n.start, 0.005, 0.0, 1.0, 0.015)
        if percussion and f0 * perc_ratio < NYQUIST * 0.9:
            tone += 0.8 * np.sin(perc_ratio * ph) * np.exp(-np.arange(L) / SR / 0.25)
        if click > 0:
            k = min(L, int(0.004 * SR))
            tone[:k] += click * rng.standard_normal(k) * levels.sum()
        out[a:b] += tone * env
    t = np.arange(RENDER_SAMPLES) / SR
    depth = rng.uniform(0.1, 0.3)
    out *= 1.0 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rotor * t))  # rotary tremolo
    if rng.random() < 0.4:  # tube overdrive
        g = rng.uniform(1, 4)
        out = np.tanh(g * out / (np.max(np.abs(out)) + 1e-9))
    return _lowpass(out, 7000)


# ---------------------------------------------------------------------------- mallets

# (partial frequency ratios, relative amplitudes, decay time of the fundamental at C4 in s)
BARS = {
    12: ((1.0, 3.93, 9.24), (1.0, 0.35, 0.12), 1.0),  # marimba (rosewood, tuned 1:4:10)
    13: ((1.0, 3.0, 6.4), (1.0, 0.5, 0.25), 0.35),  # xylophone (tuned to the 12th)
    11: ((1.0, 4.0, 10.0), (1.0, 0.2, 0.05), 3.0),  # vibraphone (aluminium, 1:4:10)
    9: ((1.0, 2.71, 5.15, 8.43), (1.0, 0.5, 0.3, 0.15), 2.5),  # glockenspiel (steel)
}


def _mallets(notes: list[Note], rng: np.random.Generator, program: int) -> np.ndarray:
    ratios, amps, decay_c4 = BARS[program]
    hardness = rng.uniform(0.3, 1.0)  # harder mallets excite upper partials more
    tremolo = program == 11 and rng.random() < 0.6
    trem_rate = rng.uniform(3.5, 7.0)
    pedal = rng.random() < 0.5  # vibraphone damper pedal held: notes ring on
    out = np.zeros(RENDER_SAMPLES)
    for n in notes:
        f0 = _hz(n.pitch)
        decay = decay_c4 * (261.6 / f0) ** 0.6
        ring = 5 * decay if (program != 11 or pedal) else (n.end - n.start) + 0.15
        a, b = _span(n, 0.0)
        b = min(RENDER_SAMPLES, a + int(min(ring, 4.0) * SR))
        if b <= a:
            continue
        t = np.arange(b - a) / SR
        tone = np.zeros(b - a)
        for k, (r, amp) in enumerate(zip(ratios, amps)):
            f = f0 * r * (1 + rng.normal(0, 0.002) * (k > 0))
            if f >= NYQUIST * 0.9:
                continue
            d = decay / (1 + 2.5 * k)
            tone += amp * hardness ** k * np.sin(2 * np.pi * f * t + rng.random() * 6.28) * np.exp(-t / d)
        k = min(len(t), int(0.005 * SR))  # mallet contact noise
        tone[:k] += 0.2 * hardness * rng.standard_normal(k) * np.linspace(1, 0, k)
        if program == 11 and not pedal:  # damper falls when the key is released
            held = int((n.end - n.start) * SR)
            if held < len(tone):
                tone[held:] *= np.exp(-np.arange(len(tone) - held) / SR / 0.08)
        tone *= np.minimum(1.0, np.arange(len(t)) / (0.0015 * SR))  # a 1.5 ms strike
        out[a:b] += tone * (n.velocity / 127.0) ** 1.3
    if tremolo:
        tt = np.arange(RENDER_SAMPLES) / SR
        out *= 1 - 0.35 * (0.5 + 0.5 * np.sin(2 * np.pi * trem_rate * tt))
    return out


# ---------------------------------------------------------------------------- drum machine


def _drum_hit(key: int, rng: np.random.Generator, kit: dict) -> np.ndarray:
    """One drum-machine hit (float64), by General MIDI percussion key."""
    tune, decay = kit["tune"], kit["decay"]

    def t_of(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * SR)) / SR

    def noise(n: int) -> np.ndarray:
        return rng.standard_normal(n)

    if key in (35, 36):  # kick: sine with falling pitch + click
        t = t_of(0.6 * decay * kit["kick_len"])
        f = kit["kick_end"] + (kit["kick_start"] - kit["kick_end"]) * np.exp(-t / 0.03)
        x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / (0.15 * decay * kit["kick_len"]))
        x[: int(0.003 * SR)] += 0.4 * noise(int(0.003 * SR))
        return np.tanh(1.5 * x)
    if key in (38, 40):  # snare: two tones + band-passed noise
        t = t_of(0.35 * decay)
        tone = (np.sin(2 * np.pi * 185 * tune * t) + 0.6 * np.sin(2 * np.pi * 330 * tune * t)) * np.exp(-t / 0.05)
        snappy = _bandpass(noise(len(t)), 1500, 9000) * np.exp(-t / (0.08 * decay * kit["snappy"]))
        return 0.6 * tone + snappy * 1.2
    if key == 39:  # hand clap: a few noise bursts then a tail
        t = t_of(0.3 * decay)
        env = np.exp(-t / (0.06 * decay))
        for k in range(3):
            env += (np.abs(t - 0.011 * k) < 0.004) * 1.2
        return _bandpass(noise(len(t)), 900, 2600) * env
    if key in (42, 44, 46, 51, 59, 53, 49, 57, 52, 55):  # metal: six square oscillators + noise
        length = {42: 0.08, 44: 0.1, 46: 0.5, 51: 0.9, 59: 0.9, 53: 0.8, 49: 1.6, 57: 1.6, 52: 1.4, 55: 0.8}[key]
        t = t_of(length * decay)
        freqs = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * tune * (1.6 if key == 53 else 1.0)
        metal = sum(np.sign(np.sin(2 * np.pi * f * t + rng.random() * 6.28)) for f in freqs)
        hp = 7000 if key in (42, 44, 46) else 4000
        body = _highpass(0.5 * metal + kit["hat_noise"] * noise(len(t)) * 3, hp)
        shape = np.exp(-t / (length * decay / 4)) if key not in (49, 57, 52) else np.exp(-t / (length * decay / 3.5))
        return body * shape * (1.5 if key in (53, 51, 59) else 1.0)
    if key in (41, 43, 45, 47, 48, 50):  # toms: pitched by key
        f_end = {41: 80, 43: 100, 45: 125, 47: 150, 48: 185, 50: 220}[key] * tune
        t = t_of(0.5 * decay)
        f = f_end * (1 + 0.5 * np.exp(-t / 0.04))
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / (0.15 * decay)) + \
            0.1 * _lowpass(noise(len(t)), 3000) * np.exp(-t / 0.02)
    if key in (60, 61, 62, 63, 64):  # bongos / congas
        f = {60: 420, 61: 300, 62: 330, 63: 300, 64: 210}[key] * tune
        t = t_of(0.3)
        damp = 0.03 if key == 62 else 0.09
        return np.sin(2 * np.pi * f * (1 + 0.05 * np.exp(-t / 0.01)) * t) * np.exp(-t / damp)
    if key == 56:  # cowbell: two detuned squares, band-passed
        t = t_of(0.3)
        x = np.sign(np.sin(2 * np.pi * 540 * tune * t)) + np.sign(np.sin(2 * np.pi * 800 * tune * t))
        return _bandpass(x, 500, 3000) * np.exp(-t / 0.07)
    if key in (37, 75, 76, 77):  # rim shot / claves / wood block: short resonant clicks
        f = {37: 1700, 75: 2500, 76: 1200, 77: 800}[key] * tune
        t = t_of(0.08)
        return np.sin(2 * np.pi * f * t) * np.exp(-t / 0.012) + 0.3 * _highpass(noise(len(t)), 2000) * np.exp(-t / 0.004)
    if key in (54, 70, 82):  # tambourine / maracas / shaker
        t = t_of(0.2 if key == 54 else 0.08)
        return _highpass(noise(len(t)), 5000) * np.exp(-t / (0.06 if key == 54 else 0.02))
    return np.zeros(1)


def _drums(notes: list[Note], rng: np.random.Generator, analog: bool) -> np.ndarray:
    kit = dict(tune=rng.uniform(0.85, 1.2), decay=rng.uniform(0.7, 1.4), snappy=rng.uniform(0.6, 1.6),
               kick_start=rng.uniform(100, 250) if analog else rng.uniform(150, 300),
               kick_end=rng.uniform(40, 60), kick_len=rng.uniform(1.2, 2.5) if analog else rng.uniform(0.6, 1.2),
               hat_noise=rng.uniform(0.1, 0.6) if analog else rng.uniform(0.5, 1.0))
    out = np.zeros(RENDER_SAMPLES)
    open_hats = np.zeros(RENDER_SAMPLES)  # kept apart so a closed hat can choke them
    cache: dict[int, np.ndarray] = {}
    for n in sorted(notes, key=lambda n: n.start):
        if n.pitch not in cache:  # one sample per key and stem: a drum machine, not a kit
            cache[n.pitch] = _drum_hit(n.pitch, rng, kit)
        hit = cache[n.pitch] * (n.velocity / 127.0) ** 1.2
        a = int(n.start * SR)
        if a >= RENDER_SAMPLES:
            continue
        if n.pitch in (42, 44):  # a closed hat chokes a ringing open hat
            k = min(RENDER_SAMPLES - a, int(0.01 * SR))
            open_hats[a:a + k] *= np.linspace(1, 0, k)
            open_hats[a + k:] = 0.0
        b = min(RENDER_SAMPLES, a + len(hit))
        (open_hats if n.pitch == 46 else out)[a:b] += hit[: b - a]
    return out + open_hats
