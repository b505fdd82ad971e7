"""Make the large-photo benchmark (issue 20): MVTec-layout folders of camera-sized photos, 2,048 px a
side, with small painted defects (spots 8–20 px, scratches and cracks 1–3 px wide, stains and
smears 15–30 px) and their masks.

From the desktop backgrounds of Debian's mate-backgrounds (photographs), gnome-backgrounds
(4,096-px renders, added in the eleventh session and scored once then, untuned) and
plasma-workspace-wallpapers (a photograph of cups and a 5,120-px illustration, added in the
twelfth), fetched for the benchmark only and never committed (``apt-get download mate-backgrounds
gnome-backgrounds plasma-workspace-wallpapers``, ``dpkg-deb -x`` each into PHOTOS):

* ``texture``: random 2,048-px crops of one large photograph, nothing lines up;
* ``aligned``: the photograph as one part in a fixture, 2,048 px, a few pixels of shift, up to a
  degree of turn, a little light and noise, as ``make_subjects.py`` makes its parts.

The split into a tuning and a report half is fixed here before any tuning on it.

    python scripts/make_large_photos.py PHOTOS OUT [--half tuning|report|all] [--train 30] [--test 20] [--side 2048]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import make_subjects  # noqa: E402
from subjects import GNOME, KDE, MATE, Subject  # noqa: E402

SIDE = 2048
_MATE = "usr/share/backgrounds/mate"
_GNOME = "usr/share/backgrounds/gnome"
_KDE = "usr/share/wallpapers"
LARGE_SUBJECTS: tuple[Subject, ...] = (
    Subject("elephants", MATE, f"{_MATE}/abstract/Elephants_5640x3172.jpg", "texture", "tuning"),
    Subject("garden", MATE, f"{_MATE}/nature/Garden.jpg", "aligned", "tuning"),
    Subject("woodgrain", MATE, f"{_MATE}/nature/Wood.jpg", "texture", "report", side=3072),
    Subject("yellowflower", MATE, f"{_MATE}/nature/YellowFlower.jpg", "aligned", "report"),
    Subject("twowings", MATE, f"{_MATE}/nature/TwoWings.jpg", "aligned", "report"),
    Subject("sequins", GNOME, f"{_GNOME}/grid-l.webp", "texture", "report"),
    Subject("trinkets", GNOME, f"{_GNOME}/pixels-l.webp", "aligned", "report"),
    # Added in the twelfth session, before they were scored, after the same-place comparison was
    # built with trinkets in view: two aligned parts from a source nothing was looked at on.
    Subject("cups", KDE, f"{_KDE}/ColorfulCups/contents/images/2560x1600.jpg", "aligned", "report"),
    Subject("landing", KDE, f"{_KDE}/SafeLanding/contents/images/5120x2880.jpg", "aligned", "report"),
)


def main() -> int:
    return make_subjects.main(LARGE_SUBJECTS, __doc__, train=30, test=20, side=SIDE)


if __name__ == "__main__":
    raise SystemExit(main())
