"""Small, real test assets made at test time: a tiny Wan DiT and Wan 2.1 VAE that ComfyUI's
stock loaders detect, a sentencepiece model for ComfyUI's umT5 tokenizer, and reference images.
Everything is written under the directory the caller gives (pytest tmp dirs)."""
from __future__ import annotations

import numpy as np
import standin  # scripts/standin.py: the generators the demo shares with the tests
import torch

CORPUS = standin.CORPUS
write_safetensors = standin.write_safetensors
tiny_wan_vae_state_dict = standin.tiny_wan_vae_state_dict
tiny_vae = standin.tiny_vae
spiece_model = standin.spiece_model
garment = standin.garment
scene = standin.scene
tiny_dit = standin.tiny_dit
save_png = standin.save_png


def to_image_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, C] -> ComfyUI IMAGE [1, H, W, C] in [0, 1]."""
    return torch.from_numpy(arr.astype(np.float32) / 255.0).unsqueeze(0)
