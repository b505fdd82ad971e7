"""EGBAD training: the loop, resuming, and what a checkpoint is made of.

One settings object, a ``Preset`` (the recipe: model, train, score, normalisation), comes from the
panel or the command line, is what the Trainer trains with (its model shape set to the data's
channels and size) and goes into every checkpoint as it is; a resumed run takes it back from there.

``Trainer.run()`` is a task in the sense of ``events``: it yields an event after every iteration
and at every epoch end; each yield is a safe place to stop, and a stop request (a
``threading.Event`` set from any thread) is honoured before the next iteration starts, with a
"stopped" checkpoint written. The losses are in ``model.losses``, the collapse watch in ``collapse``.

Per batch, in the seed's order: (1) D on real pairs (x, E(x)) labelled 1 and fake pairs
(G(z), z) labelled 0, with G and E outside the graph; (2) G with a fresh z, fake pairs
labelled 1; (3) E with real pairs labelled 0. Adam with the configured betas.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Generator, Union

import numpy as np
import torch

from ..config import Preset, autocast
from ..data.images import ImageSet
from ..errors import EgbadError
from ..events import EpochEvent, FinishedEvent, IterationEvent, PreviewEvent, WarningEvent
from ..model import losses
from ..model.checkpoints import Checkpoint, save_checkpoint
from ..model.networks import Networks
from ..model.references import PatchReference, Reference, ScoreStats
from ..score.whole_reference import MEMORY_IMAGES as REFERENCE_IMAGES
from ..score.whole_reference import build_reference
from ..system.device import resolve_device
from ..system.files import ensure_writable_folder
from .collapse import CollapseWatch
from .crops import CropSampler, crops_each
from .fit import fit_inputs, reconstruction_fit
from .history import Clock, History
from .references import patch_reference
from .shapes import check_patch_fits, model_for_data
from .updates import adam, frozen
from ..system.distributed import ALONE, World, agree, check_fits, parallel, share_buffers

Event = Union[IterationEvent, EpochEvent, PreviewEvent, WarningEvent, FinishedEvent]

# Checkpoints along the way take at most this share of the training time: one is written after an
# epoch only once the training since the last one (or the start) has cost 1/share times what writing
# one costs; always after the last epoch and at a stop. Before the first is written its cost is
# estimated: the reference is one forward pass over its images, which took 0.19–0.23 of a training
# epoch over as many images (seed and default presets, demo). Each checkpoint is complete (networks,
# optimisers, the score's reference), so after a kill -9 the newest one scores and resumes; it is at
# most about 1/share checkpoint-costs of training old.
CHECKPOINT_SHARE = 0.05
FORWARD_SHARE = 0.2  # a reference image's cost, as a share of a training image's


class Trainer:
    """Holds the networks, optimisers and history of one model while it trains."""

    def __init__(
        self,
        train_set: ImageSet,
        settings: Preset,
        checkpoint_path: str | Path | None = None,
        data_info: dict[str, Any] | None = None,
        world: World = ALONE,
    ) -> None:
        settings.train.validate()
        settings.score.validate()
        if len(train_set) < 2:
            raise EgbadError(f"{train_set.source} has {len(train_set)} training image; at least 2 are needed.")
        self.device = resolve_device(settings.train.device)
        self.world = world
        check_fits(world, len(train_set), settings.train.batch_size)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path and world.main else None  # rank 0 writes
        if self.checkpoint_path is not None:
            ensure_writable_folder(self.checkpoint_path.parent)  # fail now, not after an hour
        model_config = model_for_data(settings, train_set)
        if model_config.patch_model:
            check_patch_fits(train_set, model_config.image_size)
        self.settings = replace(settings, model=model_config)
        torch.manual_seed(settings.train.seed)
        self.networks = Networks(model_config).place(self.device, settings.train.channels_last)
        self.rng = torch.Generator().manual_seed(self.settings.train.seed)
        self.epoch = 0
        self.history = History()
        self.data_info = dict(data_info or {})
        self.images = train_set.pixels.to(self.device)  # as loaded (uint8 for image folders): normalised per batch
        self.train_set = train_set
        self.crops = CropSampler(model_config.image_size) if model_config.patch_model else None
        self._optimisers()
        # What each update runs the network it trains through: across processes, a wrapper that
        # averages its gradients (distributed.py); alone, the network itself.
        n = self.networks
        self.trained = {name: parallel(module, world, self.device) for name, module in n.items()}
        self._batch_count = 0  # images in the current batch, all processes' shares together
        preview = min(self.settings.train.preview_images, len(train_set))
        self.fixed_z = torch.randn(
            preview, model_config.code_size, generator=torch.Generator().manual_seed(self.settings.train.seed + 1)
        ).to(self.device)
        patch = model_config.image_size
        self.preview_images = self.inputs(self.images[:preview, :, :patch, :patch])  # the whole image, or a patch
        self.last_checkpoint: str | None = None
        self.last_fit: float | None = None  # R² of the newest checkpoint's reconstructions
        self._fit: tuple[int, float | None] | None = None  # (iterations trained, R²) of the last measure
        self._save_seconds = 0.0  # what the last checkpoint cost to write
        self._trained_since_save = 0.0

    @classmethod
    def resume(
        cls,
        checkpoint: Checkpoint,
        train_set: ImageSet,
        epochs: int | None = None,
        checkpoint_path: str | Path | None = None,
        device: str | None = None,
        world: World = ALONE,
    ) -> "Trainer":
        """Continue a checkpoint's run with its optimiser and RNG states and its history.

        ``epochs`` is the total to reach, refinement epochs included (default: the checkpoint's own).
        """
        train = checkpoint.settings.train
        changes: dict[str, Any] = {}
        if epochs is not None:  # a total: more refinement once refining, else more GAN epochs
            if checkpoint.epoch > train.epochs:
                changes["refine_epochs"] = max(0, epochs - train.epochs)
            else:
                changes["epochs"] = max(1, epochs - train.refine_epochs)
        if device is not None:
            changes["device"] = device
        settings = replace(checkpoint.settings, train=replace(train, **changes))
        if train_set.channels != checkpoint.networks.config.channels:
            raise EgbadError(
                f"{train_set.source} has {train_set.channels}-channel images; the checkpoint was trained on "
                f"{checkpoint.networks.config.channels}-channel images."
            )
        trainer = cls(train_set, settings, checkpoint_path, checkpoint.data, world)
        trainer.networks.load_state_dict(checkpoint.networks.state_dict())
        if checkpoint.optimiser_states:
            for name, optimiser in trainer.optimisers.items():
                if name in checkpoint.optimiser_states:
                    optimiser.load_state_dict(checkpoint.optimiser_states[name])
        if checkpoint.rng_state is not None:
            trainer.rng.set_state(checkpoint.rng_state)
        trainer.epoch = checkpoint.epoch
        trainer.history.iteration_losses = [tuple(map(float, row)) for row in checkpoint.iteration_losses]
        trainer.history.epoch_summaries = list(checkpoint.epoch_summaries)
        return trainer

    def _optimisers(self) -> None:
        c = self.settings.train
        betas = (c.beta1, c.beta2)
        n = self.networks
        self.optimisers = {
            "generator": adam(n.generator.parameters(), c.lr_g, betas, self.device),
            "encoder": adam(n.encoder.parameters(), c.lr_e, betas, self.device),
            "discriminator": adam(n.discriminator.parameters(), c.lr_d, betas, self.device),
            "refine": adam([*n.encoder.parameters(), *(n.generator.parameters() if c.refine_generator else ())],
                           c.refine_lr, (0.9, 0.999), self.device),
        }

    # ------------------------------------------------------------------------------------

    def inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels as the networks take them: normalised float32 in the networks' memory layout."""
        return self.networks.layout(self.settings.normalisation.apply(pixels).contiguous())

    def samples_per_epoch(self) -> int:
        """Images an epoch trains on: the training images, or for a patch model their crops."""
        return len(self.train_set) * (self.crops_each() if self.crops is not None else 1)

    def crops_each(self) -> int:
        """Crops an epoch takes of each training image (``crops.crops_each``)."""
        return crops_each(self.settings, len(self.train_set))

    def epoch_samples(self) -> torch.Tensor:
        """What this epoch trains on: the images themselves, or fresh random crops of them."""
        if self.crops is None:
            return self.images
        return self.crops.epoch(self.images, self.crops_each(), self.rng)

    def batches(self) -> list[torch.Tensor]:
        """This epoch's shuffled index batches; a last batch too small to give each process two
        images (alone: a batch of one) joins the one before it, because BatchNorm cannot normalise
        a single image in training mode."""
        order = torch.randperm(self.samples_per_epoch(), generator=self.rng)
        batches = list(order.split(self.settings.train.batch_size))
        if len(batches) > 1 and batches[-1].numel() < 2 * self.world.size:
            last = batches.pop()
            batches[-1] = torch.cat([batches[-1], last])
        return batches

    def step(self, x: torch.Tensor) -> tuple[float, float, float]:
        """One iteration of the three updates on a batch; returns the D, G and E losses."""
        n = self.networks
        size = x.shape[0]
        latent = n.config.code_size
        cycle = self.settings.train.cycle_weight

        # (1) D: real pairs (x, E(x)) → 1, fake pairs (G(z), z) → 0. G and E only supply
        # inputs here, so they run without autograd (the seed back-propagated into them).
        z = self._noise(size, latent)
        with torch.no_grad():
            fake = n.generator(z)
            z_real = n.encoder(x)
        # Each half back-propagated before the other runs: the gradient is the same sum, and only
        # one of D's two graphs is held at a time.
        trained_d = self.trained["discriminator"]
        d_real = losses.discriminator_real(trained_d(x, z_real)[0], self.settings.train.real_label)
        self._backward(d_real)
        d_fake = losses.discriminator_fake(trained_d(fake, z)[0])
        self._update("discriminator", d_fake)
        d_loss = d_real.detach() + d_fake.detach()

        # (2) G with a fresh z; D's weights need no gradient for this step.
        with frozen(n.discriminator):
            z = self._noise(size, latent)
            fake_logit, _ = n.discriminator(self.trained["generator"](z), z)
            g_loss = losses.generator_loss(fake_logit, n.generator(z_real) if cycle else None, x, cycle)
            self._update("generator", g_loss)

            # (3) E: real pairs labelled 0, so E learns to make them look like fakes.
            z_code = self.trained["encoder"](x)
            real_logit, _ = n.discriminator(x, z_code)
            with frozen(n.generator):
                e_loss = losses.encoder_loss(real_logit, n.generator(z_code) if cycle else None, x, cycle)
            self._update("encoder", e_loss)
        return d_loss.item(), g_loss.item(), e_loss.item()

    def refine_step(self, x: torch.Tensor) -> float:
        """f-AnoGAN's second stage for one batch: E learns (and G with it, where
        ``refine_generator`` is set) so that G(E(x)) ≈ x and D sees the same features in x and in
        its reconstruction. D stays fixed, in eval mode; so does G where it does not learn."""
        n = self.networks
        learning_g = self.settings.train.refine_generator
        with frozen(n.discriminator), (nullcontext() if learning_g else frozen(n.generator)):
            z = self.trained["encoder"](x)
            reconstruction = (self.trained["generator"] if learning_g else n.generator)(z)
            weight = self.settings.train.refine_feature_weight
            real_features = n.discriminator(x, z)[1] if weight else None
            fake_features = n.discriminator(reconstruction, z)[1] if weight else None
            loss = losses.refinement_loss(reconstruction, x, fake_features, real_features, weight)
            self._update("refine", loss)
        return loss.item()

    def _noise(self, size: int, latent: int) -> torch.Tensor:
        """Latent codes for this process's share of the batch: drawn for the whole batch, so every
        process's generator stays in step with the others' (and a lone process is unchanged)."""
        if self.world.alone:
            return torch.randn(size, latent, generator=self.rng).to(self.device, non_blocking=True)
        z = torch.randn(self._batch_count, latent, generator=self.rng)[self.world.rank :: self.world.size]
        return z.to(self.device, non_blocking=True)

    def _backward(self, loss: torch.Tensor) -> None:
        with autocast(self.device.type, False):  # backward in the dtypes the forward pass chose
            loss.backward()

    def _update(self, name: str, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (onto any gradient already there) and step ``name``'s optimiser."""
        optimiser = self.optimisers[name]
        self._backward(loss)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)  # gradients freed now, not held until the next step

    # ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> Generator[Event, None, FinishedEvent]:
        """Train up to ``settings.train.total_epochs`` epochs in total, yielding events as it goes:
        the GAN epochs, then any refinement epochs (where D and G losses are NaN: not trained).

        Always ends with one FinishedEvent, whatever the reason, which is also the task's result.
        """
        stop = stop or threading.Event()
        epochs = self.settings.train.total_epochs
        clock = Clock(time.perf_counter(), max(0, epochs - self.epoch) * self.batches_per_epoch())
        watch = CollapseWatch(epochs)
        for epoch in range(self.epoch + 1, epochs + 1):
            refining = self._set_phase(epoch)
            epoch_start = time.perf_counter()
            outcome = yield from self._epoch(epoch, refining, stop, clock)
            if isinstance(outcome, FinishedEvent):
                yield outcome
                return outcome
            preview = self.preview(epoch)
            yield self._end_epoch(epoch, outcome, time.perf_counter() - epoch_start, clock)
            yield preview
            if not refining:
                yield from watch.check(epoch, float(outcome[0]), preview.originals, preview.reconstructions, preview.fit)
        finished = self._finish("completed", clock, save=False)
        yield finished
        return finished

    def _epoch(self, epoch: int, refining: bool, stop: threading.Event, clock: Clock):
        """One epoch's iterations as events; the mean losses per batch (not per 128 images as the
        seed), or the FinishedEvent of a stop or a divergence."""
        sums = np.zeros(3)
        samples = self.epoch_samples()
        batches = self.batches()
        for number, index in enumerate(batches, 1):
            if agree(self.world, stop.is_set(), ())[0]:
                return self._finish("stopped", clock, save=clock.iterations > 0)
            self._batch_count = index.numel()
            x = self.inputs(samples[index[self.world.rank :: self.world.size].to(self.device)])
            with autocast(self.device.type, self.settings.train.mixed_precision):
                losses = (math.nan, math.nan, self.refine_step(x)) if refining else self.step(x)
            losses = agree(self.world, False, losses)[1]  # every process sees, and decides on, the same
            if not all(math.isfinite(v) for v in (losses[2:] if refining else losses)):
                return self._diverged(epoch, number, losses, clock)
            sums += losses
            clock.count(index.numel())
            self.history.iteration_losses.append(losses)
            yield IterationEvent(epoch, number, len(batches), len(self.history.iteration_losses), *losses,
                                 clock.rate(), clock.eta())
        return sums / len(batches)

    def _end_epoch(self, epoch: int, means: np.ndarray, seconds: float, clock: Clock) -> EpochEvent:
        """The epoch's summary into the history, one model on every process, and its checkpoint where due."""
        self.epoch = epoch
        summary = {"epoch": epoch, "d_loss": means[0], "g_loss": means[1], "e_loss": means[2], "seconds": seconds}
        self.history.epoch_summaries.append({k: float(v) for k, v in summary.items()})
        share_buffers(list(self.networks.values()), self.world)
        self._trained_since_save += seconds
        if not self._save_seconds:  # none written yet: estimate what one will cost
            share = min(1.0, REFERENCE_IMAGES / max(1, len(self.train_set)))
            self._save_seconds = FORWARD_SHARE * share * seconds
        epochs = self.settings.train.total_epochs
        checkpoint = self.save(final=True) if epoch == epochs else self._save_if_due()
        return EpochEvent(epoch, epochs, *map(float, means), seconds, clock.rate(), clock.eta(), checkpoint)

    def _set_phase(self, epoch: int) -> bool:
        """Training modes for the epoch's phase; True in the refinement stage."""
        refining = epoch > self.settings.train.epochs
        self.networks.train()
        if refining:
            self.networks.generator.train(self.settings.train.refine_generator)
            self.networks.discriminator.eval()
        return refining

    def batches_per_epoch(self) -> int:
        n, b = self.samples_per_epoch(), self.settings.train.batch_size
        return math.ceil(n / b) - (1 if n > b and 0 < n % b < 2 * self.world.size else 0)

    def _finish(self, reason: str, clock: Clock, save: bool) -> FinishedEvent:
        share_buffers(list(self.networks.values()), self.world)
        if save:
            self.save(stopped=True)
        where = f" Checkpoint: {self.last_checkpoint}." if self.last_checkpoint else ""
        text = {
            "completed": f"Training finished after {self.epoch} epochs.{where}",
            "stopped": f"Training stopped at your request after {self.epoch} complete epochs.{where}",
        }[reason]
        return FinishedEvent(reason, self.epoch, clock.elapsed(), clock.rate(), self.last_checkpoint, text, self.last_fit)

    def _diverged(self, epoch: int, batch: int, losses, clock: Clock) -> FinishedEvent:
        names = [name for name, value in zip(("D", "G", "E"), losses) if not math.isfinite(value)]
        kept = (
            f" The last good checkpoint (epoch {self.epoch}) is kept at {self.last_checkpoint}."
            if self.last_checkpoint
            else " No checkpoint had been written yet."
        )
        message = (
            f"Training diverged at epoch {epoch}, batch {batch}: the {'/'.join(names)} loss became "
            f"{'NaN' if any(math.isnan(v) for v in losses) else 'infinite'}.{kept} Lower the learning rates "
            "or use the default preset."
        )
        return FinishedEvent("diverged", self.epoch, clock.elapsed(), clock.rate(), self.last_checkpoint, message,
                             self.last_fit)

    # ------------------------------------------------------------------------------------

    @torch.no_grad()
    def preview(self, epoch: int) -> PreviewEvent:
        """G(fixed z), and the preview images beside G(E(x)), in [0, 1]: the epoch's pictures."""
        n = self.networks
        n.eval()
        try:
            generated = n.generator(self.fixed_z)
            reconstructions = n.generator(n.encoder(self.preview_images))
        finally:
            n.train()
        unit = self._to_unit
        return PreviewEvent(epoch, unit(generated), unit(self.preview_images), unit(reconstructions),
                            self.reconstruction_fit())

    def reconstruction_fit(self) -> float | None:
        """R² of G(E(x)) over a seeded sample of the training inputs (``train.fit``), measured once
        per state of the networks: an epoch's preview and its checkpoint share one figure."""
        trained = len(self.history.iteration_losses)
        if self._fit is None or self._fit[0] != trained:
            pixels = fit_inputs(self.images, self.settings.model.image_size, self.crops is not None, self.settings.train.seed)
            self._fit = (trained, reconstruction_fit(self.networks, pixels, self.inputs, self.settings.score.batch_size))
        return self._fit[1]

    def _to_unit(self, images: torch.Tensor) -> np.ndarray:
        m = self.settings.normalisation
        return (images * m.std + m.mean).clamp(0, 1).float().cpu().numpy()

    def reference(self, final: bool = True) -> tuple[Reference | PatchReference | None, np.ndarray]:
        """What the score measures against, and the training images' own scores: the yardstick
        for thresholds and readable scores. A patch model's checkpoints along the way take a
        quicker memory bank than its ``final`` one."""
        if self.crops is None:
            settings = self.settings
            return build_reference(self.networks, self.images, settings.normalisation, settings.score, settings.train.seed)
        return patch_reference(self.networks, self.images, self.settings, thorough=final)

    def checkpoint(self, stopped: bool = False, final: bool = True) -> Checkpoint:
        """Everything needed to score, resume and show this model as it is now."""
        reference, training_scores = self.reference(final or stopped)
        self.last_fit = self.reconstruction_fit()
        return Checkpoint(
            networks=self.networks,
            settings=self.settings,
            epoch=self.epoch,
            iteration_losses=np.asarray(self.history.iteration_losses, dtype=np.float32).reshape(-1, 3),
            epoch_summaries=list(self.history.epoch_summaries),
            train_stats=ScoreStats.of(training_scores, held_out=self.crops is not None),
            reference=reference,
            data=self.data_info,
            optimiser_states={k: o.state_dict() for k, o in self.optimisers.items()},
            rng_state=self.rng.get_state(),
            notes={"stopped_mid_epoch": stopped, "reconstruction_r2": self.last_fit},
        )

    def save(self, stopped: bool = False, final: bool = True) -> str | None:
        """Write the checkpoint atomically, if the trainer has a path; the path written."""
        if self.checkpoint_path is None:
            return None
        started = time.perf_counter()
        save_checkpoint(self.checkpoint_path, self.checkpoint(stopped, final))
        self._save_seconds, self._trained_since_save = time.perf_counter() - started, 0.0
        self.last_checkpoint = str(self.checkpoint_path)
        return self.last_checkpoint

    def _save_if_due(self) -> str | None:
        """An epoch's checkpoint, where CHECKPOINT_SHARE allows one now; None otherwise."""
        if self._trained_since_save * CHECKPOINT_SHARE < self._save_seconds:
            return None
        return self.save(final=False)
