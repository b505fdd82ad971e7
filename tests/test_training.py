import copy
import threading

import numpy as np
import pytest
import torch

from conftest import TINY, write_mnist_csv
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.config import replace
from egbad_core.data.sources import DataSource
from egbad_core.data.loading import load_training_set
from egbad_core.errors import EgbadError
from egbad_core.events import EpochEvent, FinishedEvent, IterationEvent, PreviewEvent
from egbad_core.train.trainer import Trainer


def tiny_set(tmp_path, count=16):
    csv = write_mnist_csv(tmp_path / "t.csv", [7, 8] * (count // 2) + [7] * (count % 2))
    return load_training_set(DataSource.parse(str(csv)), TINY.model.image_size)


def test_a_two_iteration_run_yields_losses_an_epoch_and_a_finish(tmp_path):
    trainer = Trainer(tiny_set(tmp_path), TINY, checkpoint_path=tmp_path / "m.pt")
    events = list(trainer.run())
    iterations = [e for e in events if isinstance(e, IterationEvent)]
    assert len(iterations) == 2  # 16 images, batch 8
    assert all(np.isfinite([e.d_loss, e.g_loss, e.e_loss]).all() for e in iterations)
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert epoch.d_loss == pytest.approx(np.mean([e.d_loss for e in iterations]))  # per batch, not / 128
    preview = next(e for e in events if isinstance(e, PreviewEvent))
    assert preview.generated.shape == (4, 1, 16, 16) and preview.reconstructions.shape == (4, 1, 16, 16)
    assert isinstance(events[-1], FinishedEvent) and events[-1].reason == "completed"
    assert load_checkpoint(tmp_path / "m.pt").epoch == 1


def test_stop_ends_within_one_iteration_and_keeps_a_checkpoint(tmp_path):
    trainer = Trainer(tiny_set(tmp_path, 40), replace(TINY, train=replace(TINY.train, epochs=3)), checkpoint_path=tmp_path / "m.pt")
    stop = threading.Event()
    seen = []
    for event in trainer.run(stop):
        seen.append(event)
        if isinstance(event, IterationEvent):
            stop.set()
    assert [type(e).__name__ for e in seen] == ["IterationEvent", "FinishedEvent"]
    assert seen[-1].reason == "stopped"
    assert load_checkpoint(tmp_path / "m.pt").notes["stopped_mid_epoch"] is True


def test_a_last_batch_of_one_joins_the_batch_before_it(tmp_path):
    trainer = Trainer(tiny_set(tmp_path, 17), TINY)
    sizes = [len(b) for b in trainer.batches()]
    assert sizes == [8, 9]
    assert sorted(torch.cat(trainer.batches()).tolist()) == list(range(17))
    events = list(trainer.run())  # would raise in BatchNorm1d on a batch of one
    assert events[-1].reason == "completed"


def test_non_finite_losses_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path, monkeypatch):
    from egbad_core.train import trainer as training

    monkeypatch.setattr(training, "CHECKPOINT_SHARE", 1e9)  # a checkpoint after every epoch
    trainer = Trainer(tiny_set(tmp_path), replace(TINY, train=replace(TINY.train, epochs=2)), checkpoint_path=tmp_path / "m.pt")
    events = trainer.run()
    for event in events:
        if isinstance(event, EpochEvent):
            break
    before = (tmp_path / "m.pt").read_bytes()
    monkeypatch.setattr(trainer, "step", lambda x: (float("nan"), 1.0, 1.0))
    finished = [e for e in events if isinstance(e, FinishedEvent)][0]
    assert finished.reason == "diverged"
    assert "D loss became NaN" in finished.message and "epoch 1" in finished.message
    assert (tmp_path / "m.pt").read_bytes() == before


def test_the_d_step_leaves_g_and_e_without_gradients(tmp_path):
    trainer = Trainer(tiny_set(tmp_path), TINY)
    x = trainer.inputs(trainer.images[:8])
    calls = []
    original = trainer._update

    def spy(name, loss):
        if name == "discriminator":
            loss.backward(retain_graph=True)
            calls.append([p.grad for m in (trainer.networks.generator, trainer.networks.encoder) for p in m.parameters()])
            for p in trainer.networks.discriminator.parameters():
                p.grad = None
        original(name, loss)

    trainer._update = spy
    trainer.step(x)
    assert calls and all(g is None for g in calls[0])


def test_the_d_steps_two_halves_give_the_gradient_of_their_sum(tmp_path):
    """The D step back-propagates its real and fake halves one after the other (less memory);
    the gradient must be the straightforward one of the summed loss."""
    trainer = Trainer(tiny_set(tmp_path), replace(TINY, model=replace(TINY.model, spectral_norm=True)))
    x = trainer.inputs(trainer.images[:8])
    n = trainer.networks
    before = copy.deepcopy(n.discriminator)
    generator, encoder = copy.deepcopy(n.generator), copy.deepcopy(n.encoder)
    noise_state = trainer.rng.get_state()
    captured = {}
    optimiser = trainer.optimisers["discriminator"]
    step = optimiser.step

    def capture():
        captured.update({name: p.grad.clone() for name, p in n.discriminator.named_parameters()})
        step()

    optimiser.step = capture
    trainer.step(x)

    z = torch.randn(8, TINY.model.latent_size, generator=torch.Generator().set_state(noise_state))
    with torch.no_grad():
        fake, z_real = generator(z), encoder(x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    loss = bce(before(x, z_real)[0], torch.full((8,), trainer.settings.train.real_label)) + bce(
        before(fake, z)[0], torch.zeros(8)
    )
    loss.backward()
    expected = dict(before.named_parameters())
    assert captured.keys() == expected.keys()
    for name, grad in captured.items():
        assert torch.allclose(grad, expected[name].grad, atol=1e-6, rtol=1e-4), name


def test_same_seed_same_losses(tmp_path):
    data = tiny_set(tmp_path)
    first = [e.d_loss for e in Trainer(data, TINY).run() if isinstance(e, IterationEvent)]
    second = [e.d_loss for e in Trainer(data, TINY).run() if isinstance(e, IterationEvent)]
    assert first == second


def test_unwritable_checkpoint_folder_is_reported_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EgbadError, match="cannot be written"):
        Trainer(tiny_set(tmp_path), TINY, checkpoint_path=blocker / "sub" / "m.pt")


def test_cuda_asked_for_without_cuda_is_a_plain_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EgbadError, match="no CUDA device"):
        Trainer(tiny_set(tmp_path), replace(TINY, train=replace(TINY.train, device="cuda")))


