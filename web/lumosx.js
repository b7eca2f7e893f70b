// ComfyUI-LumosX frontend extension.
//
// * LumosX Person grows and shrinks its attribute inputs: the connected attribute_N / phrase_N
//   pairs plus one empty pair are shown (up to 6); the rest stay hidden.
// * Each person gets a colour (the same list as the Bind node's binding preview,
//   lumosx_core/drawing.py PERSON_COLORS), used on its Person node, on the image nodes (Load
//   Image, Face Encoder, Pick Person, Cut Out) that feed only that person, and in a "person N"
//   badge; Reference nodes are grey.
//   Colours follow the chain order, so they match the preview's.
// * LumosX Bind shows its binding report (matched phrases, warnings) on the node after a run,
//   LumosX People From Photo its people report (who was found, who wears which garment).
//
// Uses only app.registerExtension hooks (beforeRegisterNodeDef, nodeCreated,
// afterConfigureGraph) and LGraphNode methods that ComfyUI's frontend has kept stable
// (addInput, removeInput, addDOMWidget, onConnectionsChange, onExecuted, onConfigure).
import { app } from "../../scripts/app.js";

export const PERSON_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
                              "#f032e6", "#9a6324"];
export const NON_PERSON_COLOR = "#808080";
const LUMOSX_COLOR = "#2a3b55";
const LUMOSX_BGCOLOR = "#1d2838";
const MAX_ATTRIBUTES = 6;
const PERSON = "LumosXPerson";
const REFERENCE = "LumosXReference";
const BIND = "LumosXBind";
const FACE_ENCODER = "LumosXFaceEncoder";
const PEOPLE_FROM_PHOTO = "LumosXPeopleFromPhoto";
const IMAGE_SOURCES = new Set(["LoadImage", FACE_ENCODER, "LumosXPickPerson", "LumosXCutOut"]);
const REPORT_WIDGET = "binding_report";
// the nodes that show their text report after a run, and what the empty report says
const REPORT_NODES = {
  [BIND]: "binding report: run the graph to see which words each reference matched",
  [PEOPLE_FROM_PHOTO]: "people report: run the graph to see who was found and who wears "
    + "which garment mask",
};
const INPUT = 1; // LiteGraph.INPUT
const HOLLOW_CIRCLE = 7; // RenderShape.HollowCircle: how the app draws optional inputs

function mix(hex, other, t) {
  const a = parseInt(hex.slice(1), 16);
  const b = parseInt(other.slice(1), 16);
  const ch = (v, s) => (v >> s) & 255;
  const m = (s) => Math.round(ch(a, s) * (1 - t) + ch(b, s) * t);
  return "#" + [16, 8, 0].map((s) => m(s).toString(16).padStart(2, "0")).join("");
}

// title / body colours: a Person node in its person's colour, the image nodes feeding it in
// a darker shade of it (so their light title text stays readable)
export function personShades(color) {
  return {
    person: [color, mix(color, "#1b1b1b", 0.72)],
    feeder: [mix(color, "#000000", 0.45), mix(color, "#1b1b1b", 0.8)],
  };
}

// colours this extension may overwrite (a colour the user picked is left alone)
const MANAGED = new Set([LUMOSX_COLOR, NON_PERSON_COLOR]);
for (const c of PERSON_COLORS) {
  const s = personShades(c);
  MANAGED.add(s.person[0]);
  MANAGED.add(s.feeder[0]);
}

function setColor(node, color, bgcolor) {
  if (node.color && !MANAGED.has(node.color) && node.color !== node.__lumosxColor) return;
  const bg = bgcolor ?? (color === LUMOSX_COLOR ? LUMOSX_BGCOLOR : mix(color, "#1b1b1b", 0.72));
  if (node.color !== color || node.bgcolor !== bg) {
    node.color = color;
    node.bgcolor = bg;
    node.__lumosxColor = color;
    node.setDirtyCanvas?.(true, true);
  }
}

