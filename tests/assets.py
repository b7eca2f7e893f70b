"""Small, real test assets made at test time: a tiny Wan DiT and Wan 2.1 VAE that ComfyUI's
stock loaders detect, a sentencepiece model for ComfyUI's umT5 tokenizer, and reference images.
Everything is written under the directory the caller gives (pytest tmp dirs)."""
from __future__ import annotations

import io
import os

import numpy as np
import torch
from PIL import Image

from wan_factory import wan_state_dict_for_loader

CORPUS = [
    "an astronaut in a red jacket talks to a woman in a blue hat in a sunny garden",
    "a man in a white jacket walks beside a man in a black jacket along the street",
    "the man on the left and the man on the right shake hands in a cozy, warmly lit room",
    "a woman in a light brown sweater and a man in a denim jacket with a white shirt",
    "a white lamp stands on a wooden bedside table next to a green plant",
    "two friends laugh together, one wears glasses and the other a yellow scarf",
]


def write_safetensors(sd, path):
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    return path


def tiny_dit(path, seed=0):
    """A Wan 2.1 T2V DiT (dim 256, 2 blocks) the stock detector accepts."""
    return write_safetensors(wan_state_dict_for_loader(seed=seed), path)


def tiny_wan_vae_state_dict(seed=0, dim=16):
    """State dict of a small Wan 2.1 VAE (ComfyUI reads ``dim`` from the decoder head)."""
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


def save_png(arr: np.ndarray, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def to_image_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, C] -> ComfyUI IMAGE [1, H, W, C] in [0, 1]."""
    return torch.from_numpy(arr.astype(np.float32) / 255.0).unsqueeze(0)
