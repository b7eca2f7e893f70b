"""Inputs the in-process node and sampling tests share (one copy): the Bind tests' pictures,
people and Bind call, and the sampling tests' tiny relational conditioning."""
import torch

import assets

#: The Bind tests' video size and prompt.
W, H, LENGTH = 64, 48, 5
PROMPT = "an astronaut in a red jacket talks to a woman in a blue hat in a sunny garden"
#: The sampling tests' latent (frames, height, width) and text length.
SAMPLE_T, SAMPLE_H, SAMPLE_W, LT = 2, 8, 10, 16


def img(color=(200, 30, 30), seed=0):
    return assets.to_image_tensor(assets.garment(color, seed=seed))


def people(N):
    person = N["LumosXPerson"]
    ref = N["LumosXReference"]
    r = ref.execute(assets.to_image_tensor(assets.scene()), "sunny garden", "background").result[0]
    r = person.execute(img((230, 220, 200)), "astronaut", r, attribute_1=img((200, 30, 30)),
                       phrase_1="red jacket").result[0]
    r = person.execute(img((240, 200, 180)), "woman", r, attribute_1=img((30, 30, 200)),
                       phrase_1="blue hat").result[0]
    return r


def bind(N, clip, vae, refs, prompt=PROMPT, **kw):
    args = dict(clip=clip, vae=vae, prompt=prompt, negative_prompt="blurry, static",
                references=refs, width=W, height=H, length=LENGTH, batch_size=1, ratio=0.5,
                r2pe=True, self_mask=True, cross_mask=True, mode="parity",
                uncond_bias="positive phrase masks (released)", strict=False)
    args.update(kw)
    return N["LumosXBind"].execute(**args)


def relational_cond(pack, seed=0, refs=True, neg_masks_zero=False):
    core = pack.lumosx_core
    patch = pack.nodes.patch
    g = torch.Generator().manual_seed(seed)
    pos_ctx = torch.randn(1, LT, 4096, generator=g)
    neg_ctx = torch.randn(1, LT, 4096, generator=g)
    pos = [[pos_ctx, {}]]
    neg = [[neg_ctx, {}]]
    if refs:
        layout = core.ConditionLayout(1, [2, 1])
        latents = torch.randn(1, 16, layout.num_images, SAMPLE_H, SAMPLE_W, generator=g)
        masks = torch.zeros(1, layout.num_images, LT, dtype=torch.bool)
        masks[0, 0, 1:3] = True
        masks[0, 1, 4] = True
        masks[0, 2, 5:7] = True
        masks[0, 3, 9] = True
        cfg = core.RelationalConfig(layout)
        pos = patch.attach(pos, latents, masks, cfg)
        neg = patch.attach(neg, latents, torch.zeros_like(masks) if neg_masks_zero else masks, cfg)
    return pos, neg
