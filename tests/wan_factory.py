"""Small random Wan 2.1 T2V models built with ComfyUI's own classes.

ComfyUI allocates parameters with ``torch.empty``: every tensor is initialised here. The scales
follow the method spec (section 10) so that each relational feature moves the output by far
more than fp32 noise: linear weights 0.1*randn, embeddings (and the output head, which keeps
outputs O(1) so absolute tolerances mean something) 0.02*randn, q/k RMS-norm gains
2*(1 + 0.1*noise), other norm gains 1 + 0.1*noise, modulation randn/sqrt(dim).
"""
import math

import torch


def init_features_matter(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)

    def rn(shape):
        return torch.randn(shape, generator=g)

    dim = model.dim
    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = p.shape
            if "modulation" in name:
                val = rn(shape) / math.sqrt(dim)
            elif "norm_q" in name or "norm_k" in name:
                val = 2.0 * (1.0 + 0.1 * rn(shape))
            elif "norm" in name:
                val = (1.0 + 0.1 * rn(shape)) if name.endswith("weight") else 0.02 * rn(shape)
            elif name.startswith(("patch_embedding", "text_embedding", "time_embedding",
                                  "head.head")):
                val = 0.02 * rn(shape)
            elif name.endswith("bias"):
                val = 0.02 * rn(shape)
            else:
                val = 0.1 * rn(shape)
            p.copy_(val.to(p.dtype))
    return model


def make_wan(dim=64, heads=2, layers=2, ffn=128, text_dim=32, freq_dim=32, seed=0,
             dtype=torch.float32):
    """A tiny ``comfy.ldm.wan.model.WanModel`` (T2V) with every tensor initialised."""
    import comfy.ldm.wan.model
    import comfy.ops

    model = comfy.ldm.wan.model.WanModel(
        model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=dim,
        ffn_dim=ffn, freq_dim=freq_dim, text_dim=text_dim, out_dim=16, num_heads=heads,
        num_layers=layers, qk_norm=True, cross_attn_norm=True, eps=1e-6,
        operations=comfy.ops.disable_weight_init, dtype=dtype)
    init_features_matter(model, seed)
    return model.eval()


def wan_state_dict_for_loader(dim=256, layers=2, ffn=256, seed=0):
    """State dict of a Wan 2.1 T2V DiT that ComfyUI's stock detector accepts (dim a multiple
    of 128, text_dim 4096, freq_dim 256)."""
    m = make_wan(dim=dim, heads=dim // 128, layers=layers, ffn=ffn, text_dim=4096,
                 freq_dim=256, seed=seed)
    return {k: v.contiguous() for k, v in m.state_dict().items()}
