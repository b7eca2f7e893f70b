"""Model nodes: install the LumosX patch on a Wan 2.1 T2V MODEL."""
from __future__ import annotations

from comfy_api.latest import io

from .patch import apply_lumosx


class LumosXApply(io.ComfyNode):
    """Patch a MODEL from any loader (stock, GGUF, fp8) for LumosX conditioning."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXApply",
            display_name="LumosX Apply",
            category="LumosX",
            description=("Returns a copy of a Wan 2.1 text-to-video MODEL that understands "
                         "LumosX conditioning (references bound to people). Without LumosX "
                         "conditioning the copy behaves exactly like the input."),
            inputs=[io.Model.Input("model", tooltip="A Wan 2.1 T2V model (the LumosX DiT).")],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(apply_lumosx(model))


NODES = [LumosXApply]
