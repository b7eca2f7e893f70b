#!/usr/bin/env python
"""Write ``locales/en/nodeDefs.json``, the base of the pack's ComfyUI translations, from the live
``/object_info`` of a ComfyUI that has this pack loaded.

ComfyUI's server merges every custom-node pack's ``locales/<lang>/{main,nodeDefs}.json`` into
its ``/i18n`` answer, and the frontend looks a node's texts up there by node id (display name,
description, each input's name and tooltip, each output's name and tooltip by output index),
falling back to ``/object_info``'s own texts. The English file is therefore exactly what
``/object_info`` says; ``locales/zh/nodeDefs.json`` translates the same keys by hand, and
``tests/test_help_pages.py`` fails when either no longer matches the nodes (run this script
again, then bring the Chinese file up to date).

    python scripts/make_locales.py                 # starts the test host (CPU, no models)
    python scripts/make_locales.py --url http://127.0.0.1:8188   # or asks a running ComfyUI
    python scripts/make_locales.py --check         # exit 1 if the file is out of date
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOCALES = os.path.join(ROOT, "locales")
EN_NODEDEFS = os.path.join(LOCALES, "en", "nodeDefs.json")
PREFIX = "LumosX"   # every node id of the pack starts with it


def our_nodes(object_info: dict) -> dict:
    """The entries of ``/object_info`` that are this pack's nodes, by node id."""
    return {k: v for k, v in sorted(object_info.items())
            if k.startswith(PREFIX) and str(v.get("python_module", "custom_nodes.")).startswith(
                "custom_nodes.")}


def _inputs(info: dict) -> dict:
    out = {}
    for section in ("required", "optional"):   # "hidden" inputs are not shown to users
        for name, spec in (info.get("input") or {}).get(section, {}).items():
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            entry = {"name": name}
            if opts.get("tooltip"):
                entry["tooltip"] = opts["tooltip"]
            out[name] = entry
    return out


def _outputs(info: dict) -> dict:
    names = info.get("output_name") or info.get("output") or []
    tips = info.get("output_tooltips") or []
    out = {}
    for i, name in enumerate(names):
        entry = {"name": name}
        if i < len(tips) and tips[i]:
            entry["tooltip"] = tips[i]
        out[str(i)] = entry
    return out


def node_defs(object_info: dict) -> dict:
    """``nodeDefs.json`` in the frontend's layout for this pack's nodes of ``object_info``."""
    defs = {}
    for node_id, info in our_nodes(object_info).items():
        entry = {"display_name": info.get("display_name") or node_id}
        if info.get("description"):
            entry["description"] = info["description"]
        entry["inputs"] = _inputs(info)
        entry["outputs"] = _outputs(info)
        defs[node_id] = entry
    return defs


def categories(object_info: dict) -> dict:
    """``main.json``'s ``nodeCategories``: each segment of our nodes' categories, as itself."""
    segs = sorted({s for info in our_nodes(object_info).values()
                   for s in str(info.get("category", "")).split("/") if s})
    return {"nodeCategories": {s: s for s in segs}}


def dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def live_object_info(url: str | None) -> dict:
    if url:
        with urllib.request.urlopen(url.rstrip("/") + "/object_info", timeout=120) as r:
            return json.load(r)
    import frontend   # the test host, headless on the CPU, in a throw-away base directory
    with tempfile.TemporaryDirectory(prefix="lumosx-locales-") as base:
        host = frontend.start_host(base)
        try:
            return live_object_info(host.url)
        finally:
            host.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running ComfyUI with this pack (default: start the test host)")
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when stale")
    args = ap.parse_args(argv)
    info = live_object_info(args.url)
    files = {EN_NODEDEFS: dumps(node_defs(info)),
             os.path.join(LOCALES, "en", "main.json"): dumps(categories(info))}
    stale = []
    for path, text in files.items():
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "locales/en is up to date")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
