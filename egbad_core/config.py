"""Settings, one frozen dataclass per concern, and the named presets built from them.

Every checkpoint carries these (as plain dicts) so a model can be rebuilt and scored the way
it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from .errors import EgbadError


SCORING_METHODS = ("egbad", "anogan")  # one forward pass, or AnoGAN's latent search
AUTO_THRESHOLDS = ("f1", "p99", "mean3sigma")  # best F1 (needs labels), or from the training scores
DISCRIMINATIONS = ("pair", "nearest")  # EGBAD's feature match of x and G(E(x)), or a nearest-neighbour distance
SECTIONS = ("model", "train", "score", "normalisation")
IMAGE_SCORES = ("max", "top1")  # a local map's worst place, or the mean of its worst 1%  # a Preset's parts, as --set names them


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of the three networks (DESIGN.md's table is the default)."""

    channels: int = 1  # 1 for grayscale, 3 for colour
    image_size: int = 64  # side of the square image the networks see; a power of two >= 16
    latent_size: int = 20  # length of z; with latent_side above 1, the channels of each place's code
    # The code's side: 1 is DESIGN's vector. Patch models use a map (8: one code per 4×4 px of a 32-px
    # tile, as spatial texture GANs do), which lets G(E(x)) follow fine grain (issue 19: paper's R²
    # 0.07 with a vector of 128; a map of 8×8×8 learnt 0.6 in 400 plain reconstruction steps).
    latent_side: int = 1
    width: int = 64  # channels of the widest-resolution conv layer; doubles each downsampling
    spectral_norm: bool = False  # spectral normalisation on D's layers (a stabiliser)
    # Patch models (issue 11): images are kept at working_size and the networks see image_size
    # patches of them; 0 means whole-image models, where the two sizes are one.
    working_size: int = 0
    # Photos at their own resolution (issue 20): 0 resizes each image to working_size, as before;
    # above 0 photos are kept at this share of their own pixels (1: as taken), a patch model learns
    # from patches of them and scores them in windows (run/photos.py), its map at the photo's size.
    photo_scale: float = 0.0
    # The camera's pixels per millimetre where the user gives one (0: not given): the photo scale is
    # then also said in it (a photo scale of 0.5 at 20 px/mm keeps 10 px/mm).
    pixels_per_mm: float = 0.0

    @property
    def patch_model(self) -> bool:
        return self.working_size > 0

    @property
    def full_resolution(self) -> bool:
        """Photos kept at ``photo_scale`` of their own pixels and scored in windows."""
        return self.photo_scale > 0

    @property
    def code_size(self) -> int:
        """Length of z as the networks pass it: a map code flattened."""
        return self.latent_size * self.latent_side**2

    @property
    def load_size(self) -> int:
        """The side images are loaded and kept at."""
        return self.working_size or self.image_size

    def validate(self) -> None:
        """Raises EgbadError naming the first setting out of range."""
        size = self.image_size
        if self.channels not in (1, 3):
            raise EgbadError(f"channels must be 1 or 3, not {self.channels}.")
        if size < 16 or size & (size - 1):
            raise EgbadError(f"image size must be a power of two of at least 16, not {size}.")
        if self.latent_size < 1 or self.width < 1:
            raise EgbadError("latent size and width must be positive.")
        side = self.latent_side
        if side < 1 or side & (side - 1) or side > size // 2:
            raise EgbadError(f"the code's side must be 1 or a power of two up to half the image size ({size // 2}), not {side}.")
        working = self.working_size
        if working and (working < size or working & (working - 1)):
            raise EgbadError(f"the working size must be a power of two of at least the patch size {size}, not {working}.")
        if self.photo_scale and not (working and 0 < self.photo_scale <= 1):
            raise EgbadError(f"the photo scale must lie in (0, 1] and needs a patch model, not {self.photo_scale}.")
        if self.pixels_per_mm < 0:
            raise EgbadError(f"pixels per millimetre must be positive (or 0: not given), not {self.pixels_per_mm}.")


