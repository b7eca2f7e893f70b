"""The shipped workflows, described once: ``scripts/make_workflows.py`` builds each of them
in ComfyUI's own frontend and saves what the app saves (UI format) and what it queues (API
format) into ``workflows/``. Model files are the ones of the pack's manifest
(``lumosx_core/models.json``, read through :mod:`lumosx_core.model_files`): their names, the
Note that says where each goes, and the download metadata on each loader node that ComfyUI's
frontend offers in its missing-models dialog."""
from __future__ import annotations

from lumosx_core.faces.detector import DEFAULT_PACKS
from lumosx_core.model_files import FETCH_COMMAND, load_manifest

# -- the real files (lumosx_core/models.json) --------------------------------------------------
MODELS = load_manifest()
DIT = MODELS.get("lumosx_dit").name          # models/diffusion_models/ (or models/lumosx/)
UMT5 = MODELS.get("umt5").name               # models/text_encoders/
VAE = MODELS.get("wan_vae").name             # models/vae/
FACE_PACK = MODELS.get("antelopev2").name    # models/insightface/models/antelopev2/
FACE_PACKS = DEFAULT_PACKS


def _note_entry(m) -> str:
    where = f"{m.folder}/models/{m.name}/*.onnx" if m.kind == "pack" else f"{m.folder}/{m.name}"
    how = "converted from" if m.kind == "convert" else "from"
    terms = "; non-commercial research licence" if m.kind == "pack" else ""
    return f"{where}\n  {m.what}, {how} {m.source}{terms}"


MODELS_NOTE = "\n\n".join([
    "MODEL FILES (ComfyUI/models/...)",
    f"One command downloads, verifies, converts and places them all:\n  {FETCH_COMMAND}\n"
    f"(from the pack folder; --comfyui DIR for another ComfyUI; docs/models.md)",
    *[_note_entry(m) for m in MODELS.models],
    "The DiT also works from models/lumosx/, and the released .pt or checkpoint folder loads as "
    "it is (python -m lumosx_core.convert converts by hand). buffalo_l works as face pack too.",
])


def model_metadata(node_type: str) -> dict:
    """Node properties with the download metadata ComfyUI's frontend reads for its
    missing-models dialog (``properties.models``: name, url, directory)."""
    entries = [m.frontend_entry() for m in MODELS.for_node(node_type) if m.kind != "pack"]
    return {"models": entries} if entries else {}


USAGE_NOTE = "\n\n".join([
    "HOW TO USE",
    "Photos: one photo per person in ComfyUI/input, picked in the 'Load photo' nodes (the Face "
    "Encoder finds and crops the face; with a group photo set select = index).",
    "Attributes (clothes, accessories) on a plain background: connect each to its person's "
    "next free attribute input; the Person node grows a new pair. Write the words that name it "
    "in the prompt in the matching phrase.",
    "Every phrase (face_phrase, phrase_N, Reference phrase) must occur in the prompt word for "
    "word. After a run the Bind node shows what each one matched; the binding preview (Save "
    "binding preview) frames every reference in its person's colour, the colour of its Person "
    "node.",
    "Defaults are the released ones: 832x480, 81 frames, 50 steps, CFG 6, shift 8, the "
    "released sampler and schedule (lumosx_released: the authors' flow DPM-Solver++ with "
    "integer DiT timesteps), face crops = the detector's face box, bf16 DiT.",
])

VIDEO = {"width": 832, "height": 480, "length": 81, "batch_size": 1}
SAMPLER = {"seed": 42, "steps": 50, "cfg": 6.0, "sampler_name": "lumosx_released",
           "scheduler": "lumosx_released", "shift": 8.0, "denoise": 1.0}
FACE = {"pack": FACE_PACK, "select": "largest", "index": 0, "margin": 0.3, "size": 512,
        "det_size": 640, "provider": "auto", "crop": "face box (released)"}
RELATIONAL_ON = {"ratio": 0.5, "r2pe": True, "self_mask": True, "cross_mask": True,
                 "mode": "parity", "strict": False, "weight_syntax": False}
RELATIONAL_OFF = dict(RELATIONAL_ON, r2pe=False, self_mask=False, cross_mask=False)


#: Height (canvas pixels) kept free in the nodes that show something after a run, so that it
#: grows into no other node: the report of Bind / People From Photo (web/lumosx.js: up to 14
#: lines of 16 px, 3 without a report), the video player, the preview images.
RESERVE = {"LumosXBind": 11 * 16, "LumosXPeopleFromPhoto": 11 * 16, "SaveVideo": 300,
           "SaveImage": 300, "PreviewImage": 300}


