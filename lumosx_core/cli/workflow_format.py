"""UI-format ComfyUI workflows (what the canvas saves) -> API format (what ``/prompt`` takes).

Follows what the ComfyUI frontend (``graphToPrompt``, 1.16 and later) does, using the
server's ``/object_info`` for the order of each node's widgets:

* widgets are created in ``input_order`` (required, then optional), then inputs not listed
  there, then the ``upload`` button the frontend adds to image/video upload combos;
* an INT with ``control_after_generate`` (or, by the old convention, an INT named ``seed`` /
  ``noise_seed``) is followed by one extra ``widgets_values`` entry (the control mode), a
  combo with ``control_after_generate`` by two; they and the upload button never reach the
  API;
* a ``forceInput`` input has no widget; an input given both a widget value and a link takes
  the link;
* frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not sent: reroutes are
  followed, a primitive's value is used; muted nodes are dropped with the inputs that point at
  them; bypassed nodes are bridged by the first input of a matching type.

Group nodes and subgraphs are refused with a message (open and re-save them in the app, or
export the API format from there).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

#: Widget types of the ComfyUI frontend (``ComfyWidgets``); anything else is a socket.
WIDGET_TYPES = {"INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD",
                "COLOR", "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA"}
#: Nodes that exist only in the frontend.
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")
MODE_NEVER = 2   # muted
MODE_BYPASS = 4


class WorkflowError(ValueError):
    """A workflow that cannot be converted or run (the message says why)."""


def is_ui_workflow(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def is_api_workflow(data: Any) -> bool:
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and "class_type" in v for v in data.values()))


def _spec_type(spec) -> str:
    t = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    if isinstance(t, (list, tuple)):
        return "COMBO"
    return str(t)


def _spec_options(spec) -> dict:
    if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1]
    return {}


def ordered_inputs(node_def: dict) -> List[Tuple[str, Any, bool]]:
    """``(name, spec, optional)`` in the order the frontend creates sockets and widgets."""
    inp = node_def.get("input") or {}
    required = dict(inp.get("required") or {})
    optional = dict(inp.get("optional") or {})
    # the frontend's upload extension appends an ``upload`` button to ``required``
    for name, spec in list(required.items()):
        opts = _spec_options(spec)
        if _spec_type(spec) == "COMBO" and any(opts.get(f) is True for f in UPLOAD_FLAGS):
            required["upload"] = ["IMAGEUPLOAD", dict(opts, imageInputName=name)]
            break
    merged = [(n, s, False) for n, s in required.items()]
    merged += [(n, s, True) for n, s in optional.items() if n not in required]
    order = node_def.get("input_order")
    if not order:
        return merged
    by_name = {n: (n, s, o) for n, s, o in merged}
    out, seen = [], set()
    for group, is_opt in (("required", False), ("optional", True)):
        for name in order.get(group) or []:
            item = by_name.get(name)
            if item is not None and item[2] == is_opt and name not in seen:
                out.append(item)
                seen.add(name)
    out += [item for item in merged if item[0] not in seen]
    return out


def widget_layout(node_def: dict) -> List[Tuple[Optional[str], bool, Any]]:
    """One ``(input name or None, sent to the API, default)`` per ``widgets_values`` entry."""
    layout = []
    for name, spec, _ in ordered_inputs(node_def):
        wtype = _spec_type(spec)
        opts = _spec_options(spec)
        if wtype not in WIDGET_TYPES or opts.get("forceInput"):
            continue
        if wtype == "IMAGEUPLOAD":
            layout.append((name, False, "image"))
            continue
        layout.append((name, True, _default(spec)))
        control = opts.get("control_after_generate")
        if wtype == "INT":
            if control is None:
                control = name in ("seed", "noise_seed")
            if control:
                layout.append((None, False, "randomize"))
        elif wtype == "COMBO" and control:
            layout += [(None, False, "randomize"), (None, False, "")]
    return layout


def _default(spec):
    opts = _spec_options(spec)
    if "default" in opts:
        return opts["default"]
    t = spec[0] if isinstance(spec, (list, tuple)) and spec else None
    if isinstance(t, (list, tuple)):
        return t[0] if t else None
    if t == "COMBO":
        options = opts.get("options") or []
        return options[0] if options else None
    return {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False, "STRING": ""}.get(t)


def _links(ui: dict) -> Dict[int, Tuple[Any, int, Any, int, Any]]:
    out = {}
    for link in ui.get("links") or []:
        if isinstance(link, dict):
            out[link["id"]] = (link["origin_id"], link["origin_slot"], link["target_id"],
                               link["target_slot"], link.get("type"))
        else:
            lid, o, os_, t, ts = link[:5]
            out[lid] = (o, os_, t, ts, link[5] if len(link) > 5 else None)
    return out


def _api_value(value):
    # lists are links in the API format: the frontend wraps list values
    return {"__value__": value} if isinstance(value, list) else value


def _type_ok(slot_type, want) -> bool:
    if want in (None, "", "*") or slot_type in (None, "", "*"):
        return True
    a = set(str(slot_type).split(","))
    b = set(str(want).split(","))
    return bool(a & b)


def ui_to_api(ui: dict, object_info: dict) -> Dict[str, dict]:
    """Convert a UI-format workflow with the server's ``/object_info``."""
    if not is_ui_workflow(ui):
        raise WorkflowError("not a UI-format workflow (no 'nodes' / 'links')")
    if (ui.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("subgraphs are not supported by this converter: export the API "
                            "format from the ComfyUI menu (Workflow > Export (API))")
    nodes = {n["id"]: n for n in ui["nodes"]}
    links = _links(ui)

    missing = sorted({n["type"] for n in nodes.values()
                      if n["type"] not in object_info and n["type"] not in VIRTUAL_NODES})
    if missing:
        groups = [m for m in missing if m.startswith(("workflow>", "workflow/"))]
        if groups:
            raise WorkflowError(f"group nodes are not supported: {', '.join(groups)} (convert "
                                f"them to nodes in the app, or export the API format)")
        raise WorkflowError("the server does not know these node types: " + ", ".join(missing)
                            + " (install the packs that provide them)")

    def resolve(link_id, want_type=None, depth=0):
        """-> ('link', [id, slot]) | ('value', v) | None"""
        if depth > 64:
            raise WorkflowError("link cycle through reroute/bypassed nodes")
        link = links.get(link_id)
        if link is None:
            return None
        origin_id, origin_slot = link[0], link[1]
        origin = nodes.get(origin_id)
        if origin is None:
            return None
        kind = origin["type"]
        if kind == "Reroute":
            ins = origin.get("inputs") or []
            return resolve(ins[0].get("link"), want_type, depth + 1) if ins else None
        if kind == "PrimitiveNode":
            values = origin.get("widgets_values") or []
            return ("value", values[0]) if values else None
        if kind in VIRTUAL_NODES:
            return None
        if origin.get("mode") == MODE_BYPASS:
            ins = origin.get("inputs") or []
            outs = origin.get("outputs") or []
            out_type = outs[origin_slot].get("type") if origin_slot < len(outs) else None
            pick = None
            if origin_slot < len(ins) and _type_ok(ins[origin_slot].get("type"), out_type) \
                    and _type_ok(ins[origin_slot].get("type"), want_type):
                pick = origin_slot
            else:
                for i, s in enumerate(ins):
                    if s.get("type") == want_type:
                        pick = i
                        break
                else:
                    for i, s in enumerate(ins):
                        if _type_ok(s.get("type"), out_type) and _type_ok(s.get("type"), want_type):
                            pick = i
                            break
            if pick is None or ins[pick].get("link") is None:
                return None
            return resolve(ins[pick]["link"], want_type, depth + 1)
        return ("link", [str(origin_id), int(origin_slot)])

    api: Dict[str, dict] = {}
    for node_id in sorted(nodes, key=_id_key):
        node = nodes[node_id]
        kind = node["type"]
        if kind in VIRTUAL_NODES or node.get("mode") in (MODE_NEVER, MODE_BYPASS):
            continue
        node_def = object_info[kind]
        inputs: Dict[str, Any] = {}
        values = node.get("widgets_values")
        layout = widget_layout(node_def)
        if isinstance(values, dict):
            for name, to_api, default in layout:
                if name and to_api:
                    inputs[name] = _api_value(values.get(name, default))
        else:
            values = list(values or [])
            for i, (name, to_api, default) in enumerate(layout):
                if name and to_api:
                    inputs[name] = _api_value(values[i] if i < len(values) else default)
        for slot in node.get("inputs") or []:
            if slot.get("link") is None:
                continue
            got = resolve(slot["link"], slot.get("type"))
            if got is None:  # e.g. a bypassed node with no matching input: as the app does
                continue
            how, value = got
            inputs[slot["name"]] = _api_value(value) if how == "value" else value
        title = node.get("title") or node_def.get("display_name") or kind
        api[str(node_id)] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}

    for entry in api.values():  # inputs pointing at muted / dropped nodes go, as in the app
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in api:
                del entry["inputs"][name]
    return api


def _id_key(node_id):
    try:
        return (0, int(node_id), "")
    except (TypeError, ValueError):
        return (1, 0, str(node_id))
