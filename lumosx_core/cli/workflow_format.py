"""UI-format ComfyUI workflows (what the canvas saves) -> API format (what ``/prompt`` takes).

Follows what the ComfyUI frontend (``graphToPrompt``, 1.16 to 1.49) does, using the server's
``/object_info`` for each node's inputs:

* widgets are created in ``input_order`` (required, then optional), then inputs not listed
  there, then the ``upload`` button the frontend adds to image/video/audio upload combos; an
  input has a widget when its type (or its ``widgetType``) is one of the frontend's widget
  types and it is not ``forceInput``;
* a dynamic combo (``COMFY_DYNAMICCOMBO_V3``, ComfyUI 0.4+) is a combo whose chosen option
  adds that option's inputs right after it, named ``<combo>.<input>`` (required, then
  optional; nested combos the same way): ``"format": "mp4", "format.codec": "h264"``;
* autogrow groups (``COMFY_AUTOGROW_V3``), match-type and dynamic-slot inputs and multi-typed
  inputs without a ``widgetType`` are sockets: their links keep the socket's name
  (``images.image0``); multi-select combos and other list values are sent as
  ``{"__value__": [...]}``, curves (whatever their value) as ``{"__type__": "CURVE",
  "__value__": ...}``, as the newest frontends send them (the server unwraps ``__value__``);
* an INT with ``control_after_generate`` (or, by the old convention, an INT named ``seed`` /
  ``noise_seed``) is followed by one extra ``widgets_values`` entry (the control mode), a
  combo with ``control_after_generate`` by two; they and the upload button never reach the
  API;
* an input given both a widget value and a link takes the link;
* frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not sent: reroutes are
  followed, a primitive's value is used; muted nodes are dropped with the inputs that point at
  them; bypassed nodes are bridged by the first input of a matching type.

A saved value the server's definition of the node has no place for (more ``widgets_values``
than widgets, an unknown name, a dynamic-combo choice that is not one of its options) is an
error naming the node and the input, never a silently dropped value. Group nodes and subgraphs
are refused with a message (open and re-save them in the app, or export the API format).
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

#: Widget types of the ComfyUI frontend (``ComfyWidgets`` of 1.16 to 1.49, and the widgets its
#: core extensions register); an input of any other type is a socket only.
WIDGET_TYPES = {"INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD",
                "COLOR", "IMAGECOMPARE", "BOUNDING_BOX", "CHART", "GALLERIA", "PAINTER",
                "COMPOSITOR", "TEXTAREA", "CURVE", "RANGE", "VIDEO_EDIT", "BOUNDING_BOXES",
                "COLORS", "WEBCAM", "AUDIOUPLOAD", "LOAD_3D"}
#: widgets the app sends but does not save in ``widgets_values``, with the value it sends
UNSAVED_WIDGETS = {"IMAGECOMPARE": {"__value__": ["", ""]}}
#: a bounding box drawn by a component also saves the component's own fields (not sent)
BOX_COMPONENT_FIELDS = ("x", "y", "width", "height")
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
#: Nodes that exist only in the frontend.
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
#: combo flags for which the frontend adds an upload button widget, and its type
UPLOAD_FLAGS = {"image_upload": "IMAGEUPLOAD", "video_upload": "IMAGEUPLOAD",
                "animated_image_upload": "IMAGEUPLOAD", "audio_upload": "AUDIOUPLOAD"}
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


def _widget_type(spec) -> Optional[str]:
    """The widget the frontend makes for an input, or None (a socket only)."""
    opts = _spec_options(spec)
    if opts.get("forceInput"):
        return None
    wtype = opts.get("widgetType") or _spec_type(spec)
    if wtype in WIDGET_TYPES or wtype == DYNAMIC_COMBO:
        return wtype
    return None


def _section_items(inputs: dict) -> List[Tuple[str, Any, bool]]:
    """``(name, spec, optional)`` of a V1 input dict, required first (a dynamic combo's
    option inputs come in this order)."""
    out = [(n, s, False) for n, s in (inputs.get("required") or {}).items()]
    out += [(n, s, True) for n, s in (inputs.get("optional") or {}).items()]
    return out


def ordered_inputs(node_def: dict) -> List[Tuple[str, Any, bool]]:
    """``(name, spec, optional)`` in the order the frontend creates sockets and widgets."""
    inp = node_def.get("input") or {}
    required = dict(inp.get("required") or {})
    optional = dict(inp.get("optional") or {})
    # the frontend's upload extensions append an ``upload`` button to ``required``
    for name, spec in list(required.items()):
        opts = _spec_options(spec)
        if _spec_type(spec) == "COMBO":
            flag = next((f for f in UPLOAD_FLAGS if opts.get(f) is True), None)
            if flag:
                required["upload"] = [UPLOAD_FLAGS[flag], dict(opts, imageInputName=name)]
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


def _combo_keys(spec) -> List[Any]:
    return [o.get("key") for o in _spec_options(spec).get("options") or []
            if isinstance(o, dict)]


def _combo_option_inputs(spec, key) -> Optional[List[Tuple[str, Any, bool]]]:
    for o in _spec_options(spec).get("options") or []:
        if isinstance(o, dict) and o.get("key") == key:
            return _section_items(o.get("inputs") or {})
    return None


class _Slot:
    """One ``widgets_values`` entry: the input it belongs to (None for the control and upload
    widgets, which never reach the API), its widget type and default."""
    __slots__ = ("name", "wtype", "default", "sent", "saved")

    def __init__(self, name, wtype, default, sent=True, saved=True):
        self.name, self.wtype, self.default, self.sent = name, wtype, default, sent
        self.saved = saved  # has a ``widgets_values`` entry


def _walk(items, take, prefix: str = "") -> Iterator[Tuple[_Slot, Any]]:
    """Widgets in frontend order, each with its value from ``take(slot)``; a dynamic combo's
    chosen option decides which widgets follow it."""
    for name, spec, _ in items:
        wtype = _widget_type(spec)
        if wtype is None:
            continue
        opts = _spec_options(spec)
        full = prefix + name
        if wtype in ("IMAGEUPLOAD", "AUDIOUPLOAD"):
            slot = _Slot(None, wtype, "image")
            yield slot, take(slot)
            continue
        if wtype == DYNAMIC_COMBO:
            keys = _combo_keys(spec)
            slot = _Slot(full, wtype, opts.get("default", keys[0] if keys else None))
            value = take(slot)
            yield slot, value
            chosen = _combo_option_inputs(spec, value)
            if chosen is None:
                raise WorkflowError(f"input '{full}': {value!r} is not one of its options "
                                    f"{keys}")
            yield from _walk(chosen, take, full + ".")
            continue
        if wtype in UNSAVED_WIDGETS:
            yield _Slot(full, wtype, UNSAVED_WIDGETS[wtype], saved=False), UNSAVED_WIDGETS[wtype]
            continue
        slot = _Slot(full, wtype, _default(spec))
        yield slot, take(slot)
        if wtype == "BOUNDING_BOX" and opts.get("component"):
            for field in BOX_COMPONENT_FIELDS:
                c = _Slot(None, "component", (slot.default or {}).get(field))
                yield c, take(c)
        control = opts.get("control_after_generate")
        if wtype == "INT":
            if control is None:  # by the full name: a dynamic input's "x.seed" has none
                control = full in ("seed", "noise_seed")
            if control:
                c = _Slot(None, "control", "randomize")
                yield c, take(c)
        elif wtype == "COMBO" and control:
            for default in ("randomize", ""):
                c = _Slot(None, "control", default)
                yield c, take(c)


def widget_inputs(node_def: dict, values) -> Dict[str, Any]:
    """The API inputs that a node's saved ``widgets_values`` (list or dict form) stand for.
    Raises :class:`WorkflowError` (without the node: the caller adds it) for a value with no
    widget to go to."""
    items = ordered_inputs(node_def)
    out: Dict[str, Any] = {}
    if isinstance(values, dict):
        used = set()

        def take(slot):
            if slot.name is not None and slot.name in values:
                used.add(slot.name)
                return values[slot.name]
            return slot.default

        for slot, value in _walk(items, take):
            if slot.name is not None and slot.sent and value is not None:
                out[slot.name] = _api_value(value, slot.wtype)
        extra = [k for k in values if k not in used]
        if extra:
            raise WorkflowError(f"saved value(s) for {', '.join(map(repr, extra))}, which the "
                                f"server's definition of the node has no widget for")
        return out
    values = list(values or [])
    pos = 0

    def take(slot):
        nonlocal pos
        pos += 1
        return values[pos - 1] if pos - 1 < len(values) else slot.default

    last = None
    for slot, value in _walk(items, take):
        if slot.name is not None:
            last = slot.name
            if slot.sent and value is not None:  # an empty combo (no files): not sent
                out[slot.name] = _api_value(value, slot.wtype)
    if pos < len(values):
        raise WorkflowError(
            f"{len(values)} widget values saved but the server's definition of the node has "
            f"widgets for {pos} (last input: {last!r}); cannot map {values[pos:]!r}: was it "
            f"saved with another version of the node or a frontend extension? Open it in the "
            f"app and save it again, or export the API format")
    return out


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


def _api_value(value, wtype: Optional[str] = None):
    # lists are links in the API format: the frontend wraps list values, and curves typed
    # whatever their value (older frontends left a curve that is not a list bare; the server
    # reads both the same)
    if wtype == "CURVE" and value is not None:
        return {"__type__": "CURVE", "__value__": value}
    if isinstance(value, list):
        return {"__value__": value}
    return value


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
        try:
            inputs = widget_inputs(node_def, node.get("widgets_values"))
        except WorkflowError as e:
            title = node.get("title") or node_def.get("display_name") or kind
            raise WorkflowError(f"node {node_id} ({kind}, '{title}'): {e}") from None
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
