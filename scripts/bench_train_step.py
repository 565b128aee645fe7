"""One training step of the bundled network, eager and through torch.compile, side by side.

    python scripts/bench_train_step.py [--rounds 5] [--steps 10] [--batch 64] [--threads N]

Both networks start from the same weights and take the same augmented batches of the
bundled model's input shape; rounds alternate between them, so a busy machine slows both
alike. Prints the best and median milliseconds per step and their ratio. `tagger train
--compile` (and so `make weights`) trains the compiled way.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from tagger.config import FrontendConfig, ModelConfig
from tagger.models import Tagger
from tagger.train import mix_batch, spec_augment, training_forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per round and way")
    ap.add_argument("--batch", type=int, default=64, help="the trainer's default batch size")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (the trainer uses every core)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frontend = FrontendConfig()
    labels = tuple(f"label{i}" for i in range(18))  # the bundled model's 17 instruments and voice
    x = torch.randn(args.batch, 1, frontend.n_mels, frontend.n_frames)  # (batch, 1, mels, frames)
    y = (torch.rand(args.batch, len(labels)) < 0.2).float()
    rng = torch.Generator().manual_seed(0)

    ways = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        torch.manual_seed(0)
        net = Tagger(frontend, ModelConfig("resnet", labels, width=32)).classifier.train()
        ways[name] = (training_forward(net, compiled), torch.optim.AdamW(net.parameters(), lr=1e-3))

    def step(name: str) -> None:
        forward, opt = ways[name]
        xb, yb = mix_batch(x, y, rng, 0.5)
        loss = F.binary_cross_entropy_with_logits(forward(spec_augment(xb, rng)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for name in ways:  # the first compiled step compiles
        t0 = time.perf_counter()
        for _ in range(3):
            step(name)
        print(f"{name:9s} first 3 steps (warm-up, compiling): {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name in ways:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            times[name].append((time.perf_counter() - t0) / args.steps)
    print(f"batch {args.batch}, {args.threads} threads, {args.rounds} rounds of {args.steps} steps each way")
    for name, ts in times.items():
        print(f"{name:9s} best {1000 * min(ts):7.1f} ms/step, median {1000 * statistics.median(ts):7.1f}")
    print(f"compiled / eager speed: best {min(times['eager']) / min(times['compiled']):.2f}x, "
          f"median {statistics.median(times['eager']) / statistics.median(times['compiled']):.2f}x")


if __name__ == "__main__":
    main()