class Graph:
    """A workflow under construction: nodes in columns, links by input name."""

    def __init__(self, name: str, title: str, description: str):
        self.name = name
        self.title = title
        self.description = description
        self.nodes = []
        self.links = []
        self.band = None  # rows of the people/reference columns

    def add(self, node_type: str, col: int, title: str = None, box=(None, None),
            control: str = None, **widgets) -> int:
        """A node in column ``col``; ``box`` = minimum (width, height) in canvas pixels;
        ``widgets`` by input name; ``control`` = its control_after_generate mode. Loader
        nodes of the manifest's files get its download metadata (:func:`model_metadata`);
        nodes that show something after a run are made taller by their :data:`RESERVE`."""
        node_id = len(self.nodes) + 1
        self.nodes.append({"id": node_id, "type": node_type, "col": col, "title": title,
                           "width": box[0], "height": box[1], "control": control,
                           "reserve": RESERVE.get(node_type, 0),
                           "band": self.band if col in (1, 2, 3) else None,
                           "widgets": widgets, "properties": model_metadata(node_type)})
        return node_id

    def link(self, src: int, slot: int, dst: int, name: str) -> None:
        self.links.append([src, slot, dst, name])

    def spec(self) -> dict:
        return {"name": self.name, "nodes": self.nodes, "links": self.links}

    # -- building blocks ---------------------------------------------------------------------
    def models(self):
        self.add("Note", 0, title="Model files: where they go", box=(420, 440),
                 text=MODELS_NOTE)
        model = self.add("LumosXModelLoader", 0, box=(340, None), model_name=DIT,
                         weight_dtype="default", compute_dtype="bf16 (released)")
        clip = self.add("CLIPLoader", 0, box=(340, None), clip_name=UMT5, type="wan",
                        device="default")
        vae = self.add("VAELoader", 0, box=(340, None), vae_name=VAE)
        return model, clip, vae

    def person(self, n: int, photo: str, phrase: str, refs, attributes=()):
        self.band = (self.band or 0) + 1
        load = self.add("LoadImage", 1, title=f"Load photo: {phrase}", image=photo)
        face = self.add("LumosXFaceEncoder", 2, title=f"Face: {phrase}", **FACE)
        self.link(load, 0, face, "images")
        widgets = {"face_phrase": phrase}
        for i, (_, words) in enumerate(attributes, 1):
            widgets[f"phrase_{i}"] = words
        person = self.add("LumosXPerson", 3, title=f"Person {n}: {phrase}", box=(300, None),
                          **widgets)
        self.link(face, 0, person, "face")
        if refs is not None:
            self.link(refs, 0, person, "references")
        for i, (file, words) in enumerate(attributes, 1):
            img = self.add("LoadImage", 1, title=f"Load attribute: {words}", image=file)
            self.link(img, 0, person, f"attribute_{i}")
        return person

    def reference(self, kind: str, file: str, phrase: str, refs):
        self.band = (self.band or 0) + 1
        img = self.add("LoadImage", 1, title=f"Load {kind}: {phrase}", image=file)
        ref = self.add("LumosXReference", 3, title=f"Reference: {phrase} ({kind})",
                       box=(300, None), phrase=phrase, kind=kind)
        self.link(img, 0, ref, "image")
        if refs is not None:
            self.link(refs, 0, ref, "references")
        return ref

    def bind(self, clip, vae, refs, prompt, title=None, relational=RELATIONAL_ON):
        widgets = dict(prompt=prompt, **VIDEO, **relational)
        b = self.add("LumosXBind", 4, title=title, box=(400, None), **widgets)
        self.link(clip, 0, b, "clip")
        self.link(vae, 0, b, "vae")
        self.link(refs, 0, b, "references")
        return b

    def sample(self, model, bind, title=None):
        s = self.add("LumosXSampler", 5, title=title, box=(320, None), control="fixed",
                     **SAMPLER)
        self.link(model, 0, s, "model")
        self.link(bind, 0, s, "positive")
        self.link(bind, 1, s, "negative")
        self.link(bind, 2, s, "latent")
        return s

    def decode(self, sampler, vae):
        d = self.add("VAEDecode", 5)
        self.link(sampler, 0, d, "samples")
        self.link(vae, 0, d, "vae")
        return d

    def finish(self, model, clip, vae, refs, prompt, prefix: str):
        """How every single-video workflow ends: the usage note, Bind, Sampler, decode, save."""
        self.add("Note", 0, title="How to use", box=(420, 380), text=USAGE_NOTE)
        b = self.bind(clip, vae, refs, prompt)
        self.save(self.decode(self.sample(model, b), vae), prefix, b)

    def save(self, images, prefix: str, bind):
        video = self.add("CreateVideo", 6, fps=16.0)
        self.link(images, 0, video, "images")
        save = self.add("SaveVideo", 6, box=(360, None), filename_prefix=prefix, format="mp4",
                        codec="h264")
        self.link(video, 0, save, "video")
        prev = self.add("SaveImage", 6, title="Save binding preview", box=(360, None),
                        filename_prefix=prefix + "_preview")
        self.link(bind, 4, prev, "images")
        return save


