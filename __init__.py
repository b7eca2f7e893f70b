"""ComfyUI-LumosX: personalised multi-subject video with LumosX on ComfyUI's native Wan 2.1.

Loaded by ComfyUI as a custom-node pack (V3 ``comfy_entrypoint``). Imported any other way
(e.g. as a bare module by a test runner collecting the repository root) it defines nothing."""

WEB_DIRECTORY = "./web"

if __package__:
    from comfy_api.latest import ComfyExtension, io

    from .nodes import NODE_LIST

    class LumosXExtension(ComfyExtension):
        async def get_node_list(self) -> list[type[io.ComfyNode]]:
            return list(NODE_LIST)

    async def comfy_entrypoint() -> ComfyExtension:
        return LumosXExtension()

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
