"""Rules for the regularization family (dropout and noise, training mode)."""

from __future__ import annotations

from dataclasses import replace

from autoinit.estimators.covariance import spatial_dropout_covariance
from autoinit.estimators.regularization import (
    estimate_alpha_dropout,
    estimate_dropout,
    estimate_gaussian_dropout,
    estimate_gaussian_noise,
)
from autoinit.estimators.scale_mixture import shared_mask_scale_var
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import keeps_weights_axis, rule
from autoinit.moments import SignalMoments


@keeps_weights_axis
@rule("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
def dropout(ctx: LayerContext) -> SignalMoments:
    """Masks independent per element keep the covariance of two positions
    (mean-1 masks), so ``example_shared_var`` passes. A mask shared by the
    positions of one example's channel (spatial dropout, or a ``noise_shape``
    of 1 on every position axis) makes one: for ``y_t = m x_t``,
    ``E[m^2] = 1 / (1 - p)``, ``Cov(y_t, y_s) = (e + p d^2) / (1 - p)`` with
    ``d`` the channel's expected value, averaged to ``mean^2 + shared_var``.
    A mask shared by the whole example (stochastic depth) also scales the
    example as a whole (``SignalMoments.scale_var``). Attention weights
    (``weights_overlap``) keep what two rows share: each mean is kept."""
    x, rate = ctx.x, float(ctx.layer.rate)
    y = estimate_dropout(x, rate)
    if not 0.0 < rate < 1.0:
        return y
    example = x.example_shared_var
    shared_mask = _mask_shared_over_positions(ctx)
    if shared_mask:
        example = (example + rate * (x.mean * x.mean + x.shared_var)) / (1.0 - rate)
    y = replace(y, example_shared_var=example) if example > 0.0 else y
    if x.weights_overlap is not None and not shared_mask:  # attention dropout: means kept, masks independent
        y = replace(y, weights_overlap=x.weights_overlap)
    kappa = shared_mask_scale_var(x.scale_var, rate) if _mask_per_example(ctx) else None
    y = y.with_scale_of(x, kappa)
    if x.covariance is None:
        return y
    if shared_mask:
        return y.with_covariance(spatial_dropout_covariance(x.covariance, x.offsets, rate))
    return _independent_noise(x, y, ctx)


def _mask_shared_over_positions(ctx: LayerContext) -> bool:
    if type(ctx.layer).__name__.startswith("SpatialDropout"):
        return True
    noise = getattr(ctx.layer, "noise_shape", None)
    return noise is not None and len(noise) > 2 and all(d == 1 for d in noise[1:-1])


def _mask_per_example(ctx: LayerContext) -> bool:
    """One mask for all of an example (stochastic depth: ``noise_shape``
    ``(None, 1, ..., 1)``): the example's scale (``scale_var``) changes."""
    noise = getattr(ctx.layer, "noise_shape", None)
    return noise is not None and len(noise) > 1 and all(d == 1 for d in noise[1:])


def _independent_noise(x: SignalMoments, y: SignalMoments, ctx: LayerContext) -> SignalMoments:
    """``y``, made from ``x`` by noise independent per element, with ``x``'s
    covariance between distinct elements (unchanged by such noise); a
    ``noise_shape`` that shares the noise between elements drops it."""
    if x.covariance is None or getattr(ctx.layer, "noise_shape", None) is not None:
        return y
    return y.with_covariance(x.covariance)


@rule("GaussianDropout")
def gaussian_dropout(ctx: LayerContext) -> SignalMoments:
    return _independent_noise(ctx.x, estimate_gaussian_dropout(ctx.x, float(ctx.layer.rate)), ctx)


@rule("GaussianNoise")
def gaussian_noise(ctx: LayerContext) -> SignalMoments:
    return _independent_noise(ctx.x, estimate_gaussian_noise(ctx.x, float(ctx.layer.stddev)), ctx)


@rule("AlphaDropout")
def alpha_dropout(ctx: LayerContext) -> SignalMoments:
    return estimate_alpha_dropout(ctx.x, float(ctx.layer.rate))


@rule("ActivityRegularization")
def activity_regularization(ctx: LayerContext) -> SignalMoments:
    """Adds a loss term only: the output is the input."""
    return ctx.x