# -- the workflows ------------------------------------------------------------------------
IDENTITY_PROMPT = ("A man and a woman walk side by side along a city street at sunset, smiling "
                   "at each other, cinematic light.")
SUBJECT_PROMPT = ("A man in a white jacket and a woman in a yellow scarf sit at a wooden table "
                  "next to a white lamp in a cozy, warmly lit room, talking and laughing.")
THREE_PROMPT = ("Three friends sit on a sofa in a cozy, warmly lit room: the man on the left in "
                "a denim jacket, the woman in the middle in a red dress, and the man on the right "
                "with glasses, laughing together.")
AB_PROMPT = ("A man in a white jacket and a woman in a yellow scarf talk in a cozy, warmly lit "
             "room.")
ROOM = "cozy, warmly lit room"


def identity_consistent() -> Graph:
    g = Graph("identity_consistent", "Identity-consistent: two people, faces only",
              "Two people from one photo each; every face keeps its identity.")
    g.add("Note", 0, title="About this workflow", box=(420, 120), text=(
        "IDENTITY-CONSISTENT VIDEO\nTwo people, faces only: each person is a face crop and "
        "the word that names them in the prompt. Chain more Person nodes to add people."))
    model, clip, vae = g.models()
    p1 = g.person(1, "lumosx_man.png", "man", None)
    p2 = g.person(2, "lumosx_woman.png", "woman", p1)
    g.finish(model, clip, vae, p2, IDENTITY_PROMPT, "lumosx_identity")
    return g


def subject_cast(g: Graph) -> int:
    """The subject-consistent references: the room, the white lamp, the man in the white
    jacket and the woman in the yellow scarf. Returns the last Person node."""
    bg = g.reference("background", "lumosx_room.png", ROOM, None)
    obj = g.reference("object", "lumosx_white_lamp.png", "white lamp", bg)
    p1 = g.person(1, "lumosx_man.png", "man", obj,
                  [("lumosx_white_jacket.png", "white jacket")])
    return g.person(2, "lumosx_woman.png", "woman", p1,
                    [("lumosx_yellow_scarf.png", "yellow scarf")])


def subject_consistent() -> Graph:
    g = Graph("subject_consistent", "Subject-consistent: two people with attributes, "
              "background and objects", "Each attribute picture lands on the right person.")
    g.add("Note", 0, title="About this workflow", box=(420, 140), text=(
        "SUBJECT-CONSISTENT VIDEO\nTwo people, each with a face and an attribute picture, "
        "plus a background and an object. LumosX binds each picture to the words that name "
        "it: the white jacket goes to the man, the yellow scarf to the woman."))
    model, clip, vae = g.models()
    p2 = subject_cast(g)
    g.finish(model, clip, vae, p2, SUBJECT_PROMPT, "lumosx_subject")
    return g


def three_people() -> Graph:
    g = Graph("three_people", "Three people with attributes",
              "Three people, each with an attribute, in one room.")
    g.add("Note", 0, title="About this workflow", box=(420, 120), text=(
        "THREE PEOPLE\nThree Person nodes chained one after the other, each with its own "
        "attribute, and a background. Person colours follow the chain."))
    model, clip, vae = g.models()
    bg = g.reference("background", "lumosx_room.png", ROOM, None)
    p1 = g.person(1, "lumosx_man.png", "man on the left", bg,
                  [("lumosx_denim_jacket.png", "denim jacket")])
    p2 = g.person(2, "lumosx_woman.png", "woman in the middle", p1,
                  [("lumosx_red_dress.png", "red dress")])
    p3 = g.person(3, "lumosx_man_2.png", "man on the right", p2,
                  [("lumosx_glasses.png", "glasses")])
    g.finish(model, clip, vae, p3, THREE_PROMPT, "lumosx_three")
    return g


