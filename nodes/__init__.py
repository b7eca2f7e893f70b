"""ComfyUI glue of LumosX: thin nodes over ``lumosx_core``, one file per node family.

insightface / onnxruntime (the Face Encoder and Evaluate nodes) are imported when those nodes
run, so every node registers even where they are missing; running one then says what to
install."""
from . import bind, evaluate, faces, model, photos, references, sampling

NODE_LIST = [*model.NODES, *references.NODES, *bind.NODES, *sampling.NODES, *faces.NODES,
             *evaluate.NODES, *photos.NODES]

from .validation import install_prompt_check  # noqa: E402

install_prompt_check(NODE_LIST)   # raw API values are type-checked before ComfyUI converts them
