"""An exported ONNX model scores as the app does, run by onnxruntime alone (issue 21)."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from egbad_core import session
from egbad_core.cli import main
from egbad_core.errors import EgbadError
from egbad_core.events import run_to_end
from egbad_core.score import nearest
from test_patches import TINY_PATCH, texture_folder

ort = pytest.importorskip("onnxruntime")  # the test extra installs it (it takes the deploy extra)
README = Path(__file__).resolve().parent.parent / "README.md"


def _relative(found, expected):
    return float(np.abs(np.asarray(found, np.float64) - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def patch_model(tmp_path_factory):
    root = texture_folder(tmp_path_factory.mktemp("export") / "surface")
    path = root.parent / "patch.pt"
    list(session.make_trainer(session.parse_source(str(root)), path, TINY_PATCH).run())
    return root, path


def _app_and_export(checkpoint_path, pixels, out):
    """The app's scores and maps of ``pixels`` (as loaded) and the exported model's, by onnxruntime."""
    checkpoint = session.load_checkpoint(checkpoint_path)
    done = session.export_onnx(checkpoint, out, checkpoint_path=str(checkpoint_path))
    assert done.difference is not None and done.difference <= 1e-4  # checked before it said it was done
    app = run_to_end(session.ScoreRequest(checkpoint).task(pixels, True))  # the app's searches exact, as the export's
    unit = pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels.float()
    model = ort.InferenceSession(str(done.model))
    spec = json.loads(done.spec.read_text())
    batches = [unit] if spec["input"]["shape"][0] == "images" else unit.split(1)  # a patch model: one a call
    score, anomaly_map = (np.concatenate(part) for part in zip(*(model.run(None, {"pixels": b.numpy()}) for b in batches)))
    return app, score, anomaly_map, spec


def test_a_whole_image_model_exports_and_scores_as_the_app(tiny_checkpoint, tmp_path):
    from conftest import write_mnist_csv

    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 4, seed=5)
    checkpoint = session.load_checkpoint(tiny_checkpoint)
    images = run_to_end(session.test_images(session.parse_source(str(csv), normal_labels="7,8"), checkpoint))
    app, score, anomaly_map, spec = _app_and_export(tiny_checkpoint, images.pixels, tmp_path / "out")
    assert _relative(score, app.score) < 1e-4 and _relative(anomaly_map, app.residual_maps) < 1e-4
    side = checkpoint.networks.config.load_size
    assert spec["input"]["shape"] == ["images", 1, side, side] and spec["input"]["channels"] == "gray"  # any number
    stats = checkpoint.train_stats
    assert spec["threshold"] == pytest.approx(stats.p99) and spec["good_image_scores"] == list(stats.scores)
    assert spec["false_alarms"]["of"] == stats.count


def test_a_patch_model_exports_and_its_maps_match_place_by_place(patch_model, tmp_path):
    root, path = patch_model
    checkpoint = session.load_checkpoint(path)
    images = run_to_end(session.test_images(session.parse_source(str(root)), checkpoint))
    app, score, anomaly_map, spec = _app_and_export(path, images.pixels, tmp_path / "out")
    assert _relative(score, app.score) < 1e-4 and _relative(anomaly_map, app.residual_maps) < 1e-4
    assert anomaly_map.shape == app.residual_maps.shape
    flagged = score >= spec["threshold"]
    assert list(flagged) == list(app.score >= spec["threshold"])
    # Another size than the one it expects: onnxruntime's error names what it expects.
    session_ = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    with pytest.raises(Exception, match=rf"Expected: {spec['input']['shape'][2]}"):
        session_.run(None, {"pixels": np.zeros((1, 1, 20, 20), np.float32)})
    with pytest.raises(Exception, match=r"index: 1 Got: 3 Expected: 1"):  # colour for a gray model
        session_.run(None, {"pixels": np.zeros((1, 3, 32, 32), np.float32)})


def test_the_readmes_ten_lines_score_a_file_as_egbad_detect_does(patch_model, tmp_path, monkeypatch):
    root, path = patch_model
    out = tmp_path / "exported"
    session.export_onnx(session.load_checkpoint(path), out)
    part = sorted((root / "test").rglob("*.png"))[-1]
    (tmp_path / "part.png").write_bytes(part.read_bytes())
    code = re.search(r"<!-- onnx-lines -->\s*```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    spoken = {}
    exec(compile(code, "README", "exec"), spoken)  # noqa: S102  (the README's own lines, as a user runs them)
    summary = main(["detect", "--checkpoint", str(path), "--data", str(root), "--out-dir", str(tmp_path / "d"),
                    "--quiet"])
    assert summary == 0
    rows = (tmp_path / "d" / "scores.csv").read_text().splitlines()
    app_score = float(next(r for r in rows if r.startswith(str(part.relative_to(root)))).split(",")[5])
    assert float(spoken["score"][0]) == pytest.approx(app_score, rel=1e-4)


def test_export_model_on_the_command_line_and_its_refusals(patch_model, tmp_path, capsys, monkeypatch):
    _, path = patch_model
    assert main(["export-model", "--checkpoint", str(path), "--out", str(tmp_path / "m"),
                 "--false-alarm-rate", "1/50"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    assert said["difference"] <= 1e-4 and spec["threshold_method"] == "about 1 in 50 good parts flagged"
    assert spec["false_alarms"]["rate"] == pytest.approx(0.02)
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # the deploy extra not installed
    with pytest.raises(EgbadError, match=r"needs the deploy extra"):
        session.export_onnx(session.load_checkpoint(path), tmp_path / "n")
    assert not (tmp_path / "n" / "model.onnx").exists()


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory):
    """A patch model that scores photos at their own resolution (300×420 noise photos) in windows."""
    from dataclasses import replace

    from test_photos import photo_folder

    root = photo_folder(tmp_path_factory.mktemp("export-photos") / "photos")
    # Without the moments' second blur the windows' overlap is smaller: two windows, stitched in the graph.
    preset = replace(TINY_PATCH, model=replace(TINY_PATCH.model, photo_scale=1.0),
                     score=replace(TINY_PATCH.score, moment_smoothing=0.0))
    path = root.parent / "photo.pt"
    list(session.make_trainer(session.parse_source(str(root)), path, preset).run())
    return root, path


def test_a_photo_model_exports_for_one_photo_size_and_the_readmes_lines_score_as_egbad_detect(
        photo_model, tmp_path, monkeypatch, capsys):
    root, path = photo_model
    with pytest.raises(EgbadError, match=r"give the photos' size \(--photo-size"):
        session.export_onnx(session.load_checkpoint(path), tmp_path / "none")
    assert not (tmp_path / "none" / "model.onnx").exists()
    assert main(["export-model", "--checkpoint", str(path), "--out", str(tmp_path / "m"), "--photo-size", "420"]) == 2
    assert "--photo-size must be WIDTHxHEIGHT" in capsys.readouterr().err

    assert main(["export-model", "--checkpoint", str(path), "--out", str(tmp_path / "exported"),
                 "--photo-size", "420x300"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["difference"] <= 1e-4  # against the app's own photo scoring, its searches exact
    spec = json.loads((tmp_path / "exported" / "model.json").read_text())
    assert spec["input"]["shape"] == [1, 1, 300, 420] and spec["photo"]["windows"] >= 2  # the photo, whole

    part = root / "test" / "spot" / "000.png"  # an 8-px spot at rows 150-157, columns 200-207
    (tmp_path / "part.png").write_bytes(part.read_bytes())
    code = re.search(r"<!-- onnx-lines -->\s*```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    spoken = {}
    exec(compile(code, "README", "exec"), spoken)  # noqa: S102  (the README's own lines, unchanged)
    row, column = np.unravel_index(int(np.argmax(spoken["anomaly_map"][0])), spoken["anomaly_map"][0].shape)
    assert 140 <= row <= 167 and 190 <= column <= 217  # the stitched map in the photo's own pixels
    assert main(["detect", "--checkpoint", str(path), "--data", str(root), "--out-dir", str(tmp_path / "d"), "--quiet"]) == 0
    rows = (tmp_path / "d" / "scores.csv").read_text().splitlines()
    app_score = float(next(r for r in rows if r.startswith("test/spot/000.png")).split(",")[5])
    # egbad detect searches a photo's windows in groups, a place's distance never below the truth
    # (score/nearest.py, README: up to 0.2% on a score); the export's own check above is exact
    assert app_score * (1 - 2e-3) <= float(spoken["score"][0]) <= app_score * (1 + 1e-4)
    odd = np.zeros((1, 1, 280, 500), np.float32)  # a photo of another size: onnxruntime names the one it takes
    with pytest.raises(Exception, match=r"Expected: 300"):
        ort.InferenceSession(str(tmp_path / "exported" / "model.onnx")).run(None, {"pixels": odd})


class _Search(torch.nn.Module):
    def __init__(self, bank):
        super().__init__()
        self.bank = bank

    def forward(self, queries):
        return nearest.exact_distances(queries, self.bank)


def test_an_exported_search_takes_its_places_in_a_few_large_chunks_and_finds_the_nearest_rows():
    # A graph holds each chunk's products as nodes of its own: in the app's small chunks a photo
    # window's graph grew to thousands of products and took minutes to export.
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(2 * nearest.BANK_BLOCK + 100, 6, generator=generator)
    queries = torch.randn(3 * nearest.NEAREST_CHUNK + 10, 6, generator=generator)
    assert len(queries) <= nearest.EXPORTED_CHUNK
    with torch.no_grad():
        program = torch.onnx.export(_Search(bank).eval(), (queries,), dynamo=True, optimize=False, verbose=False)
    products = sum(node.op_type == "MatMul" for node in program.model.graph)
    assert products == 3  # one a block of the bank, not one a block for each of four chunks
    found = ort.InferenceSession(program.model_proto.SerializeToString()).run(None, {"queries": queries.numpy()})[0]
    assert np.allclose(found, torch.cdist(queries, bank).amin(dim=1).numpy(), atol=1e-3)


def test_an_export_made_before_any_scoring_keeps_nothing_of_its_trace_and_draws_no_kernels(patch_model, tmp_path):
    # The line term's weights had been kept between calls; made first while the graph was traced
    # they had been the trace's own tensors, and every later scoring in the process failed.
    from egbad_core.score import lines

    root, path = patch_model
    lines._kernel_values.cache_clear()
    checkpoint = session.load_checkpoint(path)
    done = session.export_onnx(checkpoint, tmp_path / "out")  # its check scores after the trace
    assert done.difference is not None and done.difference <= 1e-4
    weights = lines._weights(checkpoint.settings.score.line_length, "cpu")
    assert type(weights) is torch.Tensor and weights.numpy().shape[0] == 3 * lines.ORIENTATIONS
    import onnx

    ops = {node.op_type for node in onnx.load(str(done.model)).graph.node}
    assert not any(op.startswith("Scatter") for op in ops)  # the kernels are one constant, not drawn
