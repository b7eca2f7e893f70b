"""Synthetic but real-looking video frames for the evaluation tests: real face photos that
ship in installed wheels (scikit-image's astronaut, insightface's t1.jpg, vectron's
yaoming.jpg / players.jpg), cut out with a soft oval and pasted over differently coloured
garments on a room-like background. Nothing is copied into the repository."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

import assets
from face_fixtures import astronaut, insightface_image, vectron_image
from lumosx_core.faces.crop import pixel_box, square_box
from lumosx_core.image_prep import box_intersection, to_rgb

FRAME_W, FRAME_H = 480, 360
# faces located once with the vectron SCRFD detector (x1, y1, x2, y2) in their photos
ASTRONAUT_FACE = (180, 60, 271, 179)
YAO_FACE = (71, 73, 176, 212)                  # yaoming.jpg
YAO_IN_PLAYERS = (720, 142, 764, 192)          # the same man among the players
T1_FACES = {"left": (55, 260, 168, 397), "centre": (463, 266, 572, 415)}

RED, BLUE, GREEN, YELLOW = (200, 30, 30), (30, 50, 200), (40, 150, 60), (230, 200, 40)


def crop_with_white(image: torch.Tensor, box) -> torch.Tensor:
    """Cut ``box`` (rounded with ``pixel_box``) out of ``image`` ``[H, W, C]``: ``[y2 - y1,
    x2 - x1, 3]`` in [0, 1], pixels outside the photo white, an exact copy (no resampling)."""
    img = to_rgb(image, drop_alpha=True)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = pb = pixel_box(box)
    out = torch.ones(y1 - y0, x1 - x0, 3, dtype=img.dtype, device=img.device)
    inter = box_intersection(pb, w, h)
    if inter is not None:
        ix0, iy0, ix1, iy1 = inter
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = img[iy0:iy1, ix0:ix1]
    return out


def face_patch(photo: torch.Tensor, bbox, margin: float = 0.3, flip: bool = False) -> np.ndarray:
    """Square crop around ``bbox`` of ``photo`` ([H, W, 3] float) as uint8."""
    crop = crop_with_white(photo, square_box(bbox, margin))
    arr = (crop.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return arr[:, ::-1].copy() if flip else arr


def reference_face(photo: torch.Tensor, bbox, margin: float = 0.3) -> torch.Tensor:
    """A face reference image ([H, W, 3] float), like the Face Encoder's crops."""
    return torch.from_numpy(face_patch(photo, bbox, margin).astype(np.float32) / 255.0)


def garment_image(color, seed=0) -> torch.Tensor:
    """An attribute reference: a garment on white, [H, W, 3] float."""
    return torch.from_numpy(assets.garment(color, size=(128, 112), seed=seed)
                            .astype(np.float32) / 255.0)


class Sources:
    """The face patches used in frames and the reference faces, loaded once."""

    def __init__(self):
        astro = astronaut()
        yao = vectron_image("yaoming.jpg")
        players = vectron_image("players.jpg")
        t1 = insightface_image("t1.jpg")
        # what the frames show (another photo of the same person where there is one)
        self.frame_faces = {
            "yao": face_patch(players, YAO_IN_PLAYERS, 0.45),
            "astronaut": face_patch(astro, ASTRONAUT_FACE, 0.3, flip=True),
            "t1": face_patch(t1, T1_FACES["left"], 0.3),
        }
        # what the references show
        self.references = {
            "yao": reference_face(yao, YAO_FACE),
            "astronaut": reference_face(astro, ASTRONAUT_FACE),
            "t1": reference_face(t1, T1_FACES["left"]),
        }


def background(seed: int = 0) -> Image.Image:
    bg = Image.fromarray(assets.scene(size=(96, 160), seed=seed)).resize(
        (FRAME_W, FRAME_H), Image.BICUBIC)
    return bg


def _oval_mask(size: int) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    d.ellipse([size * 0.1, size * 0.02, size * 0.9, size * 0.98], fill=255)
    return m.filter(ImageFilter.GaussianBlur(size * 0.04))


