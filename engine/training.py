"""The training loop shared by every task (``engine.tasks``): minimize ``task.loss(net, task.draw(batch, …))``.

AdamW with warm-up and cosine decay, EMA weights for sampling, atomic checkpoints that carry every config and
the task's data statistics, resume from the last checkpoint, progress through a callback. Under ``torchrun`` the
network is wrapped in DistributedDataParallel and every rank trains on its share of the same global batch
(``engine.distributed``); rank 0 alone writes checkpoints and reports. The layers: docs/architecture.md.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch.profiler import record_function

import engine
from engine.checkpoints import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from engine.config import ModelConfig, TrainingConfig, options
from engine.devices import Accelerated, resolve_device
from engine.distributed import World
from engine.errors import EngineError
from engine.files import check_writable
from engine.process import keep_freed_memory


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 5% of steps (at most 200), then cosine decay to 10%."""
    warmup = max(1, min(200, total // 20))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress)))


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """``θ_ema ← d θ_ema + (1 − d) θ`` with d warmed up as min(decay, (1 + step)/(10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - d)


def _quiet(event: dict) -> None:
    """The callback of ranks other than 0: they report nothing."""


class Trainer:
    """One training run of a task's network, writing ``out_dir/checkpoint.pt``; ``run()`` resumes from it. In a
    ``world`` of several processes each trains on its share of the global batch ``training.batch_size``."""

    def __init__(self, task, model: ModelConfig, training: TrainingConfig, out_dir: str | Path,
                 callback: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 world: World = World()):
        if model.kind != "unet":
            raise EngineError("only the 'unet' model is trained; the analytic model needs no training")
        if training.batch_size % world.size:
            raise EngineError(f"--batch-size {training.batch_size} (the global batch) does not split evenly over "
                              f"{world.size} processes; use a multiple of {world.size}")
        self.task, self.model_config, self.training_config = task, options(model), options(training)
        self.training, self.out_dir, self.world = training, Path(out_dir), world
        self.callback = (callback or _quiet) if world.is_main else _quiet
        self.should_stop = should_stop or (lambda: False)
        self.device = world.device(resolve_device(training.device))
        with torch.random.fork_rng(devices=[]):  # seeded initialization without touching the caller's RNG
            torch.manual_seed(training.seed)
            self.net = task.network(model.size).to(self.device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=training.lr, weight_decay=training.weight_decay)
        self.step, self.history = 0, []
        self.generator = torch.Generator(device=self.device).manual_seed(training.seed)  # the same on every rank

    def prepared_model(self) -> torch.nn.Module:
        """The task's data on the device, and the network the loss calls: under the precision asked for and
        channels-last on CUDA (``Accelerated``), in DistributedDataParallel when several processes train (gradients
        averaged over ranks), compiled when asked. Checkpoints keep ``self.net``'s own weights. The process keeps
        freed memory for reuse (``keep_freed_memory``), as the CLI and the job workers do: a tiny forecaster's step
        at 64², batch 32, spends over a quarter of its time in page faults without it (2-core CPU)."""
        cfg, device = self.training, self.device
        keep_freed_memory()
        self.task.to(device)
        model = Accelerated(self.net, device, cfg.precision)
        if self.world.distributed:
            device_ids = [device.index] if device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        return torch.compile(model) if cfg.compile else model

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def _payload(self) -> dict:
        description = self.task.describe()
        configs = {**description["configs"], "model": self.model_config, "training": self.training_config}
        return {**description, "task": self.task.kind, "configs": configs, "step": self.step,
                "model_state": self.net.state_dict(), "ema_state": self.ema.state_dict(),
                "optimizer_state": self.optimizer.state_dict(), "rng_state": self.generator.get_state(),
                "history": self.history, "engine_version": engine.__version__}

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint_path, self.device)
        if state.get("exported"):
            raise EngineError(f"{self.checkpoint_path} is an exported inference-only checkpoint; train into a new "
                              f"folder")
        if (state.get("task", "generate") != self.task.kind or state["data"]["n"] != self.task.describe()["data"]["n"]
                or state["configs"]["model"] != self.model_config):
            raise EngineError(f"{self.checkpoint_path} was trained for another task, on other data or with another "
                              "model; use a new output folder")
        self.net.load_state_dict(state["model_state"])
        self.ema.load_state_dict(state["ema_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.generator.set_state(state["rng_state"].cpu())
        self.step, self.history = state["step"], [list(h) for h in state["history"]]

    def _stop_requested(self, start: float) -> bool:
        """Stopped by the caller or out of time, as rank 0 sees it (every rank stops at the same step)."""
        limit = self.training.max_seconds
        stop = self.should_stop() or (limit is not None and time.monotonic() - start > limit)
        return self.world.agree(stop, self.device)

    def checkpoint_bytes(self) -> int:
        """A checkpoint's size, about: the weights four times (the network, its EMA, Adam's two moments)."""
        return 4 * sum(p.numel() * p.element_size() for p in self.net.parameters())

    def _save(self, path: Path) -> None:
        if self.world.is_main:
            save_checkpoint(self._payload(), path)

    def train_step(self, model: torch.nn.Module) -> torch.Tensor:
        """One optimizer step on this rank's share of a fresh global batch, then the EMA; returns the loss (on the
        device: no host sync)."""
        cfg = self.training
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(self.step, cfg.steps)
        with record_function("draw"):  # the profiler's labels of the step's parts (benchmarks/training.py)
            drawn = self.world.share(self.task.draw(cfg.batch_size, self.generator))
        with record_function("loss"):
            loss = self.task.loss(model, drawn)
        with record_function("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("optimizer"):
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
            self.optimizer.step()
        with record_function("ema"):
            _ema_update(self.ema, self.net, cfg.ema_decay, self.step)
        self.step += 1
        return loss.detach()

    def run(self, resume: bool = True) -> Path:
        """Train to ``training.steps`` (or until stopped or out of time); returns the checkpoint path."""
        if self.world.is_main:
            check_writable(self.out_dir, need=self.checkpoint_bytes(), what=CHECKPOINT_NAME)
        if resume and self.checkpoint_path.exists():
            self._resume()
            self.callback({"kind": "resumed", "step": self.step, "steps": self.training.steps})
        cfg, device, world = self.training, self.device, self.world
        model = self.prepared_model()
        self.callback({"kind": "started", "world_size": world.size, "backend": world.backend,
                       "device": str(device), "step": self.step})
        start, running, count = time.monotonic(), torch.zeros((), device=device), 0
        last_log, last_step = start, self.step
        while self.step < cfg.steps:
            running, count = running + self.train_step(model), count + 1
            at_log = self.step % cfg.log_every == 0 or self.step == cfg.steps
            stop = self._stop_requested(start) if at_log or not world.distributed else False
            if at_log or stop:
                now = time.monotonic()
                mean_loss = float(world.mean(running)) / count
                if not math.isfinite(mean_loss):
                    self._save(self.out_dir / "diverged.pt")
                    raise EngineError(f"training diverged at step {self.step} (loss {mean_loss}); "
                                      "lower the learning rate or check the data")
                self.history.append([self.step, mean_loss])
                self.callback({"kind": "progress", "step": self.step, "steps": cfg.steps, "loss": mean_loss,
                               "lr": self.optimizer.param_groups[0]["lr"],
                               "steps_per_second": (self.step - last_step) / max(now - last_log, 1e-9)})
                running, count, last_log, last_step = torch.zeros((), device=device), 0, now, self.step
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or stop:
                self._save(self.checkpoint_path)
                self.callback({"kind": "checkpoint", "step": self.step, "path": str(self.checkpoint_path)})
            if stop:
                break
        return self.checkpoint_path