// ---------------------------------------------------------------------------------------
// graph helpers
// ---------------------------------------------------------------------------------------
function inputIndex(node, name) {
  return (node.inputs ?? []).findIndex((i) => i.name === name);
}

// the node feeding input `name`, through Reroute nodes
function upstream(node, name) {
  let slot = inputIndex(node, name);
  if (slot < 0) return null;
  let src = node.getInputNode?.(slot) ?? null;
  const seen = new Set();
  while (src && src.type === "Reroute" && !seen.has(src.id)) {
    seen.add(src.id);
    src = src.getInputNode?.(0) ?? null;
  }
  return src;
}

// consumers of every output of `node` (node objects), through Reroute nodes
function consumers(node, seen = new Set()) {
  const out = [];
  const graph = node.graph;
  if (!graph) return out;
  for (const output of node.outputs ?? []) {
    for (const id of output.links ?? []) {
      const link = graph.links?.get ? graph.links.get(id) : graph.links?.[id];
      if (!link) continue;
      const target = graph.getNodeById(link.target_id);
      if (!target || seen.has(target.id)) continue;
      seen.add(target.id);
      if (target.type === "Reroute") out.push(...consumers(target, seen));
      else out.push(target);
    }
  }
  return out;
}

// 0-based index of a Person in its references chain (= its colour in the binding preview)
export function personIndex(node) {
  let count = 0;
  const seen = new Set([node.id]);
  let cur = upstream(node, "references");
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    if (cur.type === PERSON) count += 1;
    else if (cur.type !== REFERENCE) break;
    cur = upstream(cur, "references");
  }
  return count;
}

function attributeNumber(name) {
  const m = /^attribute_(\d+)$/.exec(name ?? "");
  return m ? Number(m[1]) : 0;
}

// ---------------------------------------------------------------------------------------
// Person: dynamic attribute inputs
// ---------------------------------------------------------------------------------------
function setWidgetVisible(widget, visible) {
  if (!widget) return;
  widget.options ??= {};
  if (visible) {
    if (!widget.__lumosxHidden) return;
    widget.hidden = false;
    widget.options.hidden = false;
    if ("__lumosxComputeSize" in widget) {
      if (widget.__lumosxComputeSize) widget.computeSize = widget.__lumosxComputeSize;
      else delete widget.computeSize;
      delete widget.__lumosxComputeSize;
    }
    widget.__lumosxHidden = false;
  } else {
    if (widget.__lumosxHidden) return;
    widget.hidden = true;
    widget.options.hidden = true;
    widget.__lumosxComputeSize = Object.prototype.hasOwnProperty.call(widget, "computeSize")
      ? widget.computeSize : undefined;
    widget.computeSize = () => [0, -4];
    widget.__lumosxHidden = true;
  }
}

// Show the connected attribute pairs plus one empty pair; returns the number shown.
export function updateAttributeSlots(node) {
  if (!node.inputs) return 0;
  let highest = 0;
  for (const input of node.inputs) {
    const n = attributeNumber(input.name);
    if (n && input.link != null) highest = Math.max(highest, n);
  }
  const want = Math.min(MAX_ATTRIBUTES, highest + 1);
  let changed = false;
  // drop unconnected attribute inputs above `want`, highest first
  for (let n = MAX_ATTRIBUTES; n > want; n--) {
    const i = inputIndex(node, `attribute_${n}`);
    if (i >= 0 && node.inputs[i].link == null) {
      node.removeInput(i);
      changed = true;
    }
  }
  // add the missing ones up to `want`, in order, after the last attribute input
  for (let n = 1; n <= want; n++) {
    if (inputIndex(node, `attribute_${n}`) >= 0) continue;
    node.addInput(`attribute_${n}`, "IMAGE", { shape: HOLLOW_CIRCLE });
    changed = true;
  }
  for (let n = 1; n <= MAX_ATTRIBUTES; n++) {
    const w = node.widgets?.find((x) => x.name === `phrase_${n}`);
    const visible = n <= want;
    if (w && !!w.__lumosxHidden === visible) changed = true;
    setWidgetVisible(w, visible);
  }
  if (changed) {
    const size = node.computeSize();
    node.setSize([Math.max(node.size[0], size[0]), size[1]]);
    node.setDirtyCanvas?.(true, true);
  }
  return want;
}

