/* The model as an ES module: import it from any page (the demo, index.html, is one user of it).
 *
 *   import * as model from "./model.js";          // or, after `npm install ./web`: from "<package name>"
 *   await model.load();                           // -> {backend, skipped}
 *   const r = await model.predict({image: {shape: [1, 224, 224, 3], data: float32Array}});
 *   const r2 = await model.predictImage(imgOrVideoOrCanvasOrImageBitmap);
 *   model.topK(r2.outputs[model.metadata.primary_output].data, 5)  // [{index, label, score}]
 *
 * Labels, inputs, outputs and preprocessing come from metadata.json. Every file is found through model_files.js
 * (literal URLs next to this file, which bundlers copy into an app's build), or where
 * `load({baseUrl, modelUrl, wasmPaths, weights})` says (README.md). Types: model.d.ts.
 * This file is the same for every web runtime (TF.js, LiteRT.js: the same API and types, an app switches runtime
 * without code changes); what runs the model is model_runtime.js, the runtime's adapter.
 */
import { checkedFetch, download, message, watchdog } from "./loading.js";
import { imageOutputsOf } from "./image_output.js";
import { imageToInput } from "./image_input.js";
import { metadataUrl, modelUrl } from "./model_files.js";
import * as runtime from "./model_runtime.js";

/** The runtime's namespace once load() started: `tf` on a TF.js bundle (the app's own tf.js passed as
 * `load({tf})`, else the vendored one), `litert` on a LiteRT.js bundle; the other one stays null. */
export { tf, litert } from "./model_runtime.js";

/** Backends tried in this order (each validated on the samples by the build); `load({backends})` narrows it. */
export const BACKENDS = runtime.BACKENDS;
/** load() fails when nothing progresses (no byte arrives, no step finishes) for this long; a slow link that keeps
 * delivering is never cut off. `load({timeoutMs})` changes it. */
export const STALL_TIMEOUT_MS = 30000;
/** The same (the name of earlier bundles, when it limited the total time). */
export const LOAD_TIMEOUT_MS = STALL_TIMEOUT_MS;

export let metadata = null;
export let labels = [];
export let backend = null;

let model = null;
let loading = null;

/** metadata.json of this model (fetched once): next to this file, or `{baseUrl}` / `{metadataUrl}`. */
export async function loadMetadata(options = {}) {
  if (!metadata) {
    setMetadata(await (await checkedFetch(locate(options).metadata, undefined, "application/json")).json());
  }
  return metadata;
}

function setMetadata(m) {
  metadata = m;
  labels = metadata.labels || [];
}

/** Load the model on the first backend that starts AND runs it (a warm-up run on zeros); resolves {backend, skipped}.
 * Safe to call twice. `{warmUp: false}` skips the warm-up run: the first predict is then the slow one (WebGL
 * compiles its shaders), and a backend that starts but cannot run the model fails there, not here.
 * Where the files are (README.md): by default next to this file (model_files.js); `baseUrl` (a folder holding the
 * files as this package lays them out), `modelUrl`, `wasmPaths` (a folder or {file name: URL}), `weights` (the
 * model's bytes: no download) override it. `timeoutMs`: fail after that long without progress (STALL_TIMEOUT_MS);
 * `onProgress({step, loaded, total})`: each chunk downloaded and each step done. */
export function load(options = {}) {
  if (!loading) {
    const watch = watchdog(options.timeoutMs || STALL_TIMEOUT_MS, options.onProgress);
    loading = loadOnFirstWorkingBackend(options, watch).finally(watch.stop);
    loading.catch(() => { loading = null; });  // a failed load may be retried
  }
  return loading;
}

/** Where each file is: `load()`'s options, else the literal URLs of model_files.js (the runtime's own files:
 * model_runtime.js, from `page` and `base`). */
function locate(options) {
  const page = typeof location === "undefined" ? undefined : location.href;
  const folder = (url) => new URL(String(url).replace(/\/?$/, "/"), page);
  const base = options.baseUrl ? folder(options.baseUrl) : null;
  return {
    page: page,
    folder: folder,
    base: base,
    metadata: options.metadataUrl ? new URL(options.metadataUrl, page)
      : base ? new URL("metadata.json", base) : metadataUrl,
    model: options.modelUrl ? new URL(options.modelUrl, page)
      : base ? new URL((metadata && metadata.model_url) || runtime.MODEL_FILE, base) : modelUrl,
  };
}

