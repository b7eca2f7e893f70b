"""LumosX core: the relational forward of LumosX on ComfyUI's native Wan 2.1 DiT.

Pure torch; no ``comfy`` import, usable and testable without ComfyUI. The public entry
point::

    from lumosx_core import ConditionLayout, relational_forward
    layout = ConditionLayout(non_person=1, groups=[3, 2])
    out = relational_forward(model, x, timestep, context, cond_latents, layout, phrase_masks,
                             ratio=0.5, r2pe=True, self_mask=True, cross_mask=True, parity=True)
"""
from .relational.layout import Block, ConditionLayout
from .relational.positions import (MAX_ROPE_POSITION, check_rope_capacity, max_position,
                                   position_ids)
from .conditioning.phrases import find_occurrences, phrase_mask, strip_special
from .relational.self_attention import relational_self_attention
from .relational.cross_attention import (cell_index, image_bias, pooled_scores,
                                         relational_cross_attention, text_weights)
from .image_prep import letterbox
from .relational.forward import (RelationalAttention, RelationalCache, RelationalConfig,
                                 config_forward, prepare_phrase_masks, relational_forward)
from .video_size import VideoSize

__all__ = [
    "Block", "ConditionLayout", "MAX_ROPE_POSITION", "check_rope_capacity", "max_position",
    "position_ids", "find_occurrences", "phrase_mask", "strip_special",
    "relational_self_attention", "cell_index", "image_bias", "pooled_scores",
    "relational_cross_attention", "text_weights", "letterbox", "RelationalAttention", "RelationalCache", "RelationalConfig",
    "config_forward", "prepare_phrase_masks", "relational_forward", "VideoSize",
]
__version__ = "0.1.0"