def test_the_refinement_stage_lowers_the_training_residual(tmp_path):
    from egbad_core.score.whole import score_images

    preset = replace(TINY, train=replace(TINY.train, epochs=1, refine_epochs=10, refine_lr=1e-2))
    trainer = Trainer(tiny_set(tmp_path, 32), preset)

    def residual() -> float:
        return float(score_images(trainer.networks, trainer.images, trainer.settings.normalisation, keep_images=False).residual.mean())

    before = None
    events = []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, EpochEvent) and event.epoch == 1:
            before = residual()
    assert events[-1].reason == "completed" and events[-1].epochs_done == 11
    assert residual() < 0.97 * before  # a tiny G after one epoch bounds how far E can go
    refine_iterations = [e for e in events if isinstance(e, IterationEvent) and e.epoch > 1]
    assert refine_iterations and all(np.isnan(e.d_loss) and np.isfinite(e.e_loss) for e in refine_iterations)


def test_refinement_leaves_g_and_d_untouched(tmp_path):
    preset = replace(TINY, train=replace(TINY.train, epochs=1, refine_epochs=1))
    trainer = Trainer(tiny_set(tmp_path), preset)
    events = trainer.run()
    for event in events:
        if isinstance(event, EpochEvent):
            break
    frozen = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in trainer.networks.items() if name != "encoder"}
    list(events)
    for name, state in frozen.items():
        for key, value in trainer.networks[name].state_dict().items():
            assert torch.equal(state[key], value), f"{name}.{key} changed during refinement"


