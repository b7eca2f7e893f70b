"""ComfyUI-LumosX: personalised multi-subject video with LumosX on ComfyUI's native Wan 2.1.

Loaded by ComfyUI as a custom-node pack (V3 ``comfy_entrypoint``)."""
from comfy_api.latest import ComfyExtension, io

from .nodes import model as _model_nodes

WEB_DIRECTORY = "./web"


class LumosXExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*_model_nodes.NODES]


async def comfy_entrypoint() -> ComfyExtension:
    return LumosXExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
