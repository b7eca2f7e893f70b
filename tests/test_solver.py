"""The released sampler (lumosx_core.solver) against an independent float64 derivation written
here from the equations of the method spec (section 8), on step counts and shifts of all sizes."""
import math

import numpy as np
import pytest
import torch

from lumosx_core.solver import (flow_timestep_error, match_released_schedule, released_schedule,
                                released_timesteps, sample_released, timestep_table)

STEPS = [1, 2, 3, 4, 7, 13, 50]
SHIFTS = [1.0, 3.0, 5.0, 8.0, 12.5]


def numpy_schedule(steps, shift):
    """The schedule as the equations state it, in numpy float64."""
    s = np.linspace(1, 0, steps + 1)[:steps]
    sig = shift * s / (1 + (shift - 1) * s)
    t = (sig * 1000).astype(np.int64)
    return np.concatenate([sig, [0.0]]).astype(np.float32), t


@pytest.mark.parametrize("steps", STEPS + [100, 1000])
@pytest.mark.parametrize("shift", SHIFTS + [3, 6.0, 0.5])
def test_schedule_equals_the_equations(steps, shift):
    sigmas, t = released_schedule(steps, shift)
    ref_s, ref_t = numpy_schedule(steps, shift)
    assert sigmas.dtype == torch.float32 and t.dtype == torch.int64
    assert sigmas.shape == (steps + 1,) and t.shape == (steps,)
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0
    assert np.array_equal(sigmas.numpy(), ref_s)
    assert np.array_equal(t.numpy(), ref_t)
    assert int(t[0]) == 1000


@pytest.mark.parametrize("steps,shift,where", [(20, 3.0, [6, 18]), (50, 3.0, [15, 45]),
                                               (40, 6.0, [16, 24, 33, 36, 38])])
def test_integer_timesteps_come_from_the_float64_schedule(steps, shift, where):
    """From the float32 sigmas the truncation lands one higher on some steps (σ·1000 is an
    integer mathematically, just below it in float64): 874 released, 875 from float32."""
    sigmas, t = released_schedule(steps, shift)
    from32 = (sigmas[:-1] * 1000).to(torch.int64)           # float32 product
    diff = torch.nonzero(from32 != t).flatten().tolist()
    assert diff == where
    assert torch.all(from32[diff] - t[diff] == 1)
    if shift == 3.0:
        assert 874 in t.tolist() and 875 in from32.tolist()


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 20, 50])
@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 8.0, 7.3, 2.718281828])
def test_timesteps_are_recovered_from_the_sigmas(steps, shift):
    sigmas, t = released_schedule(steps, shift)
    got, exact = released_timesteps(sigmas)
    assert exact and torch.equal(got, t)
    found = match_released_schedule(sigmas)
    assert found is not None and found[0] == steps
    assert torch.equal(released_schedule(*found)[0], sigmas)


def test_other_sigmas_fall_back_to_the_rule_on_float32():
    sigmas = torch.tensor([1.0, 0.9, 0.5, 0.2, 0.0])              # not a released schedule
    t, exact = released_timesteps(sigmas)
    assert not exact and t.tolist() == [1000, 899, 500, 200]      # float32(0.9)*1000 = 899.99
    sliced = released_schedule(10, 8.0)[0][3:]                    # denoise < 1
    t2, exact2 = released_timesteps(sliced)
    assert not exact2 and t2.tolist() == (sliced[:-1].double() * 1000).long().tolist()


def test_denoise_keeps_the_last_steps_of_a_longer_schedule():
    full_s, full_t = released_schedule(20, 8.0)
    s, t = released_schedule(10, 8.0, denoise=0.5)
    assert torch.equal(s, full_s[-11:]) and torch.equal(t, full_t[-10:])
    assert released_schedule(10, 8.0, denoise=0.0)[0].numel() == 0
    assert all(torch.equal(a, b) for a, b in zip(released_schedule(7, 3.0, 1.0),
                                                  released_schedule(7, 3.0)))


def test_timestep_table_maps_each_step_to_its_integer():
    sigmas, t = released_schedule(6, 3.0)
    table, exact = timestep_table(sigmas, t)
    assert exact and list(table.values()) == t.tolist()
    assert list(table) == sigmas[:-1].tolist()                   # keyed by the float32 σ
    assert timestep_table(sigmas) == (table, True)                # recovered: the same
    _, exact = timestep_table(torch.tensor([1.0, 0.9, 0.5, 0.0]))
    assert not exact
    assert flow_timestep_error(0.5, 500.2) is None
    assert "flow-matching" in flow_timestep_error(torch.tensor(0.5), torch.tensor(7.0))


