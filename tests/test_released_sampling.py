"""The released sampler inside ComfyUI (in process, tiny random Wan from ComfyUI's loader): the
DiT gets the released integer timesteps, SamplerCustomAdvanced with our SAMPLER + SIGMAS equals
the LumosX Sampler, and both equal the plain torch loop of released_loop.py."""
import pytest
import torch

from host_nodes import core_node, run
from released_loop import noise_like, released_loop
from standin import tiny_dit_state_dict
from shared_inputs import SAMPLE_H as H
from shared_inputs import SAMPLE_T as T
from shared_inputs import SAMPLE_W as W
from shared_inputs import relational_cond

STEPS, SHIFT, CFG, SEED = 3, 6.0, 4.0, 7      # timesteps 1000, 923, 749 (750 from float32)


@pytest.fixture(scope="module")
def model(pack):
    import comfy.sd
    m = comfy.sd.load_diffusion_model_state_dict(tiny_dit_state_dict())
    assert m is not None
    return m


def _latent():
    return {"samples": torch.zeros(1, 16, T, H, W)}


def _lumosx_sampler(pack, model, pos, neg, sampler=None, scheduler=None, steps=STEPS):
    S = pack.nodes.sampling
    out = S.LumosXSampler.execute(model, pos, neg, _latent(), SEED, steps, CFG,
                                  sampler or S.RELEASED, scheduler or S.RELEASED, SHIFT, 1.0)
    return out.result[0]["samples"]


@pytest.fixture()
def seen_timesteps(model):
    dm = model.model.diffusion_model
    orig = dm.forward_orig
    seen = []

    def spy(x, t, *a, **k):
        seen.append(sorted(set(t.flatten().tolist())))
        return orig(x, t, *a, **k)

    dm.forward_orig = spy
    yield seen
    del dm.forward_orig


def test_schema_defaults_are_the_released_sampler_and_schedule(pack):
    S = pack.nodes.sampling
    schema = S.LumosXSampler.GET_SCHEMA()
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["sampler_name"].default == S.RELEASED == "lumosx_released"
    assert inputs["scheduler"].default == S.RELEASED
    assert "dpmpp_2m" in inputs["sampler_name"].options      # ComfyUI's stay selectable
    assert (inputs["steps"].default, inputs["cfg"].default, inputs["shift"].default) == \
        (50, 6.0, 8.0)
    assert "released" in inputs["sampler_name"].tooltip
    ids = {n.GET_SCHEMA().node_id for n in S.NODES}
    assert ids == {"LumosXSampler", "LumosXReleasedSampler", "LumosXReleasedSchedule"}


@pytest.mark.parametrize("lumosx", [True, False])
def test_dit_is_fed_the_released_integer_timesteps(pack, model, seen_timesteps, lumosx):
    pos, neg = relational_cond(pack, refs=lumosx)
    out = _lumosx_sampler(pack, model, pos, neg)
    assert torch.isfinite(out).all()
    assert seen_timesteps == [[1000.0], [923.0], [749.0]]   # cond + uncond in one batch


def test_partial_denoise_feeds_the_longer_schedules_integers(pack, model, seen_timesteps):
    """denoise 0.5: the last 3 steps of the released 6-step schedule, with its integers."""
    S = pack.nodes.sampling
    pos, neg = relational_cond(pack)
    S.LumosXSampler.execute(model, pos, neg, _latent(), SEED, STEPS, CFG, S.RELEASED,
                            S.RELEASED, SHIFT, 0.5)
    want = pack.lumosx_core.solver.released_schedule(2 * STEPS, SHIFT)[1][-STEPS:]
    assert seen_timesteps == [[float(t)] for t in want.tolist()]


def test_comfy_sampler_keeps_float_timesteps(pack, model, seen_timesteps):
    pos, neg = relational_cond(pack)
    _lumosx_sampler(pack, model, pos, neg, sampler="euler", scheduler="simple")
    flat = [t for ts in seen_timesteps for t in ts]
    assert len(flat) == STEPS and any(t != int(t) for t in flat)


def test_schedule_node_and_custom_advanced_equal_the_lumosx_sampler(pack, model):
    """The row of docs/works-with.md, node for node: LumosX Apply -> ModelSamplingSD3 (shift)
    -> CFGGuider, LumosX Released Sampler + LumosX Released Schedule into
    SamplerCustomAdvanced."""
    from comfy_extras import nodes_custom_sampler as ncs
    from ComfyUI_LumosX.nodes.model import LumosXApply
    S = pack.nodes.sampling
    pos, neg = relational_cond(pack)
    sigmas = S.LumosXReleasedSchedule.execute(STEPS, SHIFT).result[0]
    assert torch.equal(sigmas, pack.lumosx_core.solver.released_schedule(STEPS, SHIFT)[0])
    sampler = S.LumosXReleasedSampler.execute().result[0]
    (patched,) = run(LumosXApply, model=model)
    (m,) = run(core_node("comfy_extras.nodes_model_advanced", "ModelSamplingSD3"),
               model=patched, shift=SHIFT)
    guider = ncs.CFGGuider.execute(m, pos, neg, CFG).result[0]
    noise = ncs.RandomNoise.execute(SEED).result[0]
    out = ncs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, _latent())
    custom = out.result[0]["samples"]
    ours = _lumosx_sampler(pack, model, pos, neg)
    assert torch.allclose(custom, ours, rtol=0, atol=1e-6)


def test_lumosx_sampler_equals_the_plain_torch_loop(pack, model):
    pos, neg = relational_cond(pack)
    ours = _lumosx_sampler(pack, model, pos, neg)
    fmt = model.model.latent_format
    ref = released_loop(model.model.diffusion_model, fmt.latents_mean, fmt.latents_std, pos,
                        neg, noise_like(_latent()["samples"].shape, SEED), STEPS, SHIFT, CFG)
    rel = ((ours - ref).norm() / ref.norm()).item()
    assert rel <= 1e-4, rel
    # float timesteps (what ComfyUI's samplers feed) would be measurably different
    dpm = _lumosx_sampler(pack, model, pos, neg, sampler="dpmpp_2m")
    assert ((dpm - ref).norm() / ref.norm()).item() > 1e-3


def test_validation_names_the_input(pack):
    S = pack.nodes.sampling
    assert "sampler_name" in S.LumosXSampler.validate_inputs(sampler_name="nope")
    assert "shift" in S.LumosXSampler.validate_inputs(shift=0.0)
    assert S.LumosXSampler.validate_inputs(sampler_name="lumosx_released",
                                           scheduler="simple") is True