def _garment_layer(garment, width: int, height: int, seed: int):
    """(picture, alpha) of a garment: a colour (drawn with ``assets.garment``) or an
    attribute image on white ([H, W, 3] float tensor; its non-white part is pasted)."""
    if torch.is_tensor(garment):
        from lumosx_core.evaluation.appearance import attribute_mask
        img = (garment[..., :3].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        alpha = attribute_mask(garment).astype(np.uint8) * 255
        g = Image.fromarray(img).resize((width, height), Image.BICUBIC)
        return g, Image.fromarray(alpha).resize((width, height), Image.BILINEAR)
    g = assets.garment(garment, size=(height, width), seed=seed)
    alpha = (g.min(axis=-1) < 250).astype(np.uint8) * 255
    return Image.fromarray(g), Image.fromarray(alpha)


def _face_image(face, sources) -> Image.Image:
    if isinstance(face, str):
        return Image.fromarray(sources.frame_faces[face])
    arr = face.numpy() if torch.is_tensor(face) else np.asarray(face, dtype=np.float32)
    return Image.fromarray((np.clip(arr[..., :3], 0, 1) * 255).round().astype(np.uint8))


def compose(people, sources: Sources = None, face_side: int = 96, seed: int = 0) -> torch.Tensor:
    """One frame [H, W, 3] float. ``people``: list of ``(face, centre x, garment)``: a face
    (a key of ``sources.frame_faces`` or an image) pasted with a soft oval over a garment (a
    colour or an attribute image on white); ``None`` leaves either out (a missing face
    leaves the garment with nothing above it)."""
    frame = background(seed)
    top = 40
    for k, (face, cx, garment) in enumerate(people):
        if garment is not None:
            gw, gh = int(face_side * 2.0), int(face_side * 2.4)
            g, a = _garment_layer(garment, gw, gh, seed=seed + k)
            frame.paste(g, (int(cx - gw / 2), top + int(face_side * 0.85) - int(gh * 0.15)), a)
        if face is not None:
            img = _face_image(face, sources)
            fh = int(round(face_side * img.height / img.width))
            patch = img.resize((face_side, fh), Image.BICUBIC)
            frame.paste(patch, (int(cx - face_side / 2), top + face_side - fh),
                        _oval_mask(face_side).resize((face_side, fh)))
    return torch.from_numpy(np.asarray(frame, dtype=np.float32) / 255.0)


def video(frames_people, sources: Sources, **kw) -> torch.Tensor:
    """[F, H, W, 3] from one ``people`` list per frame."""
    return torch.stack([compose(p, sources, seed=i % 3, **kw)
                        for i, p in enumerate(frames_people)])


# -- a small generated set in the reference-case layout ---------------------------------------

def to_uint8(frame: torch.Tensor) -> np.ndarray:
    return (frame.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def write_case(root, folder: str, case_id: str, caption: str, people) -> str:
    """``<root>/<folder>/`` in the authors' layout: caption.txt and
    ``subjects/<n>/face_<phrase>.png`` + ``subjects/<n>/<attribute phrase>.png``.
    ``people``: list of ``(face phrase, face image, [(attribute phrase, image), ...])``."""
    import os
    path = os.path.join(str(root), folder)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "caption.txt"), "w", encoding="utf-8") as f:
        f.write(f"{case_id};{caption}")
    for n, (phrase, face, attrs) in enumerate(people, start=1):
        sub = os.path.join(path, "subjects", str(n))
        assets.save_png(to_uint8(face), os.path.join(sub, f"face_{phrase}.png"))
        for ap, img in attrs:
            assets.save_png(to_uint8(img), os.path.join(sub, f"{ap}.png"))
    return path


def write_mp4(path: str, frames: torch.Tensor, fps: int = 8) -> str:
    import av
    arr = [to_uint8(f) for f in frames]
    h, w = arr[0].shape[:2]
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for a in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_animated(path: str, frames: torch.Tensor) -> str:
    """Animated WEBP or GIF (by extension), as ComfyUI's SaveAnimatedWEBP writes them."""
    ims = [Image.fromarray(to_uint8(f)) for f in frames]
    kw = {"lossless": False, "quality": 90} if path.endswith(".webp") else {}
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=125, loop=0, **kw)
    return path


def write_frames_dir(path: str, frames: torch.Tensor) -> str:
    import os
    os.makedirs(path, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(to_uint8(f)).save(os.path.join(path, f"frame_{i}.png"))
    return path
