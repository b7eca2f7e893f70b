// ComfyUI-LumosX frontend extension: gives every LumosX node a recognisable colour.
import { app } from "../../scripts/app.js";

const LUMOSX_COLOR = "#2a3b55";
const LUMOSX_BGCOLOR = "#1d2838";

app.registerExtension({
  name: "LumosX.Appearance",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith("LumosX")) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      this.color = this.color ?? LUMOSX_COLOR;
      this.bgcolor = this.bgcolor ?? LUMOSX_BGCOLOR;
      return r;
    };
  },
});