async function loadOnFirstWorkingBackend(options, watch) {
  // Each step ends its task (a macrotask yield): the runtime's start, the model's build and the warm-up run are
  // separate main-thread tasks, not one long one that blocks input (Lighthouse's TBT counts each task over 50 ms).
  const step = (what, promise) => watch.guard(promise).then(async (r) => {
    watch.progress(what);
    await nextTask();
    return r;
  });
  const io = {
    options: options, step: step, locate: () => locate(options),
    download: (url, expected) => download(url, expected, watch),
    metadata: () => metadata, setMetadata: setMetadata, loadMetadata: () => loadMetadata(options),
  };
  // The model's files and the runtime: a missing or broken file fails here, once (not once per backend).
  const files = await step("files downloaded", runtime.prepare(io));
  // null: the runtime as the app set it up (its own tf.js: its backend and flags are left alone)
  const order = runtime.ownsBackend() ? backendOrder(options) : [null];
  const failures = [];
  for (const name of order) {
    try {
      const refused = await runtime.start(name, step);
      if (refused) {
        failures.push(name + ": " + refused);
        continue;
      }
    } catch (e) {
      if (e && e.stalled) throw e;
      failures.push(name + ": did not start (" + message(e) + ")");
      continue;
    }
    const on = name === null ? "" : " on " + name;
    try {
      model = await step(runtime.BUILD_STEP + on, runtime.build(files, name));
      if (options.warmUp !== false) await step("warmed up" + on, warmUp());
      backend = runtime.backendName(name);
      return { backend: backend, skipped: failures };
    } catch (e) {
      if (model) runtime.release(model);
      model = null;
      if (name === null || (e && e.stalled)) throw e;
      failures.push(name + ": " + message(e));
      console.warn(runtime.BACKEND + " " + name + " cannot run this model: " + message(e));
    }
  }
  throw new Error("no " + runtime.BACKEND + " could run the model (" + failures.join("; ") + ")");
}

/** The backends the build validated (metadata.backends), narrowed by `load({backends})`. */
function backendOrder(options) {
  const validated = metadata.backends || BACKENDS;
  const order = options.backends ? options.backends.filter((b) => validated.includes(b)) : validated;
  if (!order.length) {
    throw new Error("none of the backends asked for (" + options.backends.join(", ") + ") was validated by the " +
      "build: " + validated.join(", "));
  }
  return order;
}

function nextTask() {
  const scheduler = globalThis.scheduler;
  if (scheduler && typeof scheduler.yield === "function") return scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function warmUp() {
  const inputs = {};
  for (const spec of metadata.inputs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    inputs[spec.name] = { shape: spec.shape, data: spec.dtype === "int32" ? new Int32Array(n) : new Float32Array(n) };
  }
  await runtime.run(model, metadata, inputs);
}

/** {inputName: {shape, data}} -> {outputs: {outputName: {shape, data: Float32Array}}, ms}. Waits for load(). */
export async function predict(tensors) {
  await load();
  return runtime.run(model, metadata, tensors);
}

/** A File/Blob (EXIF orientation honoured), <img>, <video>, <canvas>, ImageBitmap (or OffscreenCanvas) through the
 *  model's preprocessing, then predict. The result also carries `input` (the tensor the model saw). */
export async function predictImage(source, options = {}) {
  await load();
  if (!metadata.image) throw new Error("this model does not take an image");
  const inputs = await imageToInput(source, metadata.image, options.canvas);
  const r = await runtime.run(model, metadata, inputs);
  r.input = inputs[metadata.image.input];
  return r;
}

export { defaultRange, toImageData } from "./image_output.js";

/** The image outputs of a prediction `r` (outputs of kind "image" in metadata.outputs: maps, masks or images the
 *  size of the input), by name: {tensor: {shape, data}, image: ImageData}. */
export function imageOutputs(r) {
  return imageOutputsOf(metadata, r);
}

/** The k best scores of an output, with their labels (when the output has labels). */
export function topK(scores, k = 5) {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, k);
  return order.map((i) => ({ index: i, label: labels[i] !== undefined ? labels[i] : String(i), score: scores[i] }));
}

/** Free the model (load() may be called again after). */
export function dispose() {
  if (model) runtime.release(model);
  model = null;
  loading = null;
  backend = null;
}