# ------------------------------------------------------------------ the solver, in float64

def reference_sample(model64, x, sigmas):
    """Flow DPM-Solver++(2M) midpoint in λ = log((1 − σ)/σ), written out in float64 from the
    equations: first order on the first and last step, second order otherwise."""
    sig = sigmas.astype(np.float64)
    n = len(sig) - 1
    x = x.astype(np.float64)

    def lam(s):
        with np.errstate(divide="ignore"):
            return np.log(1.0 - s) - np.log(s)

    prev = None
    for i in range(n):
        s, t = sig[i], sig[i + 1]
        x0 = model64(x, s)
        h = lam(t) - lam(s)
        a_t = 1.0 - t
        phi = a_t * (np.exp(-h) - 1.0)
        new = (t / s) * x - phi * x0
        if 0 < i < n - 1:
            r = (lam(s) - lam(sig[i - 1])) / h
            d1 = (x0 - prev) / r
            new = new - 0.5 * phi * d1
        x, prev = new, x0
    return x


def toy_model(dtype):
    """A smooth, nonlinear denoiser x0(x, σ) (numpy float64 and torch versions)."""
    g = np.random.default_rng(5)
    w = g.standard_normal((4, 4)) / 2.0
    c = g.standard_normal((1, 4, 6))

    def np_model(x, s):
        return np.tanh(np.einsum("ij,bjk->bik", w, x)) * (1.0 - 0.5 * s) + s * c

    tw, tc = torch.tensor(w, dtype=dtype), torch.tensor(c, dtype=dtype)

    def torch_model(x, sigma, **kw):
        s = sigma.to(dtype).view(-1, 1, 1)
        return torch.tanh(torch.einsum("ij,bjk->bik", tw, x.to(dtype))) * (1.0 - 0.5 * s) + s * tc
    return np_model, torch_model


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("shift", SHIFTS)
def test_solver_matches_float64_derivation(steps, shift):
    np_model, torch_model = toy_model(torch.float32)
    sigmas, _ = released_schedule(steps, shift)
    x = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(steps))
    calls = []

    def model(xx, sigma, **kw):
        calls.append((xx.clone(), sigma.clone(), kw))
        return torch_model(xx, sigma)

    out = sample_released(model, x.clone(), sigmas, extra_args={"k": 1}, disable=True)
    ref = reference_sample(np_model, x.numpy(), sigmas.numpy())
    err = np.abs(out.double().numpy() - ref).max() / np.abs(ref).max()
    assert err < 2e-6, err
    assert len(calls) == steps
    assert all(kw == {"k": 1} for _, _, kw in calls)
    assert [float(c[1][0]) for c in calls] == sigmas[:-1].tolist()
    assert all(c[1].shape == (2,) for c in calls)


def test_first_and_last_steps_are_first_order_and_step_one_has_no_correction():
    """σ0 = 1: step 0 gives σ1·x + (1 − σ1)·x0; step 1's correction vanishes (r = ∞);
    the last step (σ → 0) returns the denoised latent itself."""
    sigmas, _ = released_schedule(3, 8.0)
    x = torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(0))
    outs = [torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(k)) for k in (1, 2, 3)]
    seen = []

    def model(xx, sigma, **kw):
        seen.append(xx.clone())
        return outs[len(seen) - 1]

    final = sample_released(model, x.clone(), sigmas, disable=True)
    s1, s2 = float(sigmas[1]), float(sigmas[2])
    assert torch.allclose(seen[1], s1 * x + (1 - s1) * outs[0], atol=1e-6)
    a1, a2 = 1 - s1, 1 - s2
    first_order_1 = (s2 / s1) * seen[1] - a2 * ((s2 * a1) / (a2 * s1) - 1.0) * outs[1]
    assert torch.allclose(seen[2], first_order_1, atol=1e-5)
    assert torch.equal(final, outs[2])


