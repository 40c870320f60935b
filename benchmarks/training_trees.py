"""Training step time of two (or more) git trees of this repository, alternating runs in separate processes: the
tiny U-Net of each task at 64², batch 32 (the shipped Kolmogorov test set), with the process's freed memory kept
for reuse (``keep``, as the CLI and the job workers run) or as the tree's own ``Trainer`` leaves it (``own``), and
the first losses from the same seed compared across trees. Prints a Markdown table of medians.

    python benchmarks/training_trees.py [--trees 11e255e^ HEAD] [--tasks forecast pointwise generate] [--pairs 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report import main_publishing

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "assets" / "kolmogorov-64-test.nc"
MEMORY = ("own", "keep")
LOSSES = 6


def child(tree: str, memory: str, kind: str, steps: int) -> None:
    """In a fresh process: time ``steps`` optimizer steps (3 times, after the first ``LOSSES``) of ``tree``'s code."""
    sys.path.insert(0, tree)
    import time

    import torch

    if memory == "keep":
        from engine.process import keep_freed_memory
        keep_freed_memory()
    from engine.config import ForecastConfig, ModelConfig, TrainingConfig
    from engine.tasks import make_task
    from engine.training import Trainer

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        task = make_task(kind, path=DATA, forecast=ForecastConfig())
        trainer = Trainer(task, ModelConfig(size="tiny"),
                          TrainingConfig(steps=100_000, batch_size=32, seed=0, grad_clip=1.0), folder)
        if hasattr(trainer, "prepared_model"):
            model = trainer.prepared_model()
        else:  # trees before the training loop's split: the data went to the device in ``fit``
            task.to(trainer.device)
            model = trainer._model()
        losses = [float(trainer.train_step(model)) for _ in range(LOSSES)]
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(steps):
                loss = trainer.train_step(model)
            float(loss)
            seconds.append((time.perf_counter() - start) / steps)
    print(json.dumps({"seconds": statistics.median(seconds), "losses": losses}))


def measure(tree: Path, memory: str, kind: str, steps: int) -> dict:
    command = [sys.executable, __file__, "--child", str(tree), memory, kind, str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


def checkout(revision: str, folder: Path) -> Path:
    """A detached worktree of ``revision`` under ``folder``."""
    path = folder / revision.replace("^", "-parent").replace("/", "-")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), revision], check=True)
    return path


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", nargs="+", default=["11e255e^", "HEAD"])
    parser.add_argument("--tasks", nargs="+", default=["forecast", "pointwise", "generate"])
    parser.add_argument("--pairs", type=int, default=3, help="alternating rounds over every tree and setting")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per timing")
    args = parser.parse_args()
    if args.pairs < 1 or args.steps < 1:
        parser.error("--pairs and --steps must be at least 1")
    with tempfile.TemporaryDirectory(prefix="es-trees-") as scratch:
        trees = {revision: checkout(revision, Path(scratch)) for revision in args.trees}
        try:
            rows = compare(trees, args.tasks, args.pairs, args.steps)
        finally:
            for path in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
    print(f"# tiny U-Net training steps at 64², batch 32, 2 threads: {args.pairs} alternating rounds, medians\n")
    print("| task | tree | freed memory | step, ms | × the first tree's own | first losses as the first tree's |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def compare(trees: dict[str, Path], kinds: list[str], pairs: int, steps: int) -> list[list[str]]:
    rows = []
    for kind in kinds:
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(pairs):
            for revision, path in trees.items():
                for memory in MEMORY:
                    runs.setdefault((revision, memory), []).append(measure(path, memory, kind, steps))
        first = next(iter(trees))
        base = statistics.median(r["seconds"] for r in runs[first, "own"])
        for (revision, memory), results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            same = results[0]["losses"] == runs[first, "own"][0]["losses"]
            rows.append([kind, revision, memory, f"{seconds * 1e3:.0f}", f"{base / seconds:.2f}",
                         "equal" if same else "differ"])
    return rows


if __name__ == "__main__":
    main_publishing("training_trees", main)
