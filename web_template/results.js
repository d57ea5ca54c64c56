/* The demo's result view: top labels with bars, raw values of the other outputs. Text only (textContent). */

import { toImageData } from "./model.js";

const $ = (id) => document.getElementById(id);

/** An image output (kind "image": a map, mask or image the size of the input) drawn on a canvas the input
 *  preview's size, beside it, with its name and shape. */
function imageOutputFigure(name, v) {
  const figure = document.createElement("figure");
  figure.className = "output-image";
  const canvas = document.createElement("canvas");
  const image = toImageData(v);
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.dataset.output = name;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "output " + name);
  const preview = $("preview");
  if (preview) canvas.style.width = getComputedStyle(preview).width;
  canvas.getContext("2d").putImageData(image, 0, 0);
  const caption = document.createElement("figcaption");
  caption.textContent = name + " [" + v.shape.join(", ") + "]";
  figure.append(canvas, caption);
  return figure;
}

/** Probabilities shown as percentages; other scores (logits) as numbers. */
function formatter(scores) {
  const probabilities = Array.from(scores).every((s) => s >= 0 && s <= 1);
  return {
    text: probabilities ? (s) => (100 * s).toFixed(1) + " %" : (s) => s.toPrecision(4),
    // bar length: the probability itself, or the score's place between the lowest and highest score (logits)
    fraction: probabilities ? (s) => s : (() => {
      const lo = Math.min(...scores), hi = Math.max(...scores);
      return (s) => (hi > lo ? (s - lo) / (hi - lo) : 1);
    })(),
  };
}

/** Render result `r` of the model (`metadata`); returns the top entry {label, score, shown} or null. */
export function showResult(r, metadata, backend) {
  $("latency").textContent = "Inference: " + r.ms.toFixed(1) + " ms (" + backend + " backend)";
  const list = $("results");
  const raw = $("raw-outputs");
  list.replaceChildren();
  raw.replaceChildren();
  $("result-section").classList.remove("stale");
  const labelOutput = metadata.label_output && r.outputs[metadata.label_output];
  let top = null;
  if (labelOutput) {
    const scores = labelOutput.data;
    const fmt = formatter(scores);
    const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, metadata.top_k);
    for (const i of order) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = metadata.labels[i];
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = (100 * Math.max(0, Math.min(1, fmt.fraction(scores[i])))).toFixed(1) + "%";
      track.appendChild(fill);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = fmt.text(scores[i]);
      li.append(label, track, score);
      list.appendChild(li);
      if (!top) top = { label: metadata.labels[i], score: scores[i], shown: fmt.text(scores[i]) };
    }
  }
  for (const o of metadata.outputs) {
    if (labelOutput && o.name === metadata.label_output) continue;
    const v = r.outputs[o.name];
    if (o.kind === "image") {
      raw.append(imageOutputFigure(o.name, v));
      continue;
    }
    const h = document.createElement("h3");
    h.textContent = o.name + " [" + v.shape.join(", ") + "]";
    const pre = document.createElement("pre");
    const shown = Array.from(v.data.slice(0, 64), (x) => x.toPrecision(5));
    pre.textContent = shown.join(", ") + (v.data.length > 64 ? ", \u2026 (" + v.data.length + " values)" : "");
    raw.append(h, pre);
  }
  return top;
}

/** After an error: nothing of the previous result stays on screen. */
export function clearResult() {
  $("results").replaceChildren();
  $("raw-outputs").replaceChildren();
  $("latency").textContent = "";
}

export function showError() {
  const preview = $("preview");
  if (preview) preview.getContext("2d").clearRect(0, 0, preview.width, preview.height);
}
