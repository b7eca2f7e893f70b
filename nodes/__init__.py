"""ComfyUI glue of LumosX: thin nodes over ``lumosx_core``, one file per node family."""
from . import model as _model

NODE_LIST = [*_model.NODES]
