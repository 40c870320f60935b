"""One rank of the data-parallel training test (test_distributed.py), started by torchrun: trains a tiny
generator on the dataset ``argv[1]`` into the folder ``argv[2]`` for ``argv[3]`` steps and saves this rank's
parameters after every optimizer step, and its loss history, to ``argv[2]/rank<r>.pt``."""
import sys
from pathlib import Path

import torch

from engine.config import ModelConfig, NoiseConfig, ScheduleConfig, TrainingConfig
from engine.data.fields import load_fields
from engine.distributed import joined
from engine.tasks.generative import GenerativeTask
from engine.training import Trainer


def main(data: str, out: str, steps: int) -> None:
    task = GenerativeTask(load_fields(data), NoiseConfig(), ScheduleConfig())
    training = TrainingConfig(steps=steps, batch_size=8, log_every=1, device="cpu")
    with joined(torch.device("cpu")) as world:
        trainer = Trainer(task, ModelConfig(size="tiny"), training, out, world=world)
        after_each_step = []

        def record_parameters() -> bool:  # with log_every = 1 every rank asks this after every optimizer step
            after_each_step.append(torch.cat([p.detach().flatten() for p in trainer.net.parameters()]))
            return False

        trainer.should_stop = record_parameters
        trainer.run()
        Path(out).mkdir(parents=True, exist_ok=True)  # rank 0's checkpoint may not have made it yet
        torch.save({"parameters": torch.stack(after_each_step), "history": trainer.history, "size": world.size,
                    "backend": world.backend}, f"{out}/rank{world.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
