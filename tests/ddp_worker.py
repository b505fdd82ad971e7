"""Run by tests/test_distributed.py under torchrun: trains a tiny model on 2 processes and saves
each process's weights, so the test can compare them."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TINY  # noqa: E402
from egbad_core import distributed, session  # noqa: E402
from egbad_core.config import replace  # noqa: E402

csv, out = sys.argv[1], Path(sys.argv[2])
world, device = distributed.join("cpu")
preset = replace(TINY, train=replace(TINY.train, epochs=2))
trainer = session.make_trainer(session.parse_source(csv, normal_labels="7,8"), out / "m.pt", preset, world=world)
finished = session.run_to_end(session.training(trainer))
state = {f"{name}.{key}": value for name, module in trainer.networks.modules().items()
         for key, value in module.state_dict().items()}
torch.save({"state": state, "reason": finished.reason, "iterations": len(trainer.history.iteration_losses)},
           out / f"rank{world.rank}.pt")
distributed.leave()
