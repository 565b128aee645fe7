"""The `recorded` and `recorded2` held-out sets: samples played as a sampler would, mixed,
written as a corpus; and the Qt resource bundles recorded2 reads some of them from."""
from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
import soundfile as sf

from tagger.datasets import read_manifest
from tagger.labels import BUNDLED_LABELS
from training import qt_rcc
from training import recorded as rec
from training.corpus.audio import CLIP_SAMPLES, SAMPLE_RATE

SR = SAMPLE_RATE


def _tone(f: float, seconds: float, decay: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * f * t) * np.exp(-decay * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SR / len(x))


@pytest.mark.parametrize("semitones", [-5, 0, 7, 12])
def test_shift_plays_the_sample_higher_or_lower(semitones):
    y = rec.shift(_tone(440.0, 1.0), semitones)
    assert _peak_hz(y) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)
    assert len(y) == pytest.approx(SR * 2 ** (-semitones / 12), rel=0.01)  # a sampler's: higher is shorter


def test_a_one_shot_becomes_a_phrase_of_several_notes():
    rng = np.random.default_rng(0)
    clip = rec.play(_tone(330.0, 2.0, decay=3.0), "note", rng)
    assert clip.shape == (CLIP_SAMPLES,) and np.max(np.abs(clip)) == pytest.approx(0.5, abs=1e-6)
    # notes 0.25-1 s apart: the energy envelope has at least three onsets (jumps of 6 dB)
    frames = clip[: len(clip) // 512 * 512].reshape(-1, 512)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    assert int(np.sum(np.diff(level) > 6)) >= 3
    pitches = {round(_peak_hz(clip[i:i + 4096])) for i in range(0, CLIP_SAMPLES - 4096, 2048)
               if np.sqrt(np.mean(clip[i:i + 4096] ** 2)) > 0.05}
    assert len(pitches) >= 2  # resampled to more than one pitch


def test_a_phrase_is_a_window_and_a_loop_repeats():
    rng = np.random.default_rng(1)
    long = np.arange(5 * SR, dtype=np.float32) / (5 * SR)
    w = rec.window(long, rng)
    assert len(w) == CLIP_SAMPLES and np.all(np.diff(w) > 0)  # one stretch of it, in order
    loop = _tone(200.0, 0.7)
    y = rec.looped(loop, rng)
    period = len(loop)
    assert len(y) == CLIP_SAMPLES and np.allclose(y[:-period], y[period:])
    with pytest.raises(ValueError, match="unknown sample kind"):
        rec.play(loop, "riff", rng)


def _package(tmp_path):
    root = tmp_path / "samples"
    root.mkdir()
    sf.write(root / "pluck.wav", _tone(220.0, 1.5, decay=4.0), SR)
    sf.write(root / "organ.flac", _tone(262.0, 6.0), SR)
    sf.write(root / "beat.ogg", np.tile(np.r_[np.ones(200), np.zeros(SR // 2 - 200)].astype(np.float32) * 0.5, 2), SR)
    samples = (("pkg", "pluck.wav", "acoustic_guitar", "note"), ("pkg", "organ.flac", "organ", "phrase"),
               ("pkg", "beat.ogg", "drums", "loop"))
    return samples, {"pkg": (root, "some-package")}


def test_build_writes_a_corpus_the_evaluator_reads(tmp_path):
    samples, roots = _package(tmp_path)
    rows = rec.build(tmp_path / "out", samples, singles=3, mixtures=10, seed=5, roots=roots)
    assert len(rows) == 3 * 3 + 10
    ds = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(ds.items) == 19
    singles = [r for r in rows if r["kind"] == "single"]
    assert sorted({r["labels"] for r in singles}) == ["acoustic_guitar", "drums", "organ"]
    for r in rows:
        audio, sr = sf.read(tmp_path / "out" / r["path"])
        assert sr == SR and len(audio) == CLIP_SAMPLES and 0.3 < np.max(np.abs(audio)) <= 0.5 + 1e-3
        names = [p.split("=")[0] for p in r["programs"].split(";")]
        assert r["labels"].split(";") == sorted(names)  # each sample's own label, no label twice
        if r["kind"] == "mix":
            assert len(names) in (2, 3) and len(set(names)) == len(names)
    again = rec.build(tmp_path / "again", samples, singles=3, mixtures=10, seed=5, roots=roots)
    assert again == rows  # the same seed, the same set
    first = sf.read(tmp_path / "out" / rows[-1]["path"])[0]
    assert np.array_equal(first, sf.read(tmp_path / "again" / rows[-1]["path"])[0])


def test_main_stamps_the_build_and_reuses_it(tmp_path, monkeypatch, capsys):
    samples, roots = _package(tmp_path)
    monkeypatch.setattr(rec, "SAMPLES", samples)
    monkeypatch.setattr(rec, "ROOTS", roots)
    out = tmp_path / "set"
    assert rec.main(["--out", str(out), "--singles", "2", "--mixtures", "4"]) == 0
    assert json.loads((out / "build.json").read_text())["mixtures"] == 4
    assert rec.main(["--out", str(out), "--singles", "2", "--mixtures", "4", "--reuse"]) == 0
    assert "kept" in capsys.readouterr().out


def test_a_missing_package_is_named_in_one_line(tmp_path):
    samples, _ = _package(tmp_path)
    with pytest.raises(SystemExit, match=r"missing Debian packages: lmms-common .*apt-get install lmms-common"):
        rec.build(tmp_path / "out", samples, roots={"pkg": (tmp_path / "nowhere", "lmms-common")})


def test_explain_names_what_a_model_calls_each_recording(tmp_path, tiny_model, monkeypatch, capsys):
    samples, roots = _package(tmp_path)
    monkeypatch.setattr(rec, "SAMPLES", samples)
    monkeypatch.setattr(rec, "ROOTS", roots)
    out = tmp_path / "set"
    rec.main(["--out", str(out), "--singles", "3", "--mixtures", "2"])
    assert rec.main(["--out", str(out), "--explain", str(tiny_model)]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0] == "| label | recording | top-1 on its clips |" and len(table) == 2 + 3
    for line, (root, path, label, _) in zip(table[2:], sorted(samples, key=lambda s: (s[2], s[1]))):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [label, f"{root}:{path}"]
        assert sum(int(part.rsplit(" ", 1)[1]) for part in cells[2].split(", ")) == 3  # its 3 clips, counted


@pytest.mark.parametrize("name", ["recorded", "recorded2"])
def test_heldout_scores_the_recorded_sets(tmp_path, tiny_model, capsys, name):
    from training import heldout

    samples, roots = _package(tmp_path)
    rec.build(tmp_path / "data" / f"corpus_{name}", samples, singles=2, mixtures=4, seed=3, roots=roots, source=name)
    out = tmp_path / "h.json"
    assert heldout.main([str(tiny_model), "--data", str(tmp_path / "data"), "--sets", name,
                         "--json", str(out)]) == 0
    header, _, row = capsys.readouterr().out.strip().splitlines()[:3]
    assert f"| {name} top-1 |" in header and f"| {name} mix F1 (P / R) |" in header
    figures = json.loads(out.read_text())[tiny_model.stem][name]
    assert figures["items"] == 2 * 3 + 4
    assert f"{figures['top1_single']:.3f}" in row


def test_details_give_mixture_errors_each_recording_and_level(tmp_path):
    from training.mixture_errors import read_stems

    samples, roots = _package(tmp_path)
    rows = rec.build(tmp_path / "out", samples, singles=1, mixtures=12, seed=4, roots=roots)
    stems = read_stems(tmp_path / "out")
    assert set(stems) == {r["path"] for r in rows}
    for r in rows:
        assert sorted(label for label, _ in stems[r["path"]]) == r["labels"].split(";")
        levels = [db for _, db in stems[r["path"]]]
        assert levels[0] == 0.0 and set(levels) <= {0.0, -3.0, -6.0}


@pytest.mark.parametrize("bad", ["corrupt", "silent"])
def test_a_recording_that_cannot_serve_stops_the_build_in_one_line(tmp_path, bad):
    samples, roots = _package(tmp_path)
    target = roots["pkg"][0] / "organ.flac"
    if bad == "corrupt":
        target.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    else:
        sf.write(target, np.zeros(SR * 4, dtype=np.float32), SR)
    with pytest.raises(SystemExit) as stop:
        rec.build(tmp_path / "out", samples, roots=roots)
    message = str(stop.value)
    assert message.startswith(f"training.recorded: {target}") and "\n" not in message
    assert not (tmp_path / "out" / "manifest.csv").exists()


def _rcc(files: dict[str, tuple[bytes, bool]], version: int) -> bytes:
    """A Qt resource bundle as ``rcc --binary`` lays it out: ``files`` maps a path to its
    bytes and whether it is zlib-compressed; the tree is written breadth first."""
    root: dict = {}
    for path, entry in files.items():
        *folders, leaf = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = entry
    names, data, tree = bytearray(), bytearray(), []
    queue, next_child = [("", root)], 1
    while queue:
        name, node = queue.pop(0)
        name_at = len(names)
        if name:
            names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        if isinstance(node, dict):
            children = sorted(node.items())
            tree.append(struct.pack(">IHII", name_at, 2, len(children), next_child))
            next_child += len(children)
            queue.extend(children)
        else:
            contents, packed = node
            stored = struct.pack(">I", len(contents)) + zlib.compress(contents) if packed else contents
            tree.append(struct.pack(">IHHHI", name_at, 1 if packed else 0, 0, 0, len(data)))
            data += struct.pack(">I", len(stored)) + stored
        if version >= 2:
            tree[-1] += struct.pack(">Q", 0)  # modification time
    head = 24 if version >= 3 else 20
    tree_bytes = b"".join(tree)
    offsets = (head, head + len(tree_bytes), head + len(tree_bytes) + len(data))
    header = b"qres" + struct.pack(">IIII", version, *offsets) + (b"\0" * 4 if version >= 3 else b"")
    return header + tree_bytes + bytes(data) + bytes(names)


FILES = {"top.txt": (b"plain at the top", False),
         "a/b/deep.bin": (bytes(range(256)) * 40, True),
         "a/b/note.txt": (b"plain, two folders down", False),
         "a/packed.txt": (b"compress me " * 100, True),
         "c/x.txt": (b"another folder", False)}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_qt_rcc_reads_plain_and_zlib_entries_anywhere_in_the_tree(version):
    blob = _rcc(FILES, version)
    found = qt_rcc.resources(blob)
    assert set(found) == set(FILES)
    assert found["a/packed.txt"].flags == qt_rcc.COMPRESSED and found["top.txt"].flags == 0
    for path, (contents, _) in FILES.items():
        assert qt_rcc.read(blob, found[path]) == contents


def test_qt_rcc_extracts_and_names_what_it_cannot_read(tmp_path):
    bundle = tmp_path / "b.rcc"
    bundle.write_bytes(_rcc(FILES, 3))
    to = qt_rcc.extract(bundle, ":/a/b/deep.bin", tmp_path / "out" / "deep.bin")
    assert to.read_bytes() == FILES["a/b/deep.bin"][0]
    with pytest.raises(qt_rcc.RccError, match="no resource a/nothing"):
        qt_rcc.extract(bundle, "a/nothing", tmp_path / "n")
    blob = bytearray(_rcc({"z.bin": (b"z" * 500, True)}, 3))
    blob[blob.index(zlib.compress(b"z" * 500)) + 4] ^= 0xFF  # damage the zlib stream
    with pytest.raises(qt_rcc.RccError, match="z.bin"):
        qt_rcc.read(bytes(blob), qt_rcc.resources(bytes(blob))["z.bin"])
    with pytest.raises(qt_rcc.RccError, match="not a Qt resource bundle"):
        qt_rcc.resources(b"RIFF" + bytes(40))


def test_active_window_picks_where_the_track_plays():
    rng = np.random.default_rng(2)
    loud, gap = _tone(300.0, 4.0), np.zeros(4 * SR, dtype=np.float32)
    track = np.concatenate([gap, loud, gap, gap, loud * 0.8, gap, loud, gap])  # 32 s, 12 of them playing
    level = 20 * np.log10(rec.rms(loud))
    seen = set()
    for _ in range(200):
        clip = rec.active_window(track, rng)
        assert len(clip) == CLIP_SAMPLES
        assert 20 * np.log10(rec.rms(clip) + 1e-12) >= level - 10
        tenths = np.sqrt(np.mean(clip[: CLIP_SAMPLES // 30 * 30].reshape(30, -1) ** 2, axis=1))
        assert np.mean(tenths < 1e-3) <= 0.35  # it plays in most of it (a quarter may rest, give or take a block)
        seen.add(clip.tobytes())
    assert len(seen) > 30  # from anywhere the track plays, not from one window
    assert sum(rec.rms(rec.window(track, rng)) < 1e-3 for _ in range(200)) > 20  # where a plain window often lands


def test_a_label_s_clips_alone_take_its_recordings_in_turn():
    labels = ["organ", "violin", "organ", "organ"]
    planned = rec.plan(4, labels, 5, 6, np.random.default_rng(0), per_label=True)
    assert planned[:10] == [(0,), (2,), (3,), (0,), (2,), (1,), (1,), (1,), (1,), (1,)]
    assert all(len({labels[i] for i in used}) == len(used) == 2 for used in planned[10:])  # 2 labels: pairs


def test_recorded2_names_only_the_model_s_labels():
    labels = {label for _, _, label, _ in rec.SAMPLES2}
    assert labels <= set(BUNDLED_LABELS) and len(labels) >= 12
    assert {kind for *_, kind in rec.SAMPLES2} <= set(rec.KINDS)
    assert {root for root, *_ in rec.SAMPLES2} == set(rec.ROOTS2)
    assert len({(root, path) for root, path, *_ in rec.SAMPLES2}) == len(rec.SAMPLES2)  # none twice


@pytest.mark.skipif(bool(rec.missing_packages(rec.ROOTS2)),
                    reason=f"not installed: {' '.join(rec.missing_packages(rec.ROOTS2))}")
def test_every_recorded2_sample_is_in_its_package():
    for root_name, path, _, _ in rec.SAMPLES2:
        root = rec.ROOTS2[root_name][0]
        if root.is_dir():
            assert (root / path).is_file(), root / path
        elif root.suffix == ".rcc":
            assert path in qt_rcc.resources(root.read_bytes()), f"{root}: {path}"
        else:
            assert path in zipfile.ZipFile(root).namelist(), f"{root}: {path}"


def _wav_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV")
    return buf.getvalue()


def test_recorded2_builds_from_bundles_and_archives(tmp_path, monkeypatch):
    (tmp_path / "sounds.rcc").write_bytes(_rcc({"res/violin.wav": (_wav_bytes(_tone(440.0, 5.0)), True)}, 3))
    with zipfile.ZipFile(tmp_path / "organ.orgue", "w") as archive:
        archive.writestr("Montre8/054-F#.wav", _wav_bytes(_tone(185.0, 2.0, decay=1.0)))
    monkeypatch.setattr(rec, "ROOTS2", {"bundle": (tmp_path / "sounds.rcc", "pkg-a"),
                                        "zip": (tmp_path / "organ.orgue", "pkg-b")})
    monkeypatch.setattr(rec, "SAMPLES2", (("bundle", "res/violin.wav", "violin", "active"),
                                          ("zip", "Montre8/054-F#.wav", "organ", "note")))
    out = tmp_path / "set"
    assert rec.main(["--set", "recorded2", "--out", str(out), "--singles", "3", "--mixtures", "2"]) == 0
    rows = list(read_manifest(out / "manifest.csv").items)
    assert len(rows) == 2 * 3 + 2
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "clips", "details.jsonl", "manifest.csv"]
    assert all(p.name.endswith("_recorded2.flac") for p in (out / "clips").iterdir())
    stamp = json.loads((out / "build.json").read_text())
    assert stamp["set"] == "recorded2" and stamp["seed"] == 22
    monkeypatch.setattr(rec, "ROOTS2", {"bundle": (tmp_path / "gone.rcc", "pkg-a"),
                                        "zip": (tmp_path / "organ.orgue", "pkg-b")})
    with pytest.raises(SystemExit, match=r"missing Debian packages: pkg-a \("):
        rec.main(["--set", "recorded2", "--out", str(tmp_path / "again")])
