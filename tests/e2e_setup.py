"""Everything an end-to-end server needs, made under its own base directory: tiny models the
stock loaders detect, the test-only text-encoder pack, a face-model pack, input photos."""
import os
import shutil

import assets
import face_fixtures

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_PACK = os.path.join(HERE, "fixtures", "lumosx_test_pack")
DIT = "tiny_lumosx.safetensors"
VAE = "tiny_wan_vae.safetensors"
SPIECE = "tiny_umt5_spiece.model"
FACE_PACK = face_fixtures.VECTRON_PACK

PROMPT = "an astronaut in a red jacket talks to a woman in a blue hat in a sunny garden"


def prepare_base(base: str) -> dict:
    models = os.path.join(base, "models")
    assets.tiny_dit(os.path.join(models, "diffusion_models", DIT))
    assets.tiny_vae(os.path.join(models, "vae", VAE))
    os.makedirs(os.path.join(models, "text_encoders"), exist_ok=True)
    spiece = os.path.join(models, "text_encoders", SPIECE)
    with open(spiece, "wb") as f:
        f.write(assets.spiece_model())
    face_fixtures.make_vectron_pack(os.path.join(models, "insightface"))
    inp = os.path.join(base, "input")
    os.makedirs(inp, exist_ok=True)
    # real photos that ship in installed wheels, copied into the server's (temporary) input
    import skimage.data
    from PIL import Image
    Image.fromarray(skimage.data.astronaut()).save(os.path.join(inp, "astronaut.png"))
    shutil.copy(os.path.join(face_fixtures._package_dir("insightface"), "data", "images", "t1.jpg"),
                os.path.join(inp, "t1.jpg"))
    assets.save_png(assets.garment((200, 30, 30)), os.path.join(inp, "red_jacket.png"))
    assets.save_png(assets.garment((30, 30, 200), seed=1), os.path.join(inp, "blue_hat.png"))
    assets.save_png(assets.scene(), os.path.join(inp, "garden.png"))
    info = {"spiece": spiece}
    info.update(prepare_shipped(base))
    return info


def prepare_shipped(base: str) -> dict:
    """What the shipped workflows (workflows/api/*.api.json) need to run on this server in
    stand-in mode, as `make demo` does: the tiny DiT and VAE under the real file names, the
    pictures they load, a tokenizer model that knows their prompts. Returns
    ``{"standin_spiece": path}``; ``demo.standin_overrides(path)`` gives the CLI options."""
    import demo
    import workflow_specs as specs
    models = os.path.join(base, "models")
    for folder, src, dst in (("diffusion_models", DIT, specs.DIT), ("vae", VAE, specs.VAE)):
        target = os.path.join(models, folder, dst)
        if not os.path.exists(target):
            os.link(os.path.join(models, folder, src), target)
    assets.standin.demo_inputs(os.path.join(base, "input"))
    path = os.path.join(models, "text_encoders", demo.STANDIN_SPIECE)
    with open(path, "wb") as f:
        f.write(assets.spiece_model(extra_lines=specs.all_prompts() + demo.STANDIN_PHRASES))
    return {"standin_spiece": path}


def lumosx_graph(spiece: str, width=64, height=48, length=5, steps=2, prefix="lumosx_e2e",
                 seed=0, face_pack=FACE_PACK):
    """API-format graph: our loader, face encoder, two people with attributes, a background,
    Bind, Sampler, VAE decode, an animated WEBP and the binding preview."""
    def load(name):
        return {"class_type": "LoadImage", "inputs": {"image": name}}

    def face(src, select, index):
        return {"class_type": "LumosXFaceEncoder",
                "inputs": {"images": [src, 0], "pack": face_pack, "select": select,
                           "index": index, "margin": 0.3, "size": 256, "det_size": 320,
                           "provider": "CPU"}}

    return {
        "1": {"class_type": "LumosXTestTinyTextEncoder", "inputs": {"spiece_path": spiece, "seed": 0}},
        "2": {"class_type": "LumosXModelLoader", "inputs": {"model_name": DIT, "weight_dtype": "default"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": VAE}},
        "4": load("astronaut.png"),
        "5": load("t1.jpg"),
        "6": face("4", "largest", 0),
        "7": face("5", "index (left to right)", 2),
        "8": load("red_jacket.png"),
        "9": load("blue_hat.png"),
        "10": load("garden.png"),
        "11": {"class_type": "LumosXReference",
               "inputs": {"image": ["10", 0], "phrase": "sunny garden", "kind": "background"}},
        "12": {"class_type": "LumosXPerson",
               "inputs": {"face": ["6", 0], "face_phrase": "astronaut", "references": ["11", 0],
                          "attribute_1": ["8", 0], "phrase_1": "red jacket"}},
        "13": {"class_type": "LumosXPerson",
               "inputs": {"face": ["7", 0], "face_phrase": "woman", "references": ["12", 0],
                          "attribute_1": ["9", 0], "phrase_1": "blue hat"}},
        "14": {"class_type": "LumosXBind",
               "inputs": {"clip": ["1", 0], "vae": ["3", 0], "prompt": PROMPT,
                          "negative_prompt": "blurry", "references": ["13", 0], "width": width,
                          "height": height, "length": length, "batch_size": 1, "ratio": 0.5,
                          "r2pe": True, "self_mask": True, "cross_mask": True, "mode": "parity",
                          "uncond_bias": "positive phrase masks (released)", "strict": True}},
        "15": {"class_type": "LumosXSampler",
               "inputs": {"model": ["2", 0], "positive": ["14", 0], "negative": ["14", 1],
                          "latent": ["14", 2], "seed": seed, "steps": steps, "cfg": 6.0,
                          "sampler_name": "dpmpp_2m", "scheduler": "simple", "shift": 8.0,
                          "denoise": 1.0}},
        "16": {"class_type": "VAEDecode", "inputs": {"samples": ["15", 0], "vae": ["3", 0]}},
        "17": {"class_type": "SaveAnimatedWEBP",
               "inputs": {"images": ["16", 0], "filename_prefix": prefix, "fps": 16.0,
                          "lossless": False, "quality": 80, "method": "fastest"}},
        "18": {"class_type": "SaveImage",
               "inputs": {"images": ["14", 4], "filename_prefix": prefix + "_preview"}},
    }