def test_refinement_with_the_generator_trains_g_with_e_and_leaves_d_alone(tmp_path):
    preset = replace(TINY, train=replace(TINY.train, epochs=1, refine_epochs=2, refine_generator=True, refine_lr=1e-2))
    trainer = Trainer(tiny_set(tmp_path), preset)
    events = trainer.run()
    for event in events:
        if isinstance(event, EpochEvent):
            break
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in trainer.networks.items()}
    fit_before = trainer.reconstruction_fit()
    list(events)
    changed = {name: any(not torch.equal(before[name][k], v) for k, v in m.state_dict().items())
               for name, m in trainer.networks.items()}
    assert changed == {"generator": True, "encoder": True, "discriminator": False}
    assert trainer.reconstruction_fit() > fit_before  # G(E(x)) follows x better for it


def test_refinement_without_the_feature_match_is_the_plain_error_and_never_runs_d(tmp_path, monkeypatch):
    """κ 0 (the patch preset's): the stage's loss is G(E(x))'s mean squared error alone; D, whose
    features had outweighed the pixels tenfold, is not run at all."""
    import torch.nn.functional as F

    preset = replace(TINY, train=replace(TINY.train, epochs=1, refine_epochs=1, refine_generator=True,
                                         refine_feature_weight=0.0))
    trainer = Trainer(tiny_set(tmp_path), preset)
    calls = []
    monkeypatch.setattr(trainer.networks.discriminator, "forward", lambda *a: calls.append(a))
    x = trainer.inputs(trainer.images[:8])
    trainer._set_phase(2)
    with torch.no_grad():
        expected = F.mse_loss(trainer.networks.generator(trainer.networks.encoder(x)), x).item()
    assert trainer.refine_step(x) == pytest.approx(expected, rel=1e-5) and not calls


def test_the_fast_memory_layout_gives_the_same_losses_and_scores(tmp_path):
    from egbad_core.score.whole import score_images

    data = tiny_set(tmp_path)
    results = []
    for channels_last in (False, True):
        trainer = Trainer(data, replace(TINY, train=replace(TINY.train, channels_last=channels_last)))
        losses = [(e.d_loss, e.g_loss, e.e_loss) for e in trainer.run() if isinstance(e, IterationEvent)]
        scores = score_images(trainer.networks, trainer.images, trainer.settings.normalisation, keep_images=False).score
        results.append((np.array(losses), scores))
    assert np.allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    assert np.allclose(results[0][1], results[1][1], rtol=1e-3)  # Adam carries rounding into the weights


def test_the_collapse_watch_explains_a_winning_discriminator_and_alike_reconstructions():
    from egbad_core.train.collapse import CollapseWatch

    rng = np.random.default_rng(0)
    originals = rng.random((6, 1, 8, 8))
    varied = rng.random((6, 1, 8, 8))
    alike = np.repeat(varied[:1], 6, axis=0)
    watch = CollapseWatch()
    assert watch.check(1, 0.7, originals, alike) == []  # a fresh G is allowed its blur
    assert watch.check(3, 0.7, originals, varied) == []
    warnings = watch.check(4, 1e-4, originals, alike)
    assert {w.kind for w in warnings} == {"discriminator", "alike"}
    assert all(w.message and w.epoch == 4 for w in warnings)
    assert watch.check(5, 1e-4, originals, alike) == []  # said once, not every epoch


def test_the_collapse_watch_says_once_when_the_reconstructions_explain_less_than_a_fifth():
    from egbad_core.train.collapse import CollapseWatch

    rng = np.random.default_rng(0)
    originals, reconstructions = rng.random((6, 1, 8, 8)), rng.random((6, 1, 8, 8))
    watch = CollapseWatch(epochs=8)
    assert watch.check(3, 0.7, originals, reconstructions, fit=-1.3) == []  # G is still learning to draw
    assert watch.check(4, 0.7, originals, reconstructions, fit=0.45) == []  # half-way: judged from here on
    [warning] = watch.check(5, 0.7, originals, reconstructions, fit=0.1)
    assert warning.kind == "fit" and "explain 10%" in warning.message and "R² 0.10" in warning.message
    assert watch.check(6, 0.7, originals, reconstructions, fit=0.1) == []  # said once
    assert CollapseWatch(epochs=2).check(3, 0.7, originals, reconstructions, fit=0.1)  # a short run: after its grace


