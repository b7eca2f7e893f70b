#!/usr/bin/env python
"""Write ``locales/en/nodeDefs.json``, the base of the pack's ComfyUI translations, from the live
``/object_info`` of a ComfyUI that has this pack loaded, and the inputs/outputs tables of the
node help pages (``web/docs/<NodeId>.md``, ``web/docs/<NodeId>/zh.md``) from the locale files.

ComfyUI's server merges every custom-node pack's ``locales/<lang>/{main,nodeDefs}.json`` into
its ``/i18n`` answer, and the frontend looks a node's texts up there by node id (display name,
description, each input's name and tooltip, each output's name and tooltip by output index),
falling back to ``/object_info``'s own texts. The English file is therefore exactly what
``/object_info`` says; ``locales/zh/nodeDefs.json`` translates the same keys by hand, and
``tests/test_help_pages.py`` fails when either no longer matches the nodes (run this script
again, then bring the Chinese file up to date). ``locales/zh/translated_from.json`` holds the
English texts the Chinese file translates (ComfyUI loads only its fixed file names, not this
one): a Chinese text whose English has changed since is stale, and ``--check`` says which.
The help pages are written by hand except the part between the ``IO_BEGIN`` / ``IO_END``
markers, which this script rewrites (one row per input and output, its type from
``/object_info``, its name and tooltip in the page's language).

    python scripts/make_locales.py                 # starts the test host (CPU, no models)
    python scripts/make_locales.py --url http://127.0.0.1:8188   # or asks a running ComfyUI
    python scripts/make_locales.py --check         # exit 1 if the file is out of date
    python scripts/make_locales.py --zh-done       # after translating: record the English
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOCALES = os.path.join(ROOT, "locales")
EN_NODEDEFS = os.path.join(LOCALES, "en", "nodeDefs.json")
ZH_SOURCE = os.path.join(LOCALES, "zh", "translated_from.json")
PREFIX = "LumosX"   # every node id of the pack starts with it
DOCS = os.path.join(ROOT, "web", "docs")
LANGS = ("en", "zh")
IO_BEGIN = "<!-- inputs and outputs: written by scripts/make_locales.py, do not edit by hand -->"
IO_END = "<!-- end of inputs and outputs -->"
HEADINGS = {"en": ("Inputs", "Outputs", "Input", "Output", "Type", "What it is", "none"),
            "zh": ("输入", "输出", "输入", "输出", "类型", "说明", "无")}


def our_nodes(object_info: dict) -> dict:
    """The entries of ``/object_info`` that are this pack's nodes, by node id: ids with our
    prefix from the pack most of them come from (not, e.g., the test host's ``LumosXTest*``)."""
    mine = {k: v for k, v in sorted(object_info.items()) if k.startswith(PREFIX)}
    modules = collections.Counter(v.get("python_module") for v in mine.values())
    pack = modules.most_common(1)[0][0] if modules else None
    return {k: v for k, v in mine.items() if v.get("python_module") == pack}


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


def page_path(node_id: str, lang: str) -> str:
    """Where the frontend looks for a node's help: ``docs/<id>/<locale>.md``, then ``<id>.md``."""
    return os.path.join(DOCS, f"{node_id}.md" if lang == "en" else os.path.join(node_id, f"{lang}.md"))


def _cell(text: str) -> str:
    """Markdown table cell text: no pipes or line breaks, and ``<pack>`` kept as text (the help
    panel renders HTML and drops unknown tags)."""
    return " ".join(str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())


def _type(spec) -> str:
    kind = spec[0] if isinstance(spec, (list, tuple)) else spec
    return "COMBO" if isinstance(kind, (list, tuple)) else str(kind)


def io_tables(info: dict, defs: dict, lang: str) -> str:
    """The inputs and outputs of one node as two markdown tables in ``lang`` (``defs``: that
    language's nodeDefs entry of the node; English texts where it lacks one)."""
    h_in, h_out, c_in, c_out, c_type, c_what, none = HEADINGS[lang]
    en = node_defs({info["name"]: info})[info["name"]]
    specs = {n: sp for sec in ("required", "optional")
             for n, sp in (info.get("input") or {}).get(sec, {}).items()}
    lines = [IO_BEGIN, f"## {h_in}", ""]
    rows = []
    for name, entry in en["inputs"].items():
        loc = defs.get("inputs", {}).get(name, {})
        shown = f"`{name}`" + (f" {loc['name']}" if loc.get("name", name) != name else "")
        rows.append(f"| {_cell(shown)} | {_type(specs[name])} | "
                    f"{_cell(loc.get('tooltip') or entry.get('tooltip', ''))} |")
    lines += ([f"| {c_in} | {c_type} | {c_what} |", "|---|---|---|", *rows] if rows else [none])
    lines += ["", f"## {h_out}", "", f"| {c_out} | {c_type} | {c_what} |", "|---|---|---|"]
    for i, entry in en["outputs"].items():
        loc = defs.get("outputs", {}).get(i, {})
        shown = f"`{entry['name']}`" + (f" {loc['name']}" if loc.get("name", entry["name"]) != entry["name"] else "")
        lines.append(f"| {_cell(shown)} | {_type(info['output'][int(i)])} | "
                     f"{_cell(loc.get('tooltip') or entry.get('tooltip', ''))} |")
    return "\n".join(lines + [IO_END])


def with_io(page: str, tables: str) -> str:
    """``page`` with its part between the markers replaced by ``tables``."""
    start, end = page.find(IO_BEGIN), page.find(IO_END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no '{IO_BEGIN}' ... '{IO_END}' part")
    return page[:start] + tables + page[end + len(IO_END):]


def load_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def help_pages(object_info: dict) -> dict:
    """``{path: text}`` of every node help page with its tables brought up to date (a missing
    page is ``None``: it has to be written by hand first)."""
    pages = {}
    for lang in LANGS:
        defs = load_json(os.path.join(LOCALES, lang, "nodeDefs.json"))
        for node_id, info in our_nodes(object_info).items():
            path = page_path(node_id, lang)
            if not os.path.exists(path):
                pages[path] = None
                continue
            with open(path, encoding="utf-8") as f:
                pages[path] = with_io(f.read(), io_tables(info, defs.get(node_id, {}), lang))
    return pages


def leaves(defs: dict, prefix: str = "") -> dict:
    """Every text of a nodeDefs dict by its dotted key (``LumosXBind.inputs.prompt.tooltip``)."""
    out = {}
    for key, value in defs.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def stale_translations(en: dict, source: dict) -> list:
    """The keys of ``en`` (the English nodeDefs) whose text differs from ``source`` (the English
    the Chinese file was translated from): their Chinese text is out of date."""
    was = leaves(source)
    return [k for k, text in leaves(en).items() if was.get(k) != text]


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
    ap.add_argument("--zh-done", action="store_true",
                    help="the Chinese file is translated from today's English: record it")
    args = ap.parse_args(argv)
    if args.zh_done:
        with open(ZH_SOURCE, "w", encoding="utf-8") as f:
            f.write(dumps(load_json(EN_NODEDEFS)))
        print(f"recorded: {os.path.relpath(ZH_SOURCE, ROOT)}")
        return 0
    info = live_object_info(args.url)
    files = {EN_NODEDEFS: dumps(node_defs(info)),
             os.path.join(LOCALES, "en", "main.json"): dumps(categories(info))}
    files.update(help_pages(info))
    missing = [os.path.relpath(p, ROOT) for p, t in files.items() if t is None]
    stale = []
    for path, text in files.items():
        if text is None:
            continue
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "locales/en and the help pages are up to date")
    if missing:
        print(f"help pages missing (write them, with the two markers): {', '.join(missing)}")
    old_zh = stale_translations(node_defs(info), load_json(ZH_SOURCE))
    if old_zh:
        print(f"Chinese texts older than their English (translate them in locales/zh/"
              f"nodeDefs.json, then run with --zh-done): {', '.join(old_zh)}")
    return 1 if missing or old_zh or (args.check and stale) else 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
