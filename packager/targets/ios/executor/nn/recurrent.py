"""The legacy recurrent layers: ``simpleRecurrent``, ``gru``, ``uniDirectionalLSTM``, ``biDirectionalLSTM``.

Inputs ``[x, optional initial states]`` with ``x`` of shape ``(Seq, Batch, inputVectorSize, 1, 1)``
(or ``(Seq, Batch, inputVectorSize)``); outputs ``[y, final h, (final c)]``, ``y`` holding every step
(``sequenceOutput``) or the last one. Gate pre-activations are clipped to [-50, 50] as
``NeuralNetwork.proto`` specifies; weights are ``[out, in]`` row-major. (coremltools 9 writes TF RNNs
as ``loop`` layers instead, see ``control``; these layers come from older converters and builders.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.activations import _activation_fn
from packager.targets.ios.executor.nn.common import F32, Op, has_weights, weights

CLIP = 50.0


def _acts(params, defaults: list[str], name: str) -> list[Callable]:
    named = {"sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh}
    if not len(params):
        return [named[d] for d in defaults]
    return [_activation_fn(p, name) for p in params]


def _seq(x: np.ndarray) -> np.ndarray:
    """``(Seq, Batch, I[, 1, 1])`` -> ``(Seq, Batch, I)``."""
    return x.reshape(x.shape[0], x.shape[1], -1) if x.ndim != 3 else x


def _shaped(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    return y.reshape(y.shape + (1, 1)) if like.ndim == 5 else y


def _state(xs, i: int, batch: int, size: int) -> np.ndarray:
    if len(xs) > i:
        return np.asarray(xs[i], F32).reshape(batch, size)
    return np.zeros((batch, size), F32)


def _mat(wp, rows: int, cols: int) -> np.ndarray:
    return weights(wp, (rows, cols)).T  # applied as x @ W.T


def _vec(wp, size: int) -> np.ndarray:
    return weights(wp, (size,)) if has_weights(wp) else np.zeros(size, F32)


def _run(step, x: np.ndarray, states: list[np.ndarray], reverse: bool):
    """Run ``step(x_t, states) -> states`` over the sequence; returns the per-step first states and the last."""
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    ys = []
    for t in order:
        states = step(x[t], states)
        ys.append(states[0])
    return np.stack(ys), states


def _simple(layer) -> Op:
    p = layer.simpleRecurrent
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    w, r = _mat(p.weightMatrix, n_out, n_in), _mat(p.recursionMatrix, n_out, n_out)
    b = _vec(p.biasVector, n_out) if p.hasBiasVector else np.zeros(n_out, F32)
    f = _activation_fn(p.activation, layer.name)

    def op(xs):
        x = _seq(xs[0])
        ys, (h,) = _run(lambda xt, s: [f(np.clip(xt @ w + s[0] @ r + b, -CLIP, CLIP))], x,
                        [_state(xs, 1, x.shape[1], n_out)], p.reverseInput)
        y = ys if p.sequenceOutput else ys[-1:]
        return [_shaped(y.astype(F32), xs[0]), _shaped(h[None].astype(F32), xs[0])]

    return op


def _gru(layer) -> Op:
    p = layer.gru
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    wz, wr, wo = (_mat(m, n_out, n_in) for m in (p.updateGateWeightMatrix, p.resetGateWeightMatrix,
                                                  p.outputGateWeightMatrix))
    rz, rr, ro = (_mat(m, n_out, n_out) for m in (p.updateGateRecursionMatrix, p.resetGateRecursionMatrix,
                                                   p.outputGateRecursionMatrix))
    zero = np.zeros(n_out, F32)
    bz, br, bo = ((_vec(v, n_out) if p.hasBiasVectors else zero) for v in (
        p.updateGateBiasVector, p.resetGateBiasVector, p.outputGateBiasVector))
    f, g = _acts(p.activations, ["sigmoid", "tanh"], layer.name)

    def step(xt, s):
        h = s[0]
        z = f(np.clip(xt @ wz + h @ rz + bz, -CLIP, CLIP))
        r = f(np.clip(xt @ wr + h @ rr + br, -CLIP, CLIP))
        o = g(np.clip(xt @ wo + (h * r) @ ro + bo, -CLIP, CLIP))
        return [(1 - z) * o + z * h]

    def op(xs):
        x = _seq(xs[0])
        ys, (h,) = _run(step, x, [_state(xs, 1, x.shape[1], n_out)], p.reverseInput)
        y = ys if p.sequenceOutput else ys[-1:]
        return [_shaped(y.astype(F32), xs[0]), _shaped(h[None].astype(F32), xs[0])]

    return op


def _lstm_step(wp, params, acts, n_in: int, n_out: int) -> Callable:
    W = [_mat(m, n_out, n_in) for m in (wp.inputGateWeightMatrix, wp.forgetGateWeightMatrix,
                                         wp.blockInputWeightMatrix, wp.outputGateWeightMatrix)]
    R = [_mat(m, n_out, n_out) for m in (wp.inputGateRecursionMatrix, wp.forgetGateRecursionMatrix,
                                          wp.blockInputRecursionMatrix, wp.outputGateRecursionMatrix)]
    zero = np.zeros(n_out, F32)
    bi, bf, bz, bo = ((_vec(v, n_out) if params.hasBiasVectors else zero) for v in (
        wp.inputGateBiasVector, wp.forgetGateBiasVector, wp.blockInputBiasVector, wp.outputGateBiasVector))
    if params.forgetBias:
        bf = bf + 1
    peep = params.hasPeepholeVectors
    pi, pf, po = ((_vec(v, n_out) if peep else zero) for v in (
        wp.inputGatePeepholeVector, wp.forgetGatePeepholeVector, wp.outputGatePeepholeVector))
    f, g, h_act = acts
    cell_clip = params.cellClipThreshold or 50000.0

    def step(xt, s):
        y, c = s
        i = f(np.clip(xt @ W[0] + y @ R[0] + pi * c + bi, -CLIP, CLIP))
        fg = 1 - i if params.coupledInputAndForgetGate else f(np.clip(xt @ W[1] + y @ R[1] + pf * c + bf, -CLIP, CLIP))
        z = g(np.clip(xt @ W[2] + y @ R[2] + bz, -CLIP, CLIP))
        c = np.clip(c * fg + i * z, -cell_clip, cell_clip)
        o = f(np.clip(xt @ W[3] + y @ R[3] + po * c + bo, -CLIP, CLIP))
        return [h_act(c) * o, c]

    return step


def _uni_lstm(layer) -> Op:
    p = layer.uniDirectionalLSTM
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    step = _lstm_step(p.weightParams, p.params, _acts(p.activations, ["sigmoid", "tanh", "tanh"], layer.name),
                      n_in, n_out)

    def op(xs):
        x = _seq(xs[0])
        b = x.shape[1]
        ys, (h, c) = _run(step, x, [_state(xs, 1, b, n_out), _state(xs, 2, b, n_out)], p.reverseInput)
        y = ys if p.params.sequenceOutput else ys[-1:]
        return [_shaped(v.astype(F32), xs[0]) for v in (y, h[None], c[None])]

    return op


def _bi_lstm(layer) -> Op:
    """Forward over x, backward over reversed x; the backward outputs are put back in time order, so step t
    holds ``[yf_t, yb_t]`` where ``yb_t`` has seen ``x_T .. x_t``."""
    p = layer.biDirectionalLSTM
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    defaults = ["sigmoid", "tanh", "tanh"]
    fwd = _lstm_step(p.weightParams[0], p.params, _acts(p.activationsForwardLSTM, defaults, layer.name), n_in, n_out)
    bwd = _lstm_step(p.weightParams[1], p.params, _acts(p.activationsBackwardLSTM, defaults, layer.name), n_in, n_out)

    def op(xs):
        x = _seq(xs[0])
        b = x.shape[1]
        yf, (hf, cf) = _run(fwd, x, [_state(xs, 1, b, n_out), _state(xs, 2, b, n_out)], False)
        yb, (hb, cb) = _run(bwd, x, [_state(xs, 3, b, n_out), _state(xs, 4, b, n_out)], True)
        if p.params.sequenceOutput:
            y = np.concatenate([yf, yb[::-1]], axis=-1)
        else:
            y = np.concatenate([yf[-1:], yb[-1:]], axis=-1)
        return [_shaped(v.astype(F32), xs[0]) for v in (y, hf[None], cf[None], hb[None], cb[None])]

    return op


BUILDERS: dict[str, Callable] = {
    "simpleRecurrent": _simple,
    "gru": _gru,
    "uniDirectionalLSTM": _uni_lstm,
    "biDirectionalLSTM": _bi_lstm,
}
