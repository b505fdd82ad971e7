"""The quality benchmark's subjects and their split into a tuning half and a report half (issue 19).

Fixed before any tuning on them, and committed so: a change is tuned on the ``tuning`` half and
judged on the ``report`` half, and both are reported. Each subject is one photograph from a Debian
package, fetched for the benchmark only and never committed::

    apt-get download extremetuxracer-data krita-data mate-backgrounds opencv-doc gnome-backgrounds
    for f in *.deb; do dpkg-deb -x "$f" /tmp/photos; done     # PHOTOS=/tmp/photos

Five independent sources: a game's terrain photographs (Extreme Tux Racer), a graphics program's
paper and surface patterns (Krita), a desktop's background photographs (MATE), a vision library's
sample pictures (OpenCV's documentation) and another desktop's rendered backgrounds (GNOME, added
in the eleventh session and first scored then, with code tuned on none of them). Two kinds:

* ``texture``: a surface; training and test images are random crops of it, nothing lines up;
* ``aligned``: one part re-photographed in a fixture: the same framing each time but for a few
  pixels of shift, up to a degree of rotation, a little light and noise.

The six Extreme Tux Racer terrains were tuned on in earlier sessions (issue 11), so that source
stays in the tuning half; the report half draws on the other three, textures and parts alike.
Kept out of both: the two sources reserved for the checks nobody here sees.
"""

from __future__ import annotations

from dataclasses import dataclass

ETR = "extremetuxracer-data"
KRITA = "krita-data"
MATE = "mate-backgrounds"
OPENCV = "opencv-doc"
GNOME = "gnome-backgrounds"
KDE = "plasma-workspace-wallpapers"  # the large photos' sixth source (twelfth session)


@dataclass(frozen=True)
class Subject:
    name: str
    package: str  # the Debian package that holds the photograph
    path: str  # the photograph's path inside the package
    kind: str  # "texture" or "aligned"
    half: str  # "tuning" or "report"
    side: int = 0  # a texture photograph is first resized so that its shorter side is this (0: as it is)


_TERRAINS = "usr/share/games/etr/terrains"
_PATTERNS = "usr/share/krita/patterns"
_NATURE = "usr/share/backgrounds/mate/nature"
_SAMPLES = "usr/share/doc/opencv-doc/examples/data"
_GNOME = "usr/share/backgrounds/gnome"

SUBJECTS: tuple[Subject, ...] = (
    # ---- tuning half
    Subject("pebbles", ETR, f"{_TERRAINS}/pebbles04.png", "texture", "tuning"),
    Subject("grass", ETR, f"{_TERRAINS}/grass01.png", "texture", "tuning"),
    Subject("paving", ETR, f"{_TERRAINS}/pave02.png", "texture", "tuning"),
    Subject("rock", KRITA, f"{_PATTERNS}/14_texture-rock.png", "texture", "tuning"),
    Subject("canvas", KRITA, f"{_PATTERNS}/01_canvas.png", "texture", "tuning"),
    Subject("dune", MATE, f"{_NATURE}/Dune.jpg", "texture", "tuning", side=512),
    Subject("fruits", OPENCV, f"{_SAMPLES}/fruits.jpg", "aligned", "tuning"),
    Subject("building", OPENCV, f"{_SAMPLES}/building.jpg", "aligned", "tuning"),
    Subject("box", OPENCV, f"{_SAMPLES}/box.png", "aligned", "tuning"),
    Subject("ladybird", MATE, f"{_NATURE}/LadyBird.jpg", "aligned", "tuning"),
    # added in the eighth session, before any tuning on them, for thin lines on fine grain (paper's
    # blind spot): a paper of fine fibres, as line-like as the scratches, and a grain of small bumps
    Subject("fibres", KRITA, f"{_PATTERNS}/03_default-paper.png", "texture", "tuning"),
    Subject("hardgrain", KRITA, f"{_PATTERNS}/06_hard-grain.png", "texture", "tuning"),
    # ---- report half
    Subject("bark", KRITA, f"{_PATTERNS}/18_texture-bark.png", "texture", "report"),
    Subject("paper", KRITA, f"{_PATTERNS}/04_paper-C-grain.png", "texture", "report"),
    Subject("reptile", KRITA, f"{_PATTERNS}/22_texture-reptile.png", "texture", "report"),
    Subject("wood", MATE, f"{_NATURE}/Wood.jpg", "texture", "report", side=512),
    Subject("raindrops", MATE, f"{_NATURE}/RainDrops.jpg", "texture", "report", side=512),
    Subject("smarties", OPENCV, f"{_SAMPLES}/smarties.png", "aligned", "report"),
    Subject("dog", OPENCV, f"{_SAMPLES}/chicky_512.png", "aligned", "report"),
    Subject("aloe", OPENCV, f"{_SAMPLES}/aloeL.jpg", "aligned", "report"),
    Subject("desk", OPENCV, f"{_SAMPLES}/stuff.jpg", "aligned", "report"),
    Subject("whale", OPENCV, f"{_SAMPLES}/rubberwhale1.png", "aligned", "report"),
    Subject("flower", MATE, f"{_NATURE}/FreshFlower.jpg", "aligned", "report"),
    # added in the eleventh session from a fifth package, scored once with the code as it was then
    Subject("sequins", GNOME, f"{_GNOME}/grid-l.webp", "texture", "report", side=512),
    Subject("truchet", GNOME, f"{_GNOME}/truchet-l.webp", "texture", "report", side=512),
    Subject("corrugated", GNOME, f"{_GNOME}/wood-l.webp", "texture", "report", side=512),
    Subject("trinkets", GNOME, f"{_GNOME}/pixels-l.webp", "aligned", "report"),
    # ---- fresh: chosen in the seventeenth session before anything was scored on them, scored once
    # with the shipped code and never tuned on; grey surfaces of strong contrast (the blind spot's
    # kind: reptile's veils) and parts of the kinds the issue names (a printed page, a busy scene, a
    # product, a soft object in colour)
    Subject("vegetal", KRITA, f"{_PATTERNS}/20_texture-vegetal.png", "texture", "fresh"),
    Subject("crackle", KRITA, f"{_PATTERNS}/19_texture-crackle.png", "texture", "fresh"),
    Subject("chainmail", KRITA, f"{_PATTERNS}/21_texture-chainmail.png", "texture", "fresh"),
    Subject("woody", KRITA, f"{_PATTERNS}/16_texture-woody.png", "texture", "fresh"),
    Subject("sudoku", OPENCV, f"{_SAMPLES}/sudoku.png", "aligned", "fresh"),
    Subject("board", OPENCV, f"{_SAMPLES}/board.jpg", "aligned", "fresh"),
    Subject("player", OPENCV, f"{_SAMPLES}/messi5.jpg", "aligned", "fresh"),
    Subject("orange", OPENCV, f"{_SAMPLES}/orange.jpg", "aligned", "fresh"),
)

HALVES = ("tuning", "report", "fresh")


def half(name: str) -> tuple[Subject, ...]:
    """The subjects of one half: "tuning", "report" or "fresh" (a last look, never tuned on)."""
    if name not in HALVES:
        raise ValueError(f"no half named {name!r}: {', '.join(HALVES)}")
    return tuple(s for s in SUBJECTS if s.half == name)


def by_name(name: str) -> Subject:
    for subject in SUBJECTS:
        if subject.name == name:
            return subject
    raise KeyError(f"no subject named {name!r}; the subjects are {', '.join(s.name for s in SUBJECTS)}")
