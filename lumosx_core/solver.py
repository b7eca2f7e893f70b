"""The released LumosX sampling loop: its schedule, its integer DiT timesteps and its solver.

Pure torch. What the authors' inference runs (method spec, section 8), written from the
equations:

* schedule, in float64: ``s = linspace(1, 0, steps + 1)[:steps]``,
  ``σ = shift·s / (1 + (shift − 1)·s)``, then a final ``σ = 0``; the solver uses these σ
  rounded to float32;
* DiT timestep: ``int64(σ·1000)`` truncated from the **float64** σ (from the float32 σ the
  result is one higher on some steps, e.g. 875 instead of 874 at shift 3);
* solver: flow DPM-Solver++(2M), midpoint, data prediction, with ``α = 1 − σ`` and
  ``λ = log α − log σ``. Step ``i`` goes from ``σ_s = σ_i`` to ``σ_t = σ_{i+1}``,
  ``h = λ_t − λ_s``::

      first order (step 0 and the last step):
          x ← (σ_t/σ_s)·x − α_t·(e^(−h) − 1)·x0_i
      otherwise, r = (λ_s − λ_{i−1})/h, D1 = (x0_i − x0_{i−1})/r:
          x ← (σ_t/σ_s)·x − α_t·(e^(−h) − 1)·x0_i − ½·α_t·(e^(−h) − 1)·D1

  At σ = 1 (α = 0, λ = −∞) and σ = 0 (λ = +∞) the formulas are evaluated as they stand in
  IEEE arithmetic, as the released code does: ``e^(−∞) = 0``, so step 0 gives
  ``σ_t·x + α_t·x0``, the last step gives ``x0``, and on step 1 ``r = ∞`` makes ``D1 = 0``
  (first order in effect). The scalar coefficients are computed in float32 on the CPU with
  the released code's order of operations; the latent update runs in float32.

:func:`sample_released` follows the k-diffusion sampler contract that ComfyUI uses:
``model(x, sigma * s_in, **extra_args)`` returns the denoised ``x0``.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple

import torch

NUM_TRAIN_TIMESTEPS = 1000


def released_sigmas64(steps: int, shift: float) -> List[float]:
    """The released float64 schedule without its final 0: ``steps`` Python floats.

    ``s_i`` is computed the way numpy's ``linspace(1, 0, steps + 1)`` does it
    (``i·(−1/steps) + 1``), then ``σ_i = shift·s_i / (1 + (shift − 1)·s_i)``, each operation
    rounded to float64 like the released numpy code.
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    shift = float(shift)
    if not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"shift must be a positive number; got {shift}")
    step = -1.0 / steps
    out = []
    for i in range(steps):
        s = i * step + 1.0
        out.append(shift * s / (1.0 + (shift - 1.0) * s))
    return out


