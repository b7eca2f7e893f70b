"""ComfyUI glue of LumosX: thin nodes over ``lumosx_core``, one file per node family."""
from . import bind, model, references, sampling

NODE_LIST = [*model.NODES, *references.NODES, *bind.NODES, *sampling.NODES]

try:  # the face encoder needs insightface + onnxruntime (requirements.txt)
    from . import faces
except ImportError as e:  # keep the rest of the pack usable
    import logging
    logging.getLogger("LumosX").warning(
        "LumosX Face Encoder unavailable (%s): pip install -r requirements.txt", e)
else:
    NODE_LIST += faces.NODES

try:  # the evaluation node uses the face encoder's insightface pack handling
    from . import evaluate
except ImportError as e:
    import logging
    logging.getLogger("LumosX").warning(
        "LumosX Evaluate unavailable (%s): pip install -r requirements.txt", e)
else:
    NODE_LIST += evaluate.NODES

from .validation import install_prompt_check  # noqa: E402

install_prompt_check(NODE_LIST)   # raw API values are type-checked before ComfyUI converts them
