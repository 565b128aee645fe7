"""musicnn's MagnaTagATune tagger as a teacher: its 50 tags' probabilities for a list of clips.

    /work/musicnn-venv/bin/python -m training.teacher CLIPS.csv [--jobs 1]

Runs under its own venv (``scripts/setup_teacher.sh``, pins in
``training/teacher-requirements.txt``), never the project's: TensorFlow is needed here, at
corpus time, and nowhere else. This module imports only the standard library and numpy at
the top; musicnn, librosa and TensorFlow are imported by ``MusicnnTeacher`` alone, so the
clip-list, resume and tag-mapping parts run (and are tested) in the project's venv.

CLIPS.csv has a ``path`` column, relative to the CSV's folder (a corpus ``manifest.csv``
is one). The tags go to ``musicnn.csv`` beside it: ``path`` as given, then the 50 MTT tags
in musicnn's order, each the mean over the clip's 3-s patches of musicnn's sigmoid output
(``MTT_musicnn``, ``input_length=3``, no overlap: one patch for a 3-s clip). The file is
appended to one row per clip and flushed; a second run skips the paths already written,
so a killed run resumes. Progress goes to stderr.

``SHARED_TAGS`` maps our labels to the MTT tags that stand for them (DESIGN.md, "Sound
sources for training": guitar, piano, drums, violin, cello, flute, synth, voice).
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL = "MTT_musicnn"
OUTPUT_NAME = "musicnn.csv"
INPUT_SECONDS = 3.0  # musicnn's models were trained on 3-s patches

# musicnn.configuration.MTT_LABELS, in the order of the network's outputs (checked against
# the installed musicnn when the model loads).
MTT_LABELS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera",
    "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute",
    "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic",
    "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp",
    "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)

# The MTT tags that name an instrument: the candidates when asking "which instrument does
# musicnn hear first?".
INSTRUMENT_TAGS: tuple[str, ...] = (
    "guitar", "piano", "drums", "violin", "cello", "flute", "synth", "harpsichord", "sitar",
    "harp", "strings",
)

# Our label -> the MTT tags that stand for it; a label's teacher score is their maximum.
SHARED_TAGS: dict[str, tuple[str, ...]] = {
    "acoustic_guitar": ("guitar",),
    "electric_guitar": ("guitar",),
    "piano": ("piano",),
    "drums": ("drums",),
    "violin": ("violin",),
    "cello": ("cello",),
    "flute": ("flute",),
    "synthesizer": ("synth",),
    # every MTT tag of a voice: on 400 held-out synthesized voice clips the five generic ones
    # pass 0.3 on 21, all fifteen on 96; on 695 instrument and band clips neither passes 0.3
    "voice": ("voice", "vocal", "vocals", "singing", "choir", "choral", "opera", "female", "male",
              "woman", "man", "male vocal", "female vocal", "male voice", "female voice"),
}


def read_clip_list(clip_csv: Path) -> list[str]:
    """The ``path`` column of ``clip_csv``, in order, without repeats."""
    with clip_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise ValueError(f"{clip_csv}: no 'path' column")
        return list(dict.fromkeys(row["path"] for row in reader if row["path"]))


def done_paths(out_csv: Path, tags: Sequence[str] = MTT_LABELS) -> set[str]:
    """Paths already in ``out_csv``; a torn last line (a killed write) is cut off first.

    A file whose header is not ``path`` + ``tags`` is refused rather than appended to.
    """
    if not out_csv.exists() or out_csv.stat().st_size == 0:
        return set()
    data = out_csv.read_bytes()
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: cutting a torn last line (%d bytes)", out_csv, len(data) - keep)
        with out_csv.open("r+b") as handle:
            handle.truncate(keep)
    with out_csv.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return set()
        if header != ["path", *tags]:
            raise ValueError(f"{out_csv}: header is not path + the {len(tags)} MTT tags")
        return {row[0] for row in reader if len(row) == len(header)}


def shared_scores(tag_scores: Mapping[str, float]) -> dict[str, float]:
    """Our shared labels' teacher scores from one clip's MTT tag scores (max over each label's tags)."""
    return {label: max(float(tag_scores[t]) for t in tags) for label, tags in SHARED_TAGS.items()}


def top_instrument(tag_scores: Mapping[str, float]) -> str:
    """The instrument tag (``INSTRUMENT_TAGS``) musicnn scores highest on one clip."""
    return max(INSTRUMENT_TAGS, key=lambda tag: float(tag_scores[tag]))


def read_teacher_csv(out_csv: Path) -> dict[str, dict[str, float]]:
    """``musicnn.csv`` as {path: {tag: probability}}."""
    with out_csv.open(newline="") as handle:
        return {row.pop("path"): {k: float(v) for k, v in row.items()}
                for row in csv.DictReader(handle)}


class MusicnnTeacher:
    """musicnn's ``MTT_musicnn`` network, built once and restored from the wheel's checkpoint.

    Unlike ``musicnn.extractor.extractor`` (which rebuilds the graph per file and carries on
    with random weights when the restore fails), a failed restore raises here.
    """

    def __init__(self, threads: int = 1, input_seconds: float = INPUT_SECONDS) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import librosa
        import tensorflow as tf
        from musicnn import configuration, models

        tf.compat.v1.disable_eager_execution()
        tf.get_logger().setLevel(logging.ERROR)
        if tuple(configuration.MTT_LABELS) != MTT_LABELS:
            raise RuntimeError("the installed musicnn's MTT labels differ from training.teacher's")
        self._librosa = librosa
        self._config = configuration
        # frames in one patch: 187 for 3 s at 16 kHz, hop 256 (musicnn's own arithmetic)
        self.n_frames = int(librosa.time_to_frames(
            input_seconds, sr=configuration.SR, n_fft=configuration.FFT_SIZE,
            hop_length=configuration.FFT_HOP)) + 1
        self._graph = tf.Graph()
        with self._graph.as_default():
            with tf.name_scope("model"):
                self._x = tf.compat.v1.placeholder(
                    tf.float32, [None, self.n_frames, configuration.N_MELS])  # (patch, frames, mels)
                self._is_training = tf.compat.v1.placeholder(tf.bool)
                with warnings.catch_warnings():  # tf.compat.v1.layers' deprecation notices
                    warnings.simplefilter("ignore", UserWarning)
                    logits = models.define_model(
                        self._x, self._is_training, MODEL, len(MTT_LABELS))[0]
                self._probabilities = tf.nn.sigmoid(logits)  # (patch, 50)
            session_config = tf.compat.v1.ConfigProto(
                intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
            self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
            checkpoint = str(Path(models.__file__).parent / MODEL) + "/"
            tf.compat.v1.train.Saver().restore(self._session, checkpoint)

    def patches(self, path: Path) -> np.ndarray:
        """The clip's log-mel patches as musicnn makes them: (patch, 187 frames, 96 mels).

        A clip shorter than one patch is padded with silence (log-mel 0) at its end.
        """
        config = self._config
        audio, sr = self._librosa.load(str(path), sr=config.SR)
        mel = self._librosa.feature.melspectrogram(
            y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE,
            n_mels=config.N_MELS).T  # (frames, mels)
        mel = np.log10(10000 * mel.astype(np.float16) + 1)
        if mel.shape[0] < self.n_frames:
            mel = np.pad(mel, ((0, self.n_frames - mel.shape[0]), (0, 0)))
        starts = range(0, mel.shape[0] - self.n_frames + 1, self.n_frames)
        return np.stack([mel[s:s + self.n_frames] for s in starts]).astype(np.float32)

    def clip_scores(self, path: Path) -> np.ndarray:
        """The 50 MTT tags' probabilities for one clip, the mean over its patches: (50,)."""
        probabilities = self._session.run(
            self._probabilities, feed_dict={self._x: self.patches(path), self._is_training: False})
        return probabilities.mean(axis=0)


def tag_clips(clip_csv: Path, teacher: MusicnnTeacher | None = None, threads: int = 1) -> Path:
    """Write (or complete) ``musicnn.csv`` beside ``clip_csv``; returns its path."""
    clip_csv = Path(clip_csv)
    out_csv = clip_csv.parent / OUTPUT_NAME
    paths = read_clip_list(clip_csv)
    done = done_paths(out_csv)
    todo = [p for p in paths if p not in done]
    print(f"{clip_csv}: {len(paths)} clips, {len(paths) - len(todo)} already in {out_csv.name}, "
          f"{len(todo)} to tag", file=sys.stderr)
    if not todo:
        return out_csv
    teacher = teacher or MusicnnTeacher(threads=threads)
    new_file = not out_csv.exists() or out_csv.stat().st_size == 0
    started = time.monotonic()
    failed = 0
    with out_csv.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(["path", *MTT_LABELS])
        for i, rel in enumerate(todo, 1):
            try:
                scores = teacher.clip_scores(clip_csv.parent / rel)
            except Exception as error:  # a clip that does not decode is logged and skipped
                failed += 1
                log.error("%s: %s", rel, error)
                continue
            writer.writerow([rel, *(f"{s:.5f}" for s in scores)])
            handle.flush()
            if i % 50 == 0 or i == len(todo):
                elapsed = time.monotonic() - started
                print(f"{i}/{len(todo)} clips, {elapsed:.0f} s, {elapsed / i:.2f} s a clip",
                      file=sys.stderr)
    if failed:
        print(f"{failed} clips failed (logged above); a rerun tries them again", file=sys.stderr)
    return out_csv


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.teacher",
        description="musicnn's MTT tags for a clip list (run in the musicnn venv).")
    parser.add_argument("clips", type=Path, help="CSV with a 'path' column, relative to its folder")
    parser.add_argument("--jobs", type=int, default=1,
                        help="CPU threads TensorFlow may use (default 1)")
    args = parser.parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    started = time.monotonic()
    out_csv = tag_clips(args.clips, threads=args.jobs)
    print(f"wrote {out_csv} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