def test_the_reconstruction_fit_is_measured_on_training_inputs_without_touching_trainings_randomness(tmp_path):
    from egbad_core.score.explained import explained_variation

    data = tiny_set(tmp_path, 12)
    trainer = Trainer(data, replace(TINY, train=replace(TINY.train, epochs=1)))
    list(trainer.run())
    state = trainer.rng.get_state()
    fit = trainer.reconstruction_fit()
    assert torch.equal(trainer.rng.get_state(), state) and fit == trainer.reconstruction_fit()  # seeded apart
    n = trainer.networks.eval()
    x = trainer.inputs(trainer.images)
    with torch.no_grad():
        assert fit == pytest.approx(explained_variation(x, n.generator(n.encoder(x))), abs=1e-6)  # all 12, one batch
    saved = trainer.checkpoint()
    assert saved.notes["reconstruction_r2"] == pytest.approx(fit) and trainer.last_fit == pytest.approx(fit)


def test_cycle_consistency_is_off_in_the_seed_recipe_and_on_by_default():
    from egbad_core.config import DEFAULT_PRESET, SEED_PRESET

    assert SEED_PRESET.train.cycle_weight == 0 and not SEED_PRESET.model.spectral_norm
    assert DEFAULT_PRESET.train.cycle_weight > 0 and DEFAULT_PRESET.model.spectral_norm


def test_cycle_consistency_lowers_the_reconstruction_error(tmp_path):
    from egbad_core.score.whole import score_images

    data = tiny_set(tmp_path, 32)
    residuals = []
    for weight in (0.0, 1.0):
        preset = replace(TINY, train=replace(TINY.train, epochs=4, cycle_weight=weight, lr_g=1e-3, lr_e=1e-3))
        trainer = Trainer(data, preset)
        list(trainer.run())
        residuals.append(score_images(trainer.networks, trainer.images, trainer.settings.normalisation, keep_images=False).residual.mean())
    assert residuals[1] < residuals[0]


def test_training_uses_torchs_adam_and_resumes_the_state_the_written_out_adam_stored(tmp_path):
    data = tiny_set(tmp_path)
    trainer = Trainer(data, TINY, checkpoint_path=tmp_path / "m.pt")
    assert all(type(o) is torch.optim.Adam for o in trainer.optimisers.values())
    assert trainer.optimisers["generator"].defaults["foreach"] is True  # the multi-tensor kernel on the CPU
    list(trainer.run())
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    for states in checkpoint.optimiser_states.values():  # as the earlier, written-out Adam stored them
        for entry in states["state"].values():
            entry["step"] = torch.tensor(float(entry["step"]))
    resumed = Trainer.resume(checkpoint, data, epochs=2)
    state = resumed.optimisers["encoder"].state[next(resumed.networks.encoder.parameters())]
    assert float(state["step"]) == 2  # two batches of 8 in the first epoch
    assert list(resumed.run())[-1].reason == "completed"


def test_mixed_precision_is_an_option_off_by_default_that_trains_and_scores_near_float32(tmp_path):
    from egbad_core.config import DEFAULT_PRESET
    from egbad_core.score.whole_reference import build_reference

    assert not DEFAULT_PRESET.train.mixed_precision and not DEFAULT_PRESET.score.mixed_precision
    data = tiny_set(tmp_path)
    mixed = Trainer(data, replace(TINY, train=replace(TINY.train, mixed_precision=True)))
    events = list(mixed.run())
    assert events[-1].reason == "completed"
    assert all(np.isfinite(e.d_loss) for e in events if isinstance(e, IterationEvent))
    n, images = mixed.networks, mixed.images
    exact_reference, exact = build_reference(n, images, mixed.settings.normalisation, TINY.score)
    _, reduced = build_reference(n, images, mixed.settings.normalisation, replace(TINY.score, mixed_precision=True))
    assert exact_reference is not None and np.isfinite(reduced).all()
    assert np.corrcoef(exact, reduced)[0, 1] > 0.9  # bf16 moves scores a little, not their order