// ---------------------------------------------------------------------------------------
// colours
// ---------------------------------------------------------------------------------------
export function refreshColors(graph) {
  graph = graph ?? app.graph;
  if (!graph) return;
  const nodes = graph._nodes ?? graph.nodes ?? [];
  for (const node of nodes) {
    if (node.type === REFERENCE) setColor(node, NON_PERSON_COLOR);
  }
  for (const node of nodes) {
    if (node.type !== PERSON) continue;
    const index = personIndex(node);
    node.__lumosxPerson = index;
    const color = PERSON_COLORS[index % PERSON_COLORS.length];
    const shades = personShades(color);
    node.__lumosxPersonColor = color;
    setColor(node, ...shades.person);
    // the image nodes that feed only this person take its colour too
    const feeders = [];
    for (const input of node.inputs ?? []) {
      if (input.name !== "face" && !attributeNumber(input.name)) continue;
      const src = upstream(node, input.name);
      if (src && IMAGE_SOURCES.has(src.type)) feeders.push(src);
      if (src && src.type === FACE_ENCODER) {
        const photo = upstream(src, "images");
        if (photo && photo.type === "LoadImage") feeders.push(photo);
      }
    }
    for (const src of feeders) {
      const users = consumers(src);
      const onlyThis = users.every((u) => u === node || (u.type === FACE_ENCODER
        && consumers(u).every((v) => v === node)));
      if (onlyThis) setColor(src, ...shades.feeder);
    }
  }
}

let refreshQueued = false;
function scheduleRefresh(graph) {
  if (refreshQueued) return;
  refreshQueued = true;
  queueMicrotask(() => {
    refreshQueued = false;
    try {
      refreshColors(graph ?? app.graph);
    } catch (e) {
      console.warn("[LumosX] colour refresh failed", e);
    }
  });
}

function drawPersonBadge(node, ctx) {
  if (node.flags?.collapsed || node.__lumosxPerson == null) return;
  const text = `person ${node.__lumosxPerson + 1}`;
  const titleH = globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
  ctx.save();
  ctx.font = "bold 11px sans-serif";
  const w = ctx.measureText(text).width + 12;
  const h = 16;
  const x = node.size[0] - w - 8;
  const y = -titleH + (titleH - h) / 2;
  ctx.fillStyle = node.__lumosxPersonColor ?? "rgba(0,0,0,0.35)";
  ctx.strokeStyle = "rgba(255,255,255,0.85)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(x, y, w, h, 8);
  else ctx.rect(x, y, w, h);
  ctx.fill();
  ctx.stroke();
  ctx.fillStyle = "#ffffff";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x + w / 2, y + h / 2 + 0.5);
  ctx.restore();
}

// ---------------------------------------------------------------------------------------
// Bind: the binding report on the node
// ---------------------------------------------------------------------------------------
function addReportWidget(node) {
  if (node.widgets?.some((w) => w.name === REPORT_WIDGET)) return;
  if (typeof node.addDOMWidget !== "function") return;
  const el = document.createElement("textarea");
  el.className = "lumosx-report";
  el.readOnly = true;
  el.spellcheck = false;
  el.placeholder = REPORT_NODES[node.comfyClass ?? node.type] ?? REPORT_NODES[BIND];
  Object.assign(el.style, {
    fontFamily: "monospace", fontSize: "11px", lineHeight: "1.35", whiteSpace: "pre",
    overflow: "auto", resize: "none", boxSizing: "border-box", width: "100%",
    background: "rgba(0,0,0,0.25)", color: "#ddd", border: "1px solid #445", borderRadius: "4px",
    padding: "4px",
  });
  const widget = node.addDOMWidget(REPORT_WIDGET, "lumosx_report", el, {
    serialize: false,
    getValue: () => el.value,
    setValue: (v) => setReport(el, v),
    // tall enough for the whole report (up to 14 lines; longer ones scroll)
    getMinHeight: () => Math.min(14, Math.max(3, el.value.split("\n").length)) * 16 + 18,
  });
  widget.serialize = false; // not in the saved workflow's widgets_values either
  widget.options ??= {};
  widget.options.serialize = false;
  node.__lumosxReport = el;
}