def test_callback_contract_and_dtype():
    sigmas, _ = released_schedule(4, 5.0)
    x = torch.randn(1, 4, 6, dtype=torch.float16)
    got = []
    out = sample_released(lambda xx, s, **k: xx * 0.5, x, sigmas, callback=got.append,
                          disable=True)
    assert out.dtype == torch.float16
    assert [d["i"] for d in got] == [0, 1, 2, 3]
    assert set(got[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    assert float(got[2]["sigma"]) == float(sigmas[2])


def test_second_order_weights_differ_from_comfyui_dpmpp_2m():
    """Where the two solvers differ: the weight of the correction term. Released (λ = log
    α/σ): ½·φ/r; ComfyUI's dpmpp_2m (λ = −log σ): its own. At step 2 of 50 at shift 8 the
    released correction is 0 (previous σ = 1), ComfyUI's is not."""
    sigmas, _ = released_schedule(50, 8.0)
    s = sigmas.double().numpy()

    def released_r(i):
        lam = lambda v: math.log(1 - v) - math.log(v) if v < 1 else -math.inf  # noqa: E731
        return (lam(s[i]) - lam(s[i - 1])) / (lam(s[i + 1]) - lam(s[i]))

    def comfy_r(i):
        t = lambda v: -math.log(v)  # noqa: E731
        return (t(s[i]) - t(s[i - 1])) / (t(s[i + 1]) - t(s[i]))
    assert released_r(1) == math.inf and math.isfinite(comfy_r(1))
    assert abs(1 / (2 * released_r(47)) - 1 / (2 * comfy_r(47))) > 0.01


def test_wrapper_refuses_a_model_whose_timestep_is_not_flow():
    from lumosx_core.released_timesteps import TIMESTEP_KEY, released_timestep_wrapper
    topts = {TIMESTEP_KEY: 500, "sigmas": torch.tensor([0.5])}
    called = []

    def executor(x, t, *a, **k):
        called.append(t)
        return x

    released_timestep_wrapper(executor, torch.zeros(1), torch.tensor([500.2]), None,
                              transformer_options=topts)
    assert called[-1].tolist() == [500.0]
    released_timestep_wrapper(executor, torch.zeros(1), torch.tensor([500.2]), None,
                              transformer_options={"sigmas": torch.tensor([0.5])})
    assert called[-1].item() == pytest.approx(500.2)       # no released integer: unchanged
    with pytest.raises(ValueError, match="flow-matching"):
        released_timestep_wrapper(executor, torch.zeros(1), torch.tensor([7.0]), None,
                                  transformer_options=topts)


def test_with_timestep_puts_the_wrapper_outermost_without_touching_the_input():
    from lumosx_core.released_timesteps import (TIMESTEP_KEY, TIMESTEP_WRAPPER_KEY,
                                                released_timestep_wrapper, with_timestep)
    other = object()
    args = {"seed": 1, "model_options": {"transformer_options": {
        "wrappers": {"dm": {"other": [other], TIMESTEP_WRAPPER_KEY: ["stale"]}}}}}
    out = with_timestep(args, "dm", 874)
    to = out["model_options"]["transformer_options"]
    assert list(to["wrappers"]["dm"]) == [TIMESTEP_WRAPPER_KEY, "other"]
    assert to["wrappers"]["dm"][TIMESTEP_WRAPPER_KEY] == [released_timestep_wrapper]
    assert to[TIMESTEP_KEY] == 874 and out["seed"] == 1
    assert TIMESTEP_KEY not in args["model_options"]["transformer_options"]   # a copy
    assert args["model_options"]["transformer_options"]["wrappers"]["dm"][TIMESTEP_WRAPPER_KEY] \
        == ["stale"]
    assert TIMESTEP_KEY not in with_timestep({}, "dm")["model_options"]["transformer_options"]


def test_sample_with_timesteps_feeds_each_step_its_released_integer():
    from lumosx_core.released_timesteps import TIMESTEP_KEY, sample_with_timesteps
    sigmas, timesteps = released_schedule(4, 3.0)
    seen = []

    def model(x, sigma, model_options=None, **kw):
        seen.append(model_options["transformer_options"][TIMESTEP_KEY])
        return torch.zeros_like(x)

    sample_with_timesteps(model, torch.randn(1, 2, 3), sigmas, {}, disable=True,
                          timesteps=timesteps, wrapper_kind="dm")
    assert seen == [int(t) for t in timesteps]