@dataclass(frozen=True)
class Normalisation:
    """Affine map from pixel values in [0, 1] to what the networks see: (x - mean) / std."""

    mean: float = 0.1307  # the seed's MNIST statistics
    std: float = 0.3081

    def apply(self, pixels: Any) -> Any:
        """uint8 0–255 or float [0, 1] pixels (a torch tensor) → (x − mean) / std, float32."""
        import torch

        x = pixels.float()
        if pixels.dtype == torch.uint8:
            x = x.div_(255.0)
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class TrainConfig:
    """How training runs. The defaults are the seed's recipe."""

    epochs: int = 20
    batch_size: int = 128
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    lr_e: float = 4e-4
    beta1: float = 0.0  # Adam betas, as the seed
    beta2: float = 0.9
    seed: int = 0
    device: str = "auto"  # auto, cpu or cuda
    channels_last: bool = True  # memory layout of weights and images: faster, same numbers
    preview_images: int = 8  # how many generated and reconstructed images each epoch's preview holds
    # Stabilisers and the second stage (issue 4); all off in the seed's recipe.
    real_label: float = 1.0  # D's target for real pairs; below 1 is one-sided label smoothing
    cycle_weight: float = 0.0  # weight of ‖x − G(E(x))‖₁ in the G and E updates (ALAD's cycle on x)
    refine_epochs: int = 0  # f-AnoGAN stage after the GAN epochs: E alone learns G(E(x)) ≈ x
    refine_lr: float = 1e-3  # Adam step size of E in that stage
    refine_feature_weight: float = 1.0  # κ: weight of D's feature match in that stage
    # G learns in that stage too (issue 19): the GAN epochs leave a patch model's G drawing texture of
    # its own where a tile is smooth, and E alone cannot make G(E(x)) follow x there.
    refine_generator: bool = False
    mixed_precision: bool = False  # bf16 autocast for the forward passes (fast on recent GPUs and AMX CPUs)
    crops_per_image: int = 8  # patch models: random crops taken from each training image per epoch

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.refine_epochs

    def validate(self) -> None:
        """Raises EgbadError naming the first setting out of range."""
        if self.epochs < 1:
            raise EgbadError(f"epochs must be at least 1, not {self.epochs}.")
        if self.batch_size < 2:
            raise EgbadError(f"batch size must be at least 2, not {self.batch_size}.")
        for name in ("lr_g", "lr_d", "lr_e"):
            if not getattr(self, name) > 0:
                raise EgbadError(f"learning rate {name} must be positive.")
        if not 0.5 <= self.real_label <= 1.0:
            raise EgbadError(f"the real label must lie between 0.5 and 1, not {self.real_label}.")
        if self.cycle_weight < 0:
            raise EgbadError(f"the cycle weight cannot be negative, not {self.cycle_weight}.")
        if self.crops_per_image < 1:
            raise EgbadError(f"crops per image must be at least 1, not {self.crops_per_image}.")
        if self.refine_epochs < 0:
            raise EgbadError(f"refinement epochs cannot be negative, not {self.refine_epochs}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise EgbadError(f"device must be auto, cpu or cuda, not {self.device!r}.")


@dataclass(frozen=True)
class ScoreConfig:
    """How images are scored."""

    lam: float = 0.1  # λ in A(x) = (1 − λ)·R(x) + λ·Dis(x), as the seed
    batch_size: int = 256  # images per forward pass; large batches are faster and change no score
    anogan_steps: int = 500  # latent-search steps per image for the AnoGAN method
    anogan_lr: float = 0.05  # Adam step size of that search
    # What R and Dis are made of (issue 4); the defaults here are the seed's score.
    residual_smoothing: float = 0.0  # σ in pixels of a Gaussian blur of x − G(E(x)) before it is summed
    residual_standardised: bool = False  # each pixel's residual measured in the training images' spread there
    discrimination: str = "pair"  # "pair": |f_D(x) − f_D(G(E(x)))|; "nearest": f_D(x)'s distance to the nearest training image's
    feature_stage: int = 1  # which of D's conv stages gives f_D for "nearest"
    feature_side: int = 4  # those features are average-pooled to at most this many cells a side
    standardise_terms: bool = False  # divide R and Dis by their spread over the training images before mixing
    mixed_precision: bool = False  # bf16 autocast while scoring; scores are kept in float32
    # Local scoring, for patch models (issue 11): a map per image, the image scored by its worst place.
    feature_stages: str = "1"  # D's conv stages whose activations, side by side, are the local features
    memory_size: int = 4096  # training features kept for the nearest-neighbour term (greedy coreset)
    reference_images: int = 200  # training images the reference is built from, at most (bounds checkpoint cost)
    map_smoothing: float = 4.0  # σ in pixels of the Gaussian blur of the anomaly map
    image_score: str = "max"  # "max" of the map, or "top1" (the mean of its highest 1%)
    # The pixels' own local mean and spread (each channel, over this many pixels a side) as a second
    # nearest-neighbour description beside D's features; 0 leaves it out.
    moment_window: int = 0
    moment_memory_size: int = 4096  # training moments kept for it (greedy coreset)
    # Issue 19: the moments also hold each channel's fine detail (the mean of |x − its 3×3 mean|),
    # which a smear takes away; off in checkpoints written before it, whose banks lack that column.
    moment_detail: bool = False
    # Above 0, that detail is measured as log(detail + floor): a smear divides the detail, on a busy
    # surface as on a quiet one, where a difference had been lost beside the tone's (fruits' smears
    # 0.965 → 1.0 on the tuning half). The floor is in normalised units, below sensor noise's detail.
    detail_floor: float = 0.0
    # The same statistics over this many pixels too, on the same grid (0: none, as before): stains
    # a little larger than the moment window (rock's 0.77 → 0.88 at 32 px on the tuning half).
    coarse_window: int = 0
    # For aligned images: each place is also compared with the same place (±one moment step) in the
    # training images, so a part missing, moved or extra there counts even where it is normal
    # elsewhere in the picture.
    same_place: bool = False
    # D's local features are looked at on a grid of at most this many places a side (every second
    # place of a 256-px image's 128×128 at 64), which bounds the nearest-neighbour search's cost per
    # image; 0 takes every place, as checkpoints written before it did. Each 4×4-px view still
    # touches every pixel at a step of 4 px.
    feature_grid: int = 0
    # Issue 19: thin straight lines on a busy surface (score/lines.py): in 12 directions, a line this
    # many pixels long, its contrast against its flanks over its tone's spread along it, each place's
    # against the nearest training place's; 0 leaves it out (the default preset's
    # whole images, aligned parts, and checkpoints written before it). The patch preset's 7 px: on
    # the tuning half rock's mid-tone scratches 0.84 → 1.00, on the report half bark's 0.76 → 0.93
    # (benchmarks/RESULTS.md, fifteenth session).
    line_length: int = 0
    # Above 0, the moments' map (against the bank of every place's) is blurred again by this σ in
    # pixels, within the frame: stains and smears are wide, a good busy surface's hot places in that
    # map compact. Issue 19: at 6, rock's stains 0.90 → 0.94 on the tuning half (fibres' scratches
    # 0.97 → 0.94, the mean unchanged); on the report half's textures the mean 0.963 → 0.965, the
    # weakest kinds up (reptile's stains 0.83 → 0.88, truchet's smears 0.81 → 0.84), wood's smears
    # 0.93 → 0.90. 0 in checkpoints written before it.
    moment_smoothing: float = 0.0
    # Above 0, each place's tone layout over this many pixels (4×4 cells of its gray mean, their
    # shape, spread and mean; score/moments.py ``local_shapes``) is a term of its own, against a
    # bank of its own, a place every 2 px at 128 (``layout_step``): a veil over a grey surface of
    # strong contrast. 0 in checkpoints written before it, and for aligned parts; the seventeenth
    # session's held it in the moments' bank.
    shape_window: int = 0
    # The layouts' bank (greedy coreset) and how many of its units the layouts' map counts for in the
    # maximum of the terms. A veil's layout lies just off the normal ones, nearer than the coreset's
    # first rows reach in the crowded part of the space: the patch preset's 8,192 rows and ×2 found the
    # tuning half's veils (100 a subject) at rock 0.83 → 0.91, hardgrain 0.93 → 0.97, and a good
    # image's layouts run less far out than its moments do (rock's worst 3.3 units against 7.7), so a
    # doubled unit raises their false alarms no higher than the other terms'. 4,096 and 1 in
    # checkpoints written before them (benchmarks/RESULTS.md, twentieth session).
    shape_memory_size: int = 4096
    shape_weight: float = 1.0

    @property
    def stages(self) -> tuple[int, ...]:
        return tuple(int(part) for part in str(self.feature_stages).split(",") if part.strip())

    def validate(self) -> None:
        """Raises EgbadError naming the first setting out of range."""
        if not 0.0 <= self.lam <= 1.0:
            raise EgbadError(f"λ must lie between 0 and 1, not {self.lam}.")
        if self.residual_smoothing < 0:
            raise EgbadError(f"residual smoothing cannot be negative, not {self.residual_smoothing}.")
        if self.discrimination not in DISCRIMINATIONS:
            raise EgbadError(f"discrimination must be one of {', '.join(DISCRIMINATIONS)}, not {self.discrimination!r}.")
        if self.feature_stage < 1 or self.feature_side < 1:
            raise EgbadError("the feature stage and the feature side must be at least 1.")
        if self.batch_size < 1 or self.anogan_steps < 1:
            raise EgbadError("scoring batch size and AnoGAN steps must be positive.")
        try:
            stages = self.stages
        except ValueError:
            stages = ()
        if not stages or min(stages) < 1:
            raise EgbadError(f"feature stages must be stage numbers like 2,3, not {self.feature_stages!r}.")
        if self.memory_size < 1 or self.reference_images < 2 or self.map_smoothing < 0:
            raise EgbadError("the memory size must be positive, the reference images at least 2, the map smoothing not negative.")
        if self.moment_window < 0 or self.moment_window % 2 or self.moment_memory_size < 1:
            raise EgbadError(f"the moment window must be 0 (off) or an even number of pixels, not {self.moment_window}, "
                             "and its memory size positive.")
        if self.coarse_window and (not self.moment_window or self.coarse_window % self.moment_window
                                   or self.coarse_window <= self.moment_window):
            raise EgbadError(f"the coarse window must be a multiple of the moment window ({self.moment_window}) "
                             f"above it, not {self.coarse_window}.")
        if self.detail_floor < 0 or self.moment_smoothing < 0:
            raise EgbadError(f"the detail floor and the moments' smoothing cannot be negative, not {self.detail_floor} "
                             f"and {self.moment_smoothing}.")
        if self.feature_grid < 0:
            raise EgbadError(f"the feature grid cannot be negative, not {self.feature_grid}.")
        # A convolution: its cost grows as the square; and the flanks 3 px beside the line need a
        # kernel 7 px wide (at 5 they fell outside it and every map was NaN).
        if self.line_length and not 6 <= self.line_length <= 15:
            raise EgbadError(f"the line length must be 0 (off) or 6 to 15 pixels, not {self.line_length}.")
        if self.shape_window and (not self.moment_window or self.shape_window % 4 or self.shape_window < 8):
            raise EgbadError(f"the shape window needs the moments and is a multiple of 4 pixels from 8, "
                             f"not {self.shape_window}.")
        if self.shape_memory_size < 1 or self.shape_weight <= 0:
            raise EgbadError(f"the layouts' memory size and weight must be positive, not {self.shape_memory_size} "
                             f"and {self.shape_weight}.")
        if self.same_place and not self.moment_window:
            raise EgbadError("the same-place comparison needs the moments: set a moment window.")
        if self.image_score not in IMAGE_SCORES:
            raise EgbadError(f"the image score must be one of {', '.join(IMAGE_SCORES)}, not {self.image_score!r}.")

    @property
    def needs_reference(self) -> bool:
        """True where scoring needs what the training images looked like (Reference)."""
        return self.residual_standardised or self.discrimination == "nearest" or self.standardise_terms


@dataclass(frozen=True)
class Preset:
    """A named, complete recipe: what `--preset NAME` and the app's preset box select."""

    name: str
    description: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    normalisation: Normalisation = field(default_factory=Normalisation)


SEED_PRESET = Preset(
    name="seed",
    description="The blog post's recipe exactly: networks, Adam(0, 0.9), lr 1e-4/1e-4/4e-4, "
    "batch 128, MNIST normalisation, λ = 0.1.",
)

DEFAULT_PRESET = Preset(
    name="default",
    description="A recipe that learns on a CPU in minutes: 32×32 images, width 32, spectral norm in D, "
    "label smoothing, cycle consistency on x, DCGAN's Adam settings, batch 64, inputs in [-1, 1]; "
    "scores from the smoothed residual in the training images' per-pixel spread and the distance to the "
    "nearest training image in D's features.",
    model=ModelConfig(image_size=32, width=32, spectral_norm=True),
    train=TrainConfig(
        epochs=60, batch_size=64, lr_g=2e-4, lr_d=2e-4, lr_e=2e-4, beta1=0.5, beta2=0.999,
        real_label=0.9, cycle_weight=1.0,
    ),
    score=ScoreConfig(
        lam=0.7, residual_smoothing=1.0, residual_standardised=True, discrimination="nearest", standardise_terms=True,
    ),
    normalisation=Normalisation(mean=0.5, std=0.5),
)

PATCH_PRESET = Preset(
    name="patch",
    description="For images of 96 px and more, textured surfaces and aligned parts, with small local defects: "
    "the default's networks trained on random 32×32 patches of the images kept at a working size (up to 256), "
    "G and E then refined together so that G(E(x)) follows x; each place scored by its residual and by how far "
    "its look lies from the training places: D's local features against a memory bank, and the pixels' mean, "
    "spread and fine detail over 8×8 against a bank (textures) or against the same place in the training "
    "images (aligned parts), and on textures thin lines of an even tone; the image scores by its worst place.",
    model=ModelConfig(image_size=32, width=32, latent_size=8, latent_side=8, spectral_norm=True, working_size=128),
    # Issue 19: a cycle weight of 10 and 15 refinement epochs in which G learns too took the tiles'
    # R² on the tuning half from 0.29 to 0.76 (canvas, 10 GAN epochs) and from −1.66 to 0.54 (fruits).
    # Then a map code and no feature match in that stage (D's features, 10 times the pixels' error,
    # pulled wood's R² from 0.65 back to 0.1; the patch scores do not compare x's and G(E(x))'s).
    train=replace(DEFAULT_PRESET.train, epochs=30, crops_per_image=8, cycle_weight=10.0, refine_epochs=15,
                  refine_generator=True, refine_feature_weight=0.0),
    score=ScoreConfig(lam=0.9, feature_stages="1", memory_size=4096, map_smoothing=4.0, moment_window=8,
                      moment_detail=True, detail_floor=0.01, coarse_window=32, feature_grid=64,
                      moment_smoothing=6.0, line_length=7, shape_window=24,
                      shape_memory_size=8192, shape_weight=2.0),
    normalisation=Normalisation(mean=0.5, std=0.5),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (DEFAULT_PRESET, PATCH_PRESET, SEED_PRESET)}


def get_preset(name: str) -> Preset:
    """The preset named ``name``; raises EgbadError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise EgbadError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}."
        ) from None


def autocast(device_type: str, enabled: bool) -> Any:
    """The one reduced-precision context of training and scoring: bf16, which needs no loss scaling."""
    import torch

    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled)


def with_overrides(preset: Preset, items: list[str]) -> Preset:
    """``train.cycle_weight=0`` style settings on top of a preset: any named option can be switched."""
    for item in items:
        key, sep, raw = item.partition("=")
        part, _, name = key.strip().partition(".")
        section = getattr(preset, part, None) if part in SECTIONS else None
        if not sep or section is None or name not in {f.name for f in fields(section)}:
            raise EgbadError(f"{item!r} is not a setting; write SECTION.NAME=VALUE with SECTION one of "
                             f"{', '.join(SECTIONS)} (the README lists the names).")
        current = getattr(section, name)
        try:
            if isinstance(current, bool):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("1", "true", "yes", "on")
            else:
                value = type(current)(raw)
        except ValueError:
            raise EgbadError(f"{item!r}: {raw!r} is not a {type(current).__name__}.") from None
        preset = replace(preset, **{part: replace(section, **{name: value})})
    for section in (preset.model, preset.train, preset.score):
        section.validate()
    return preset


def ingredients(preset: Preset, base: Preset = SEED_PRESET) -> list[str]:
    """The preset's settings that differ from the seed's recipe, as ``SECTION.NAME=VALUE``:
    what the app lists under the preset and ``egbad train --set`` accepts back."""
    found = []
    for part in SECTIONS:
        ours, theirs = getattr(preset, part), getattr(base, part)
        for f in fields(ours):
            value = getattr(ours, f.name)
            if value != getattr(theirs, f.name) and f.name not in ("seed", "device"):
                found.append(f"{part}.{f.name}={value}")
    return found


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass from a checkpoint's dict, ignoring keys it does not know.

    Unknown keys come from newer versions of the app; missing ones take today's defaults.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict, as checkpoints store it."""
    return asdict(config)


__all__ = [
    "SCORING_METHODS",
    "AUTO_THRESHOLDS",
    "DISCRIMINATIONS",
    "ModelConfig",
    "Normalisation",
    "TrainConfig",
    "ScoreConfig",
    "Preset",
    "PRESETS",
    "DEFAULT_PRESET",
    "PATCH_PRESET",
    "SEED_PRESET",
    "get_preset",
    "with_overrides",
    "autocast",
    "ingredients",
    "from_dict",
    "to_dict",
    "replace",
]
