"""Compare a target's outputs with the reference. ``compare`` never raises: it collects every
mismatch (names, shapes, values) and the metrics into a Comparison, then applies the gates.

Metrics per output tensor follow its kind (packager/kinds.py): top-1 and top-5 agreement for class outputs
(probabilities/logits, 2-D, >= 2 classes), decision agreement at 0.5 for sigmoid scores (share of scores on
the same side of 0.5), and for every output max / mean absolute error and cosine similarity (mean over
samples). Regression and other outputs get errors and cosine only.

Gates (defaults below, per quantization mode; override in packager.toml under
``[tolerances.<mode>]`` or ``[tolerances.<target>]``):
  min_top1       top-1 agreement at least this (class outputs only)
  min_decision   decision agreement at 0.5 at least this (sigmoid outputs only)
  min_cosine     mean cosine similarity at least this
  max_abs_error  max |candidate - reference| at most this x max(1, max |reference|)
  min_psnr       image outputs: the worst sample's PSNR (dB, peak max(1, max |reference|)) at least this
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from packager.kinds import CLASS_KINDS

DEFAULT_GATES: dict[str, dict[str, float]] = {
    "fp32": {"min_top1": 1.0, "min_decision": 1.0, "min_cosine": 0.9999, "max_abs_error": 1e-3, "min_psnr": 60.0},
    "fp16": {"min_top1": 0.98, "min_decision": 0.98, "min_cosine": 0.999, "max_abs_error": 1e-2, "min_psnr": 40.0},
    "dynamic": {"min_top1": 0.95, "min_decision": 0.95, "min_cosine": 0.99, "max_abs_error": 0.05, "min_psnr": 30.0},
    "8bit": {"min_top1": 0.95, "min_decision": 0.95, "min_cosine": 0.99, "max_abs_error": 0.05, "min_psnr": 30.0},
    "palette6": {"min_top1": 0.95, "min_decision": 0.95, "min_cosine": 0.99, "max_abs_error": 0.05, "min_psnr": 30.0},  # as 8bit
    "palette4": {"min_top1": 0.95, "min_decision": 0.95, "min_cosine": 0.99, "max_abs_error": 0.05, "min_psnr": 30.0},
    "uint16": {"min_top1": 0.98, "min_decision": 0.98, "min_cosine": 0.999, "max_abs_error": 1e-2, "min_psnr": 40.0},
    "int8": {"min_top1": 0.90, "min_decision": 0.90, "min_cosine": 0.98, "max_abs_error": 0.1, "min_psnr": 25.0},
    "uint8": {"min_top1": 0.90, "min_decision": 0.90, "min_cosine": 0.98, "max_abs_error": 0.1, "min_psnr": 25.0},
    "mixed": {"min_top1": 0.90, "min_decision": 0.90, "min_cosine": 0.98, "max_abs_error": 0.1, "min_psnr": 25.0},  # int8 / uint8 mix
}
GATE_KEYS = ("min_top1", "min_decision", "min_cosine", "max_abs_error", "min_psnr")
PSNR_CAP = 200.0  # dB: identical maps (no error) are reported as this, not infinity
IMAGE_WORST = 4  # image outputs: the samples with the largest mean abs error kept for the report's pictures
DECISION_THRESHOLD = 0.5


def gates_for(target: str, mode: str, overrides: dict | None = None) -> dict[str, float]:
    gates = dict(DEFAULT_GATES.get(mode, DEFAULT_GATES["fp32"]))
    overrides = overrides or {}
    for key in (mode, target, f"{target}.{mode}"):
        gates.update(overrides.get(key, {}))
    return gates


@dataclass
class Comparison:
    ok: bool
    metrics: dict[str, float | None]  # worst case over outputs
    per_output: dict[str, dict[str, float | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    disagreements: list[int] = field(default_factory=list)  # sample indices where top-1 differs
    error_histogram: dict = field(default_factory=dict)  # {"edges": [...], "counts": [...]} of |cand - ref|
    confusion: dict = field(default_factory=dict)  # {classes, counts[reference top-1][converted top-1]}
    structural: bool = False  # outputs missing, unexpected or misshapen: no quantization mode changes that

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


def is_class_shaped(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[1] >= 2


def legacy_kind(ref: np.ndarray) -> str:
    """The kind assumed when none is given: class-shaped outputs are class scores."""
    return "logits" if is_class_shaped(np.asarray(ref)) else "regression"


def output_metrics(ref: np.ndarray, cand: np.ndarray, kind: str | None = None) -> tuple[dict[str, float | None], list[int]]:
    kind = kind or legacy_kind(ref)
    ref = np.asarray(ref, np.float64)
    cand = np.asarray(cand, np.float64)
    diff = np.abs(ref - cand)
    r = ref.reshape(len(ref), -1)
    c = cand.reshape(len(cand), -1)
    if r.shape[1] == 1:
        # One value per sample: a per-sample cosine is only the sign (0 when fp16 flushes a 1e-8 score to 0, with
        # an error of 1e-8). The cosine of the column of all samples' values is the meaningful one.
        r, c = r.T, c.T
    nr = np.linalg.norm(r, axis=1)
    nc = np.linalg.norm(c, axis=1)
    denom = nr * nc
    both_zero = (nr == 0) & (nc == 0)
    cos = np.where(denom > 0, (r * c).sum(axis=1) / np.where(denom > 0, denom, 1), np.where(both_zero, 1.0, 0.0))
    m: dict[str, float | None] = {
        "max_abs_error": float(diff.max()) if diff.size else 0.0,
        "mean_abs_error": float(diff.mean()) if diff.size else 0.0,
        "cosine": float(cos.mean()) if cos.size else 1.0,
        "reference_max_abs": float(np.abs(ref).max()) if ref.size else 0.0,
        "top1_agreement": None,
        "top5_agreement": None,
        "decision_agreement": None,
    }
    disagree: list[int] = []
    if kind == "image" and ref.size:
        peak = max(1.0, m["reference_max_abs"])
        per_sample_mse = np.square(ref - cand).reshape(len(ref), -1).mean(axis=1)
        with np.errstate(divide="ignore"):
            psnr = np.where(per_sample_mse > 0, 10 * np.log10(peak * peak / np.maximum(per_sample_mse, 1e-300)),
                            PSNR_CAP)
        m["psnr"] = float(min(PSNR_CAP, psnr.min()))
        per_sample_mae = diff.reshape(len(ref), -1).mean(axis=1)
        m["worst_samples"] = [int(i) for i in np.argsort(-per_sample_mae, kind="stable")[:IMAGE_WORST]]
    if kind == "sigmoid" and ref.size:
        m["decision_agreement"] = float(((ref > DECISION_THRESHOLD) == (cand > DECISION_THRESHOLD)).mean())
    if kind in CLASS_KINDS and is_class_shaped(ref):
        rt = ref.argmax(axis=1)
        ct = cand.argmax(axis=1)
        m["top1_agreement"] = float((rt == ct).mean())
        k = min(5, ref.shape[1])
        topk = np.argsort(-cand, axis=1, kind="stable")[:, :k]  # ties ordered like argmax
        m["top5_agreement"] = float((topk == rt[:, None]).any(axis=1).mean())
        disagree = [int(i) for i in np.nonzero(rt != ct)[0]]
    return m, disagree


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], gates: dict[str, float],
            kinds: dict[str, str] | None = None) -> Comparison:
    """``kinds``: output name -> kind (packager.kinds); without it, class-shaped outputs count as class scores."""
    kinds = {n: (kinds or {}).get(n) or legacy_kind(r) for n, r in reference.items()}
    problems: list[str] = []
    structural = False
    per_output: dict[str, dict] = {}
    disagreements: set[int] = set()
    missing = [n for n in reference if n not in candidate]
    extra = [n for n in candidate if n not in reference]
    structural = bool(missing or extra)
    if missing:
        problems.append(f"outputs missing from the target: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected outputs: {', '.join(extra)}")
    for name, ref in reference.items():
        if name not in candidate:
            continue
        cand = np.asarray(candidate[name])
        if cand.shape != ref.shape:
            if cand.size == ref.size:
                cand = cand.reshape(ref.shape)
            else:
                problems.append(f"output {name!r}: shape {cand.shape} differs from the reference {ref.shape}")
                structural = True
                continue
        if not np.isfinite(cand).all():
            problems.append(f"output {name!r}: contains NaN or infinity")
            continue
        m, dis = output_metrics(ref, cand, kinds[name])
        per_output[name] = m
        disagreements.update(dis)
        bound = gates["max_abs_error"] * max(1.0, m["reference_max_abs"])
        if m["max_abs_error"] > bound:
            problems.append(f"output {name!r}: max abs error {m['max_abs_error']:.4g} > {bound:.4g}")
        if m["cosine"] < gates["min_cosine"]:
            problems.append(f"output {name!r}: cosine {m['cosine']:.6f} < {gates['min_cosine']}")
        if m["top1_agreement"] is not None and m["top1_agreement"] < gates["min_top1"]:
            problems.append(f"output {name!r}: top-1 agreement {m['top1_agreement']:.3f} < {gates['min_top1']}")
        if m.get("psnr") is not None and m["psnr"] < gates.get("min_psnr", 0.0):
            problems.append(f"output {name!r}: PSNR {m['psnr']:.2f} dB < {gates['min_psnr']} dB (worst sample)")
        min_decision = gates.get("min_decision", gates["min_top1"])
        if m["decision_agreement"] is not None and m["decision_agreement"] < min_decision:
            problems.append(f"output {name!r}: decision agreement at {DECISION_THRESHOLD} "
                            f"{m['decision_agreement']:.3f} < {min_decision}")
    errors = [np.abs(np.asarray(candidate[n], np.float64).reshape(-1) - np.asarray(r, np.float64).reshape(-1))
              for n, r in reference.items() if n in per_output]
    class_ref = next((n for n, r in reference.items()
                      if n in per_output and kinds[n] in CLASS_KINDS and is_class_shaped(r)), None)
    return Comparison(
        ok=not problems,
        error_histogram=error_histogram(np.concatenate(errors)) if errors else {},
        confusion=confusion_matrix(reference[class_ref], candidate[class_ref]) if class_ref else {},
        metrics=_worst(per_output),
        per_output=per_output,
        problems=problems,
        disagreements=sorted(disagreements),
        structural=structural,
    )


HISTOGRAM_EDGES = [0.0] + [10.0**e for e in range(-7, 1)] + [float("inf")]


def error_histogram(errors: np.ndarray) -> dict:
    """Counts of absolute errors in decades: [0,1e-7), [1e-7,1e-6) ... [1, inf)."""
    counts, _ = np.histogram(errors, bins=np.array(HISTOGRAM_EDGES))
    return {"edges": ["0", *(f"1e{e}" for e in range(-7, 1)), "inf"], "counts": [int(c) for c in counts]}


def confusion_matrix(ref: np.ndarray, cand: np.ndarray) -> dict:
    """Top-1 counts, original (rows) vs converted (columns), over the classes that occur as either's top-1
    (a 1000-class model on 16 samples gets a table of at most 32 classes, not a million cells)."""
    r, c = ref.argmax(axis=1), np.asarray(cand).reshape(ref.shape).argmax(axis=1)
    classes = sorted(set(r.tolist()) | set(c.tolist()))
    index = {k: i for i, k in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(m, ([index[k] for k in r.tolist()], [index[k] for k in c.tolist()]), 1)
    return {"classes": classes, "counts": m.tolist()}


def _worst(per_output: dict[str, dict]) -> dict[str, float | None]:
    if not per_output:
        return {"top1_agreement": None, "top5_agreement": None, "decision_agreement": None, "max_abs_error": None,
                "mean_abs_error": None, "cosine": None, "psnr": None}

    def pick(key, fn):
        vals = [m[key] for m in per_output.values() if m.get(key) is not None]
        return fn(vals) if vals else None

    return {
        "top1_agreement": pick("top1_agreement", min),
        "top5_agreement": pick("top5_agreement", min),
        "decision_agreement": pick("decision_agreement", min),
        "max_abs_error": pick("max_abs_error", max),
        "mean_abs_error": pick("mean_abs_error", max),
        "cosine": pick("cosine", min),
        "psnr": pick("psnr", min),
    }


def certain_failure(reference: dict[str, np.ndarray], first: dict[str, np.ndarray], gates: dict[str, float]) -> str | None:
    """Why ``first`` (a converted model's outputs on the first k samples) already fails the gates whatever the other
    samples give, or None: the max-abs-error gate, whose bound comes from the whole reference (as ``compare`` sets
    it) and whose error over more samples is never smaller. The other gates (means, agreements) can be undone."""
    for name, ref in reference.items():
        if name not in first or "max_abs_error" not in gates:
            continue
        ref = np.asarray(ref, np.float64)
        got = np.asarray(first[name], np.float64)
        k = len(got)
        if k == 0 or k > len(ref) or got.size != ref[:k].size or not np.isfinite(got).all():
            continue
        bound = gates["max_abs_error"] * max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
        err = float(np.abs(got.reshape(-1) - ref[:k].reshape(-1)).max())
        if err > bound:
            return f"output {name!r}: max abs error {err:.4g} > {bound:.4g}"
    return None