def released_schedule(steps: int, shift: float, denoise: float = 1.0
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(sigmas, timesteps)`` of the released sampler.

    ``sigmas``: float32 ``[steps + 1]`` from 1 down to a final 0 (what the solver uses);
    ``timesteps``: int64 ``[steps]``, ``int64(σ·1000)`` truncated from the float64 σ (what
    the DiT is given). ``denoise < 1`` keeps the last ``steps`` steps of a
    ``steps / denoise``-step schedule, as ComfyUI's schedulers do; ``denoise <= 0`` is empty.
    """
    if denoise <= 0.0:
        return torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    total = steps if denoise > 0.9999 else int(steps / denoise)
    s64 = released_sigmas64(total, shift)
    sigmas = torch.tensor(s64 + [0.0], dtype=torch.float64).to(torch.float32)
    timesteps = torch.tensor([int(s * NUM_TRAIN_TIMESTEPS) for s in s64], dtype=torch.int64)
    return sigmas[-(steps + 1):], timesteps[-steps:]


def _shift_candidates(sig32: torch.Tensor, steps: int) -> List[float]:
    """Shifts that reproduce float32 ``sig32`` (``[steps]``, without the final 0).

    σ grows with the shift at every ``s`` in (0, 1), so each float32 σ_i pins the shift to an
    interval (the shifts whose float64 σ_i rounds to it, through the inverse
    ``shift = σ(1 − s) / (s(1 − σ))``). Candidates are the shortest decimals inside the
    intersection of all intervals (people type round shifts), then its midpoint.
    """
    lo, hi = 0.0, math.inf
    inf32 = torch.tensor(math.inf, dtype=torch.float32)
    for i in range(1, steps):
        v = sig32[i]
        if not 0.0 < float(v) < 1.0:
            return []
        below = (float(v) + float(torch.nextafter(v, -inf32))) / 2.0
        above = (float(v) + float(torch.nextafter(v, inf32))) / 2.0
        s = i * (-1.0 / steps) + 1.0
        inv = lambda sig: sig * (1.0 - s) / (s * (1.0 - sig))  # noqa: E731
        lo = max(lo, inv(below))
        hi = min(hi, inv(above) if above < 1.0 else math.inf)
    if not lo <= hi or not math.isfinite(lo):
        return []
    mid = (lo + hi) / 2.0 if math.isfinite(hi) else lo * 2.0
    out = []
    for digits in range(0, 16):
        c = round(mid, digits)
        if lo <= c <= hi and c > 0 and c not in out:
            out.append(c)
    for c in (mid, lo, hi):
        if math.isfinite(c) and c > 0 and c not in out:
            out.append(c)
    return out


def match_released_schedule(sigmas: torch.Tensor) -> Optional[Tuple[int, float]]:
    """``(steps, shift)`` whose :func:`released_schedule` gives exactly these float32
    ``sigmas`` (``[steps + 1]``, from 1 to 0), or ``None`` when they are not a released
    schedule (another scheduler, a slice of one, ``denoise < 1``)."""
    sig = sigmas.detach().to("cpu", torch.float32).flatten()
    n = sig.numel() - 1
    if n < 1 or float(sig[0]) != 1.0 or float(sig[-1]) != 0.0:
        return None
    if n == 1:
        return 1, 1.0
    for shift in _shift_candidates(sig[:-1], n):
        cand, _ = released_schedule(n, shift)
        if torch.equal(cand, sig):
            return n, shift
    return None


def released_timesteps(sigmas: torch.Tensor) -> Tuple[torch.Tensor, bool]:
    """The DiT timesteps the released code uses with ``sigmas`` (float ``[n + 1]``):
    int64 ``[n]`` and whether they are exact.

    When ``sigmas`` is a released schedule (:func:`match_released_schedule`) the integers
    are exactly the released ones. Otherwise the released rule is applied to the float32 σ
    as given (``int64(σ·1000)``), which can be one higher than the float64 rule where
    ``σ·1000`` lies within float32 rounding of an integer: ``exact`` is then ``False``.
    """
    found = match_released_schedule(sigmas)
    if found is not None:
        return released_schedule(*found)[1], True
    sig = sigmas.detach().to("cpu", torch.float64).flatten()[:-1]
    return (sig * NUM_TRAIN_TIMESTEPS).to(torch.int64), False


def timestep_table(sigmas: torch.Tensor, timesteps: Optional[torch.Tensor] = None
                   ) -> Tuple[Dict[float, int], bool]:
    """The DiT timestep of each step of ``sigmas`` (``[n + 1]``) as ``{float(σ): int}`` and
    whether they are exact: ``timesteps`` ``[n]`` when known (:func:`released_schedule`),
    else recovered with :func:`released_timesteps`."""
    exact = True
    if timesteps is None:
        timesteps, exact = released_timesteps(sigmas)
    sig = sigmas.detach().to("cpu", torch.float32).flatten().tolist()
    ints = torch.as_tensor(timesteps).flatten().tolist()
    return {float(s): int(t) for s, t in zip(sig, ints)}, exact


def flow_timestep_error(sigma: float, timestep: float) -> Optional[str]:
    """``None`` when a model maps ``sigma`` to the timestep ``σ·1000`` (within 1), as Wan 2.1's
    flow matching does: only then may the released integer replace it."""
    if abs(float(timestep) - float(sigma) * NUM_TRAIN_TIMESTEPS) <= 1.0:
        return None
    return (f"the LumosX released sampler needs a flow-matching model whose timestep is σ·1000 "
            f"(Wan 2.1); this model maps σ={float(sigma):.4f} to t={float(timestep):.2f}. "
            f"Use a ComfyUI sampler with it")


def _lam(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return torch.log(alpha) - torch.log(sigma)


def released_update(x: torch.Tensor, x0: torch.Tensor, x0_prev: Optional[torch.Tensor],
                    sigma_prev: Optional[torch.Tensor], sigma_s: torch.Tensor,
                    sigma_t: torch.Tensor, first_order: bool) -> torch.Tensor:
    """One released solver step from ``sigma_s`` to ``sigma_t`` (0-d float32 CPU tensors).

    ``x``, ``x0``, ``x0_prev``: float32 latents of one shape (``x0_prev``/``sigma_prev``: the
    previous step's denoised latent and σ, unused when ``first_order``). Returns float32.
    """
    alpha_t, alpha_s = 1.0 - sigma_t, 1.0 - sigma_s
    lambda_t, lambda_s = _lam(alpha_t, sigma_t), _lam(alpha_s, sigma_s)
    h = lambda_t - lambda_s
    ratio = (sigma_t / sigma_s).to(x.device)
    coef = (alpha_t * (torch.exp(-h) - 1.0)).to(x.device)
    if first_order:
        return ratio * x - coef * x0
    lambda_p = _lam(1.0 - sigma_prev, sigma_prev)
    r0 = (lambda_s - lambda_p) / h
    d1 = (1.0 / r0).to(x.device) * (x0 - x0_prev)
    return ratio * x - coef * x0 - (0.5 * coef) * d1


def _progress(n: int, disable):
    try:
        from tqdm.auto import trange
    except ImportError:  # pragma: no cover - tqdm ships with ComfyUI
        return range(n)
    return trange(n, disable=disable)


@torch.no_grad()
def sample_released(model: Callable, x: torch.Tensor, sigmas: torch.Tensor,
                    extra_args: Optional[dict] = None, callback: Optional[Callable] = None,
                    disable=None) -> torch.Tensor:
    """The released flow DPM-Solver++(2M) over ``sigmas`` (``[n + 1]``, decreasing, normally
    from 1 to 0; ``x`` is then pure noise).

    k-diffusion contract: ``model(x, sigma * s_in, **extra_args)`` -> denoised ``x0`` of
    ``x``'s shape; ``callback({'x', 'i', 'sigma', 'sigma_hat', 'denoised'})`` after each
    model call. First order on the first and on the last step of ``sigmas`` (as the
    released scheduler, whatever the last σ), second order in between. Returns ``x`` at
    ``sigmas[-1]`` in ``x``'s dtype.
    """
    extra_args = {} if extra_args is None else extra_args
    sig = sigmas.detach().to("cpu", torch.float32).flatten()
    n = sig.numel() - 1
    if n < 1:
        return x
    s_in = x.new_ones([x.shape[0]])
    out_dtype = x.dtype
    x = x.float()
    x0_prev = None
    for i in _progress(n, disable):
        denoised = model(x.to(out_dtype), sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i],
                      "denoised": denoised})
        d = denoised.float()
        first = i == 0 or i == n - 1 or x0_prev is None
        x = released_update(x, d, x0_prev, None if i == 0 else sig[i - 1], sig[i], sig[i + 1],
                            first)
        x0_prev = d
    return x.to(out_dtype)
