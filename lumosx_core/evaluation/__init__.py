"""Evaluation of LumosX videos: does each face keep its identity, and does each attribute
land on the right person?

Pure code (torch, numpy, Pillow; insightface, SciPy and matplotlib imported lazily where
used), no ``comfy``. Faces are detected with :mod:`lumosx_core.faces.detector` (the
detector interface ``rgb -> [Face]`` and the insightface one, shared with the Face Encoder).

* :mod:`.assignment` -- maximum-similarity assignment (Hungarian / exact fallback);
* :mod:`.identity` -- per-person face similarity, detection rate, identity swaps (people
  followed by their bodies);
* :mod:`.light` -- exposure and white balance per frame, from the people's faces;
* :mod:`.regions` -- where each kind of attribute is worn (head, eyes, neck, torso, legs,
  body) from the face box, or a user mask;
* :mod:`.appearance` -- weight-free colour/texture descriptor and an image-embedder backend;
* :mod:`.attribute_binding` -- where each attribute is, binding accuracy, swap rate, the
  person x attribute matrix;
* :mod:`.verdicts` -- placing an attribute on a person, the verdict rules, thresholds;
* :mod:`.scoring` -- one video against its references;
* :mod:`.render` -- heatmap and annotated frames (Pillow; as IMAGEs for the node);
* :mod:`.inputs` -- the Evaluate node's inputs checked and prepared (people, sampled frames,
  masks per frame and person);
* :mod:`.video`, :mod:`.cases`, :mod:`.report` -- the ``lumosx eval`` batch command's I/O.
"""
from .appearance import ColorTextureBackend, EmbeddingBackend
from .assignment import assign
from .attribute_binding import attribute_kind, binding_scores
from ..faces.detector import Face, InsightFaceDetector, find_face_pack, load_face_analysis
from .scoring import Evaluation, Settings, evaluate_video, summary_text
from .identity import identify_frame, identity_scores
from .regions import body_box, person_regions

__all__ = [
    "ColorTextureBackend", "EmbeddingBackend", "assign", "attribute_kind", "binding_scores",
    "Face", "InsightFaceDetector", "find_face_pack", "load_face_analysis", "Evaluation",
    "Settings", "evaluate_video", "summary_text", "identify_frame", "identity_scores",
    "body_box", "person_regions",
]
