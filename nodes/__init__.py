"""ComfyUI glue of LumosX: thin nodes over ``lumosx_core``, one file per node family.
insightface / onnxruntime are imported when a node that needs them runs, so every node
registers where they are missing; running one then says what to install."""
from . import bind, evaluate, faces, model, photos, references, sampling
from .validation import install_prompt_check

NODE_LIST = [*model.NODES, *references.NODES, *bind.NODES, *sampling.NODES, *faces.NODES,
             *evaluate.NODES, *photos.NODES]
install_prompt_check(NODE_LIST)   # raw API values are type-checked before ComfyUI converts them