def ab_relational() -> Graph:
    g = Graph("ab_relational", "A/B: relational attention on and off, same seed",
              "The same references, prompt and seed rendered twice, side by side.")
    g.add("Note", 0, title="About this workflow", box=(420, 200), text=(
        "A/B: RELATIONAL ATTENTION ON vs OFF\nThe same model, references, prompt and seed "
        "rendered twice and stitched side by side.\nLeft: LumosX (relational RoPE, relational "
        "self-attention, relational text bias).\nRight: all three off: the references are "
        "only appended as extra frames (like Phantom), so attributes may land on the wrong "
        "person.\nBoth samplers use seed 42 (fixed)."))
    model, clip, vae = g.models()
    bg = g.reference("background", "lumosx_room.png", ROOM, None)
    p1 = g.person(1, "lumosx_man.png", "man", bg, [("lumosx_white_jacket.png", "white jacket")])
    p2 = g.person(2, "lumosx_woman.png", "woman", p1,
                  [("lumosx_yellow_scarf.png", "yellow scarf")])
    on = g.bind(clip, vae, p2, AB_PROMPT, title="Bind: relational ON")
    off = g.bind(clip, vae, p2, AB_PROMPT, title="Bind: relational OFF", relational=RELATIONAL_OFF)
    s_on = g.sample(model, on, title="Sampler: relational ON")
    s_off = g.sample(model, off, title="Sampler: relational OFF")
    d_on = g.decode(s_on, vae)
    d_off = g.decode(s_off, vae)
    stitch = g.add("ImageStitch", 6, title="Side by side (left ON, right OFF)",
                   direction="right", match_image_size=True, spacing_width=16,
                   spacing_color="white")
    g.link(d_on, 0, stitch, "image1")
    g.link(d_off, 0, stitch, "image2")
    g.save(stitch, "lumosx_ab", on)
    return g


#: Dual CFG: cfg_conds on the text (with the references on both sides), cfg_cond2_negative on
#: the references (negative text with them vs without). cfg_cond2_negative = 1 is exactly the
#: released sampling (plain CFG 6 with the references in the uncond pass).
DUAL_CFG = {"cfg_conds": 6.0, "cfg_cond2_negative": 2.0, "style": "regular"}


def dual_cfg() -> Graph:
    g = Graph("dual_cfg", "Dual CFG: guide towards the references and the text separately",
              "Reference-dropped dual CFG with core's DualCFGGuider and SamplerCustomAdvanced.")
    g.add("Note", 0, title="About this workflow", box=(420, 260), text=(
        "DUAL CFG: REFERENCES AND TEXT GUIDED SEPARATELY\nBind's last output, negative_no_refs, "
        "is the negative prompt without any reference. DualCFGGuider gets three "
        "conditionings:\n  cond1 = positive (prompt + references)\n  cond2 = negative "
        "(negative prompt + references)\n  negative = negative_no_refs (negative prompt "
        "only)\ncfg_conds scales the text (cond1 vs cond2), cfg_cond2_negative the references "
        "(cond2 vs negative_no_refs). cfg_cond2_negative = 1 gives plain CFG 6; raise it to "
        "hold identities and attributes harder.\nSampling is core's SamplerCustomAdvanced: "
        "shift 8, 50 steps, seed 42 (fixed), with ComfyUI's simple schedule and DPM++ 2M (close "
        "to, not equal to, the released solver: swap in LumosX Released Sampler and LumosX "
        "Released Schedule for that)."))
    model, clip, vae = g.models()
    p2 = subject_cast(g)
    g.add("Note", 0, title="How to use", box=(420, 380), text=USAGE_NOTE)
    b = g.bind(clip, vae, p2, SUBJECT_PROMPT)
    shifted = g.add("ModelSamplingSD3", 4, title="Flow shift (released: 8)",
                    shift=SAMPLER["shift"])
    g.link(model, 0, shifted, "model")
    guider = g.add("DualCFGGuider", 5, box=(320, None), **DUAL_CFG)
    g.link(shifted, 0, guider, "model")
    g.link(b, 0, guider, "cond1")
    g.link(b, 1, guider, "cond2")
    g.link(b, 5, guider, "negative")
    # core's scheduler/sampler nodes list only ComfyUI's own: simple + DPM++ 2M (the released
    # solver as SAMPLER / SIGMAS: LumosX Released Sampler / LumosX Released Schedule)
    sched = g.add("BasicScheduler", 5, scheduler="simple", steps=SAMPLER["steps"],
                  denoise=SAMPLER["denoise"])
    g.link(shifted, 0, sched, "model")
    sampler = g.add("KSamplerSelect", 5, sampler_name="dpmpp_2m")
    noise = g.add("RandomNoise", 5, control="fixed", noise_seed=SAMPLER["seed"])
    s = g.add("SamplerCustomAdvanced", 5, box=(320, None))
    g.link(noise, 0, s, "noise")
    g.link(guider, 0, s, "guider")
    g.link(sampler, 0, s, "sampler")
    g.link(sched, 0, s, "sigmas")
    g.link(b, 2, s, "latent_image")
    g.save(g.decode(s, vae), "lumosx_dual_cfg", b)
    return g