function setReport(el, text) {
  el.value = text ?? "";
  const bad = /NOT FOUND|NOBODY|^warning:|^error:/m.test(el.value);
  el.dataset.lumosxStatus = el.value ? (bad ? "warning" : "ok") : "";
  el.style.borderColor = !el.value ? "#445" : bad ? "#d00000" : "#3cb44b";
}

export function showReport(node, message) {
  const text = message?.text;
  if (text == null) return;
  const value = Array.isArray(text) ? text.join("\n") : String(text);
  addReportWidget(node);
  const widget = node.widgets?.find((w) => w.name === REPORT_WIDGET);
  if (widget) widget.value = value;
  else if (node.__lumosxReport) setReport(node.__lumosxReport, value);
  const size = node.computeSize?.();
  if (size && size[1] > node.size[1]) node.setSize([node.size[0], size[1]]);
  node.setDirtyCanvas?.(true, true);
}

// ---------------------------------------------------------------------------------------
app.registerExtension({
  name: "LumosX.Frontend",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData?.name ?? "";
    if (!name.startsWith("LumosX")) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      if (!this.color) {
        this.color = LUMOSX_COLOR;
        this.bgcolor = LUMOSX_BGCOLOR;
      }
      if (name in REPORT_NODES) addReportWidget(this);
      return r;
    };

    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (type, index, connected, link, slot) {
      const r = onConnectionsChange?.apply(this, arguments);
      if (this.__lumosxConfiguring) return r;
      const inputName = slot?.name ?? this.inputs?.[index]?.name;
      if (name === PERSON && type === INPUT && attributeNumber(inputName)) {
        // after the link bookkeeping of connect/disconnect has finished
        queueMicrotask(() => {
          if (this.graph) updateAttributeSlots(this);
        });
      }
      scheduleRefresh(this.graph);
      return r;
    };

    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      const graph = this.graph ?? app.graph;
      const r = onRemoved?.apply(this, arguments);
      scheduleRefresh(graph);
      return r;
    };

    // the app draws every title of a node type in its class's title_text_color
    if (name === REFERENCE) nodeType.title_text_color = "#111111"; // ~5:1 on NON_PERSON_COLOR
    if (name === PERSON) {
      nodeType.title_text_color = "#ffffff"; // readable on every person colour
      // loading a saved graph calls onConnectionsChange for every input while the inputs
      // are rebuilt: tidy up once configure is done
      const configure = nodeType.prototype.configure;
      nodeType.prototype.configure = function (info) {
        this.__lumosxConfiguring = true;
        try {
          return configure.apply(this, arguments);
        } finally {
          this.__lumosxConfiguring = false;
          updateAttributeSlots(this);
        }
      };
      const onDrawForeground = nodeType.prototype.onDrawForeground;
      nodeType.prototype.onDrawForeground = function (ctx) {
        const r = onDrawForeground?.apply(this, arguments);
        drawPersonBadge(this, ctx);
        return r;
      };
    }

    if (name in REPORT_NODES) {
      const onExecuted = nodeType.prototype.onExecuted;
      nodeType.prototype.onExecuted = function (message) {
        const r = onExecuted?.apply(this, arguments);
        showReport(this, message);
        return r;
      };
    }
  },

  nodeCreated(node) {
    if (node.comfyClass === PERSON || node.type === PERSON) {
      // a fresh node: one empty attribute pair (a node being loaded is configured later)
      updateAttributeSlots(node);
    }
  },

  async afterConfigureGraph() {
    refreshColors(app.graph);
  },
});
