"""Tasks for worker-pool tests, in a module that imports nothing heavy (no torch), so that
a spawned worker is up in a moment, however busy the machine."""
from __future__ import annotations


def stuck_on_three(item: int) -> int:
    """A task whose worker gets stuck on item 3 where no time limit can be checked."""
    import time

    if item == 3:
        time.sleep(600)
    return item * 10