FROM_PHOTOS_PROMPT = ("A man in a red shirt and a woman in a yellow raincoat laugh together at "
                      "a wooden table, playing cards, warm evening light.")
#: People From Photo's settings: the Face Encoder's (released face box crops) plus the body
#: regions and the garment assignment
PEOPLE = {"pack": FACE_PACK, "order": "left to right", "max_people": 0,
          "crop": "face box (released)", "margin": 0.3, "size": 512, "det_size": 640,
          "provider": "auto", "body_width": 2.8, "body_height": 3.5,
          "assign": "each part to its main wearer", "min_overlap": 0.2}
GROUP_PHOTO = "lumosx_group_photo.png"
PRODUCT_PHOTO = "lumosx_product_photo.png"
FROM_PHOTOS_NOTE = (
    "FROM ORDINARY PHOTOS\nNo clean references needed: People From Photo finds everyone in "
    "one group photo (the same face crops as the Face Encoder, counted left to right from 0) "
    "and gives each garment painted on that photo to the person it overlaps most; its report "
    "and preview show who is who and who wears what. Pick Person takes person k (face + "
    "garment) for a Person node. Cut Out turns a product photo with a painted mask into an "
    "attribute on white, cropped tight like the released references.\nPaint a mask: "
    "right-click a Load Image node > Open in MaskEditor, paint the garment / product, save "
    "(the painted area is the mask, value 1 = keep).")


def from_photos() -> Graph:
    g = Graph("from_photos", "From ordinary photos: people from a group photo, a product "
              "cut out", "A group photo and a product photo with painted masks become the "
              "references.")
    g.add("Note", 0, title="About this workflow", box=(420, 300), text=FROM_PHOTOS_NOTE)
    model, clip, vae = g.models()
    g.band = 1
    group = g.add("LoadImage", 1, title="Load group photo (garments painted)",
                  image=GROUP_PHOTO)
    people = g.add("LumosXPeopleFromPhoto", 2, title="People from the group photo",
                   box=(380, None), **PEOPLE)
    g.link(group, 0, people, "image")
    g.link(group, 1, people, "garments")
    shown = g.add("PreviewImage", 3, title="Who is who, who wears what")
    g.link(people, 3, shown, "images")
    g.band = 2
    man = g.add("LumosXPickPerson", 2, title="Pick person 3: the man in the red shirt", index=3)
    g.link(people, 2, man, "people")
    p1 = g.add("LumosXPerson", 3, title="Person 1: man", box=(300, None), face_phrase="man",
               phrase_1="red shirt")
    g.link(man, 0, p1, "face")
    g.link(man, 1, p1, "attribute_1")
    g.band = 3
    woman = g.add("LumosXPickPerson", 2, title="Pick person 5: the woman on the right",
                  index=5)
    g.link(people, 2, woman, "people")
    product = g.add("LoadImage", 1, title="Load product photo (product painted)",
                    image=PRODUCT_PHOTO)
    cut = g.add("LumosXCutOut", 2, title="Cut out: yellow raincoat", parts="all parts")
    g.link(product, 0, cut, "image")
    g.link(product, 1, cut, "mask")
    p2 = g.add("LumosXPerson", 3, title="Person 2: woman", box=(300, None), face_phrase="woman",
               phrase_1="yellow raincoat")
    g.link(p1, 0, p2, "references")
    g.link(woman, 0, p2, "face")
    g.link(cut, 0, p2, "attribute_1")
    g.finish(model, clip, vae, p2, FROM_PHOTOS_PROMPT, "lumosx_from_photos")
    return g


WORKFLOWS = [identity_consistent, subject_consistent, three_people, ab_relational, dual_cfg,
             from_photos]


def all_prompts():
    return [IDENTITY_PROMPT, SUBJECT_PROMPT, THREE_PROMPT, AB_PROMPT, FROM_PHOTOS_PROMPT]
