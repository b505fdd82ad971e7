"""Run by tests/test_distributed.py under torchrun: trains a tiny model on 2 processes, resumes it,
and stops a third run from one process only; saves what each process ended with, so the test can
compare them."""

import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TINY  # noqa: E402
from egbad_core import session
from egbad_core.system import distributed  # noqa: E402
from egbad_core.config import replace  # noqa: E402
from egbad_core.events import IterationEvent  # noqa: E402

csv, out = sys.argv[1], Path(sys.argv[2])
world, device = distributed.join("cpu")
source = session.parse_source(csv, normal_labels="7,8")
preset = replace(TINY, train=replace(TINY.train, epochs=2))


def weights(trainer) -> dict:
    return {f"{name}.{key}": value.clone() for name, module in trainer.networks.items()
            for key, value in module.state_dict().items()}


trainer = session.make_trainer(source, out / "m.pt", preset, world=world)
finished = session.run_to_end(session.training(trainer))
first = {"state": weights(trainer), "reason": finished.reason, "iterations": len(trainer.history.iteration_losses)}
distributed.gather(None, world)  # rank 0's checkpoint is written before anyone reads it

resumed = session.make_trainer(source, out / "resumed.pt", resume=session.load_checkpoint(out / "m.pt"), epochs=3,
                               world=world)
finished = session.run_to_end(session.training(resumed))
second = {"state": weights(resumed), "reason": finished.reason, "iterations": len(resumed.history.iteration_losses)}

stop = threading.Event()
stopping = session.make_trainer(source, out / "stopped.pt", replace(TINY, train=replace(TINY.train, epochs=5)), world=world)
seen = 0
for event in stopping.run(stop):
    if isinstance(event, IterationEvent):
        seen += 1
        if world.rank == 0 and seen == 3:
            stop.set()  # only this process is asked; the other must stop with it
third = {"reason": event.reason, "iterations": len(stopping.history.iteration_losses), "state": weights(stopping)}
torch.save({"first": first, "resumed": second, "stopped": third}, out / f"rank{world.rank}.pt")
distributed.leave()
