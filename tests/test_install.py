"""Install hygiene: what ``pip install -r requirements.txt`` brings into a ComfyUI environment.

OpenCV ships as several distributions (``opencv-python``, ``-headless``, ``-contrib``...) that
all install the one ``cv2`` module: two of them in one environment overwrite each other's
files, and whichever pip touched last wins. insightface declares ``opencv-python``, so the
pack lists no OpenCV package of its own."""
import os
import re
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENCV = re.compile(r"^opencv(-contrib)?-python(-headless)?$")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement line (``pkg[extra]>=1; marker``)."""
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements(path: str):
    with open(path, encoding="utf-8") as f:
        return [line for line in (raw.split("#")[0].strip() for raw in f) if line]


def test_requirements_bring_one_opencv():
    """The OpenCV packages requirements.txt names plus those its packages declare (insightface:
    ``opencv-python``) are one package at most."""
    listed = {_name(r) for r in _requirements(os.path.join(ROOT, "requirements.txt"))}
    declared = set()
    for dist in listed:
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        declared |= {_name(r) for r in requires if "extra ==" not in r}
    opencv = {n for n in listed | declared if OPENCV.match(n)}
    assert "insightface" in listed
    assert len(opencv) <= 1, f"requirements.txt brings {sorted(opencv)}: one cv2, one package"


def test_this_environment_has_one_opencv():
    """The environment under test (a test host, or your own ComfyUI's) holds exactly one
    OpenCV distribution, and ``cv2`` and insightface import from it."""
    installed = sorted({_name(d.metadata["Name"]) for d in metadata.distributions()
                        if d.metadata["Name"] and OPENCV.match(_name(d.metadata["Name"]))})
    assert len(installed) == 1, (f"OpenCV installed as {installed}: keep one (pip uninstall "
                                 f"the others, then reinstall the one you keep)")
    import cv2
    import insightface  # noqa: F401
    assert cv2.imread is not None
