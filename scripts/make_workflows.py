#!/usr/bin/env python
"""Build the shipped workflows in ComfyUI's own frontend and save them in both formats.

For each workflow of ``scripts/workflow_specs.py`` this starts the test host (a throw-away
base directory, no models needed), builds the graph through the app (LiteGraph.createNode,
connect, widget values, this pack's frontend extension), lays it out, and writes what the app
itself produces:

* ``workflows/<name>.json``      the UI format (``app.graphToPrompt().workflow``: what Save /
                                 Export write; drag it onto the canvas), its loader nodes
                                 carrying each model file's download address and folder
                                 (``properties.models``, from ``lumosx_core/models.json``);
* ``workflows/api/<name>.api.json``  the API format (``app.graphToPrompt().output``: what
                                 the Queue button sends to ``/prompt``; what ``lumosx run``
                                 queues). In a subfolder: ComfyUI's templates browser lists
                                 every ``workflows/*.json`` of a pack as a template (its
                                 ``/workflow_templates`` globs ``custom_nodes/*/workflows/*.json``),
                                 and an API file opens there as an empty canvas.

``tests/test_workflows.py`` checks that converting each UI file with
``lumosx_core.cli.workflow_format`` gives exactly the API file, and ``tests/test_browser.py`` that
the app still produces it after loading the UI file.

    make workflows   # or: $(python3 -I lumosx_core/cli/host.py python --oldest) scripts/make_workflows.py [--screenshots]

Make them on the OLDEST test host (``make workflows`` does): ComfyUI's newer frontends load
older saves (0.33's reads a 0.3.75 ``SaveVideo`` as ``format`` + ``format.codec``), not the
other way round; ``tests/test_browser.py`` and ``tests/test_workflows.py`` check the files on
every host.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import frontend
import standin
import workflow_specs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

OUT = os.path.join(ROOT, "workflows")

BUILD_JS = r"""
async (spec) => {
  const app = window.app;
  await app.loadGraphData({last_node_id: 0, last_link_id: 0, nodes: [], links: [], groups: [],
                           config: {}, extra: {}, version: 0.4}, true, false, null,
                          {showMissingNodesDialog: false, showMissingModelsDialog: false});
  const byId = {};
  for (const s of spec.nodes) {
    const n = LiteGraph.createNode(s.type);
    if (!n) throw new Error('cannot create ' + s.type);
    n.id = s.id;
    app.graph.add(n);
    if (n.id !== s.id) throw new Error(`node ${s.type}: id ${s.id} became ${n.id}`);
    if (s.title) n.title = s.title;
    for (const [k, v] of Object.entries(s.widgets || {})) {
      const w = (n.widgets || []).find((w) => w.name === k);
      if (!w) throw new Error(`${s.type}: no widget ${k}`);
      w.value = v;
    }
    // download metadata the frontend's missing-models dialog reads (properties.models)
    if (s.properties) Object.assign(n.properties ??= {}, s.properties);
    if (s.control) {
      const c = (n.widgets || []).find((w) => w.name === 'control_after_generate');
      if (!c) throw new Error(`${s.type}: no control_after_generate widget`);
      c.value = s.control;
    }
    byId[s.id] = n;
  }
  for (const [a, slot, b, name] of spec.links) {
    // a Person grows its next attribute input after the previous one is connected
    await new Promise((r) => setTimeout(r, 0));
    const dst = byId[b];
    const idx = dst.inputs.findIndex((i) => i.name === name);
    if (idx < 0) throw new Error(`${dst.type} ${b}: no input ${name} (has ${dst.inputs.map((i) => i.name)})`);
    if (!byId[a].connect(slot, dst, idx)) throw new Error(`cannot link ${a}:${slot} -> ${b}.${name}`);
  }
  await new Promise((r) => setTimeout(r, 0));
  // wait for the image previews of Load Image nodes: they change the nodes' sizes
  const loaders = Object.values(byId).filter((n) => n.type === 'LoadImage');
  for (let t = 0; t < 60 && loaders.some((n) => !(n.imgs && n.imgs.length)); t++)
    await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  // sizes: the app's own, widened where the spec says
  for (const s of spec.nodes) {
    const n = byId[s.id];
    const min = n.computeSize();
    // + room for what a run adds (the Bind report, a video player, preview images): the
    // node is saved that tall, so nothing grows into the node below it
    n.setSize([Math.max(s.width || 0, min[0], n.size[0]),
               Math.max(s.height || 0, min[1]) + (s.reserve || 0)]);
  }
  // layout: columns; nodes of one person / reference share a row band
  const gapX = 60, gapY = 40, th = LiteGraph.NODE_TITLE_HEIGHT;
  const cols = {};
  for (const s of spec.nodes) (cols[s.col] ??= []).push(s);
  const colX = {};
  let x = 0;
  for (const c of Object.keys(cols).map(Number).sort((p, q) => p - q)) {
    colX[c] = x;
    x += Math.max(...cols[c].map((s) => byId[s.id].size[0])) + gapX;
  }
  const bottom = {};
  let band = null, bandTop = 0;
  for (const s of spec.nodes) {
    const n = byId[s.id];
    let y;
    if (s.band != null) {
      if (s.band !== band) {
        band = s.band;
        bandTop = Math.max(0, ...[1, 2, 3].map((c) => bottom[c] ?? 0));
      }
      y = Math.max(bandTop, bottom[s.col] ?? 0);
    } else {
      y = bottom[s.col] ?? 0;
    }
    n.pos = [colX[s.col], y + th];
    bottom[s.col] = y + th + n.size[1] + gapY;
  }
  app.graph.setDirtyCanvas(true, true);
  return true;
}
"""


#: The view saved with each workflow (``extra.ds``), what the frontend restores when it opens
#: it: readable text (below ~0.6 the frontend draws nodes as blank boxes; the browser test
#: wants >= 0.8 at a 1920x1080 window) and the graph's top-left corner just inside the canvas,
#: clear of the side bar and the menus (in screen pixels).
VIEW = {"scale": 0.85, "left": 80, "top": 140}

VIEW_JS = r"""
(view) => {
  const nodes = window.app.graph._nodes || window.app.graph.nodes;
  const th = LiteGraph.NODE_TITLE_HEIGHT;
  const x0 = Math.min(...nodes.map((n) => n.pos[0]));
  const y0 = Math.min(...nodes.map((n) => n.pos[1] - th));
  const ds = window.app.canvas.ds;
  ds.scale = view.scale;
  ds.offset[0] = view.left / view.scale - x0;
  ds.offset[1] = view.top / view.scale - y0;
  window.app.canvas.setDirty(true, true);
}
"""


def build(app, spec: dict):
    app.js(BUILD_JS, spec)
    app.js(VIEW_JS, VIEW)
    return app.graph_to_prompt()


def clean_api(output: dict) -> dict:
    return {k: output[k] for k in sorted(output, key=int)}


def write_json(path: str, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="build only this workflow (name)")
    ap.add_argument("--out", default=OUT, help="folder to write (default workflows/)")
    ap.add_argument("--screenshots", action="store_true",
                    help="then run scripts/screenshot_workflows.py")
    args = ap.parse_args(argv)
    os.makedirs(os.path.join(args.out, "api"), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lumosx-wf-") as tmp:
        # the pictures the workflows load (drawn ones), so that the app sizes the Load Image
        # nodes with their previews
        standin.demo_inputs(os.path.join(tmp, "input"), photos=False)
        host = frontend.start_host(tmp)
        try:
            with frontend.open_app(host.url) as app:
                for make in workflow_specs.WORKFLOWS:
                    graph = make()
                    if args.only and graph.name not in args.only:
                        continue
                    workflow, output = build(app, graph.spec())
                    workflow.pop("id", None)  # a fresh id each time the app saves
                    ui_path = os.path.join(args.out, graph.name + ".json")
                    api_path = os.path.join(args.out, "api", graph.name + ".api.json")
                    write_json(ui_path, workflow)
                    write_json(api_path, clean_api(output))
                    print(f"wrote {os.path.relpath(ui_path, ROOT)} and "
                          f"{os.path.relpath(api_path, ROOT)} ({len(output)} nodes)")
                ours = app.errors(ours_only=True)
                if ours:
                    print("errors from the LumosX script:", *ours, sep="\n", file=sys.stderr)
                    return 1
        finally:
            host.stop()
    if args.screenshots:
        import screenshot_workflows
        return screenshot_workflows.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
