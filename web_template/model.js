/* The model as an ES module: import it from any page (the demo, index.html, is one user of it).
 *
 *   import * as model from "./model.js";          // or, after `npm install ./web`: from "<package name>"
 *   await model.load();                           // -> {backend, skipped}
 *   const r = await model.predict({image: {shape: [1, 224, 224, 3], data: float32Array}});
 *   const r2 = await model.predictImage(imgOrVideoOrCanvasOrImageBitmap);
 *   model.topK(r2.outputs[model.metadata.primary_output].data, 5)  // [{index, label, score}]
 *
 * Labels, inputs, outputs and preprocessing come from metadata.json (the same object is in model.json's
 * userDefinedMetadata.packager). Every file is found through model_files.js (literal URLs next to this file, which
 * bundlers copy into an app's build), or where `load({baseUrl, modelUrl, wasmPaths, weights})` says (README.md).
 * Types: model.d.ts.
 */
import { checkedFetch, fileError, fileName, message, watchdog } from "./loading.js";
import { imageOutputsOf } from "./image_output.js";
import { imageToInput } from "./image_input.js";
import { metadataUrl, modelUrl, wasmUrls, weightUrls } from "./model_files.js";

/** The tf.js the model runs on, once load() started: the app's own (`load({tf})`: its backend and flags are left
 * as the app set them), else the vendored runtime (tfjs/tf-runtime.js, imported by the first load(): an app that
 * passes its tf never downloads it). The vendored runtime's engine is private to it: the backend it picks and the
 * flags it sets are never those of another tf.js on the page. */
export let tf = null;
let ownRuntime = false;

/** Backends tried in this order (each validated on the samples by the build); `load({backends})` narrows it. */
export const BACKENDS = ["wasm", "webgl", "cpu"];
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
 * compiles its shaders), and a backend that starts but cannot run the graph fails there, not here.
 * Where the files are (README.md): by default next to this file (model_files.js); `baseUrl` (a folder holding
 * model.json, its shards, metadata.json and tfjs/*.wasm as this package lays them out), `modelUrl` (model.json;
 * its shards beside it), `wasmPaths` (a folder or {file name: URL}, as tf.setWasmPaths takes), `weights` (every
 * shard's bytes, concatenated in model.json's order) override it. `timeoutMs`: fail after that long without progress
 * (STALL_TIMEOUT_MS); `onProgress({step, loaded, total})`: each chunk downloaded and each step done. */
export function load(options = {}) {
  if (!loading) {
    const watch = watchdog(options.timeoutMs || STALL_TIMEOUT_MS, options.onProgress);
    loading = loadOnFirstWorkingBackend(options, watch).finally(watch.stop);
    loading.catch(() => { loading = null; });  // a failed load may be retried
  }
  return loading;
}

/** Where each file is: `load()`'s options, else the literal URLs of model_files.js. */
function locate(options) {
  const page = typeof location === "undefined" ? undefined : location.href;
  const folder = (url) => new URL(String(url).replace(/\/?$/, "/"), page);
  const base = options.baseUrl ? folder(options.baseUrl) : null;
  const model = options.modelUrl ? new URL(options.modelUrl, page) : base ? new URL("model.json", base) : modelUrl;
  return {
    metadata: options.metadataUrl ? new URL(options.metadataUrl, page)
      : base ? new URL("metadata.json", base) : metadataUrl,
    model: model,
    shard: (name) => (options.modelUrl || base) ? new URL(name, model) : weightUrls[name],
    wasm: () => {
      if (options.wasmPaths) return options.wasmPaths;
      if (base) return new URL((metadata.runtime_dir || "tfjs") + "/", base).href;
      const map = Object.fromEntries(Object.entries(wasmUrls).map(([name, url]) => [name, url.href]));
      // tf.setWasmPaths wants the threaded binary too; never fetched: WASM_HAS_MULTITHREAD_SUPPORT is off
      map["tfjs-backend-wasm-threaded-simd.wasm"] = map["tfjs-backend-wasm-simd.wasm"];
      return map;
    },
  };
}

/** model.json and its weights as tf.js model artifacts (fetched once, whichever backend runs them). */
async function fetchArtifacts(options, watch) {
  const where = locate(options);
  const json = JSON.parse(new TextDecoder().decode(await download(where.model, "application/json", watch)));
  const packager = json.userDefinedMetadata && json.userDefinedMetadata.packager;
  if (!metadata) {
    if (packager) setMetadata(packager);
    else await loadMetadata(options);
  }
  const specs = [];
  const names = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    names.push(...group.paths);
  }
  let weightData = options.weights;
  if (!weightData) {
    const urls = names.map((name) => {
      const url = where.shard(name);
      if (!url) throw fileError(name + ": not listed in model_files.js (was model.json replaced?)");
      return url;
    });
    const shards = await Promise.all(urls.map((url) => download(url, "application/octet-stream", watch)));
    weightData = concat(shards);
  }
  return {
    modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy,
    convertedBy: json.convertedBy, weightSpecs: specs, weightData: weightData, signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata, modelInitializer: json.modelInitializer,
    initializerSignature: json.initializerSignature,
  };
}

function concat(buffers) {
  const out = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out.buffer;
}

/** `options.tf` (the app's tf.js), else the vendored runtime. */
async function useRuntime(options) {
  if (options.tf) {
    tf = options.tf;
    ownRuntime = false;
  } else if (!tf || !ownRuntime) {
    // The bundled runtime keeps its engine, backend, flags and kernels to itself (not on window): a tf.js the page
    // already runs is left as it is, only the bytes are twice.
    if (globalThis._tfengine) {
      console.info("this page already runs tf.js: load({tf}) would share it instead of loading a second one");
    }
    tf = await import("./tfjs/tf-runtime.js");
    ownRuntime = true;
  }
}

async function loadOnFirstWorkingBackend(options, watch) {
  // Each step ends its task (a macrotask yield): the runtime's start, the model's build and the warm-up run are
  // separate main-thread tasks, not one long one that blocks input (Lighthouse's TBT counts each task over 50 ms).
  const step = (what, promise) => watch.guard(promise).then(async (r) => {
    watch.progress(what);
    await nextTask();
    return r;
  });
  const [artifacts] = await step("files downloaded", Promise.all([fetchArtifacts(options, watch),
    useRuntime(options)]));  // a missing or broken file fails here, once
  if (!ownRuntime) {
    // The app's tf.js: its backend (and flags, wasm paths) stay as the app set them.
    await step("tf.js ready", tf.ready());
    model = await step("model built", tf.loadGraphModel({ load: async () => artifacts }));
    try {
      if (options.warmUp !== false) await step("warmed up", warmUp());
    } catch (e) {
      dispose();
      throw e;
    }
    backend = tf.getBackend();
    return { backend: backend, skipped: [] };
  }
  const validated = metadata.backends || BACKENDS;
  const order = options.backends ? options.backends.filter((b) => validated.includes(b)) : validated;
  if (!order.length) {
    throw new Error("none of the backends asked for (" + options.backends.join(", ") + ") was validated by the " +
      "build: " + validated.join(", "));
  }
  // No wasm threads: on a cross-origin-isolated host (COOP/COEP) tf.js would start pthread workers from blob:
  // URLs and wait for them forever; the bundle ships the single-threaded binaries only.
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  tf.setWasmPaths(locate(options).wasm());
  const failures = [];
  for (const name of order) {
    try {
      if (!(await step(name + " started", tf.setBackend(name)))) {
        failures.push(name + ": did not start");
        continue;
      }
      await step(name + " ready", tf.ready());
    } catch (e) {
      if (e && e.stalled) throw e;
      failures.push(name + ": did not start (" + message(e) + ")");
      continue;
    }
    try {
      model = await step("model built on " + name, tf.loadGraphModel({ load: async () => artifacts }));
      if (options.warmUp !== false) await step("warmed up on " + name, warmUp());
      backend = tf.getBackend();
      return { backend: backend, skipped: failures };
    } catch (e) {
      if (e && e.stalled) throw e;
      failures.push(name + ": " + message(e));
      if (model) model.dispose();
      model = null;
      console.warn("tf.js backend " + name + " cannot run this model: " + message(e));
    }
  }
  throw new Error("no tf.js backend could run the model (" + failures.join("; ") + ")");
}

function nextTask() {
  const scheduler = globalThis.scheduler;
  if (scheduler && typeof scheduler.yield === "function") return scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The whole body of `url`, read as it arrives (each chunk is progress for the watchdog and onProgress). */
async function download(url, expected, watch) {
  const response = await watch.guard(checkedFetch(url, undefined, expected));
  const name = fileName(url);
  const total = Number(response.headers.get("Content-Length")) || undefined;
  watch.progress(name, 0, total);
  if (!response.body || !response.body.getReader) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await watch.guard(reader.read());
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    watch.progress(name, loaded, total);
  }
  return new Uint8Array(concat(chunks));
}

async function warmUp() {
  const inputs = {};
  for (const spec of metadata.inputs) {
    inputs[spec.name] = { shape: spec.shape, data: new Float32Array(spec.shape.reduce((a, b) => a * b, 1)) };
  }
  await run(inputs);
}

/** {inputName: {shape, data}} -> {outputs: {outputName: {shape, data: Float32Array}}, ms}. Waits for load(). */
export async function predict(tensors) {
  await load();
  return run(tensors);
}

async function run(tensors) {
  const feed = {};
  const outputNodes = metadata.outputs.map((o) => o.node);
  try {
    for (const spec of metadata.inputs) {
      const given = tensors[spec.name];
      if (!given) throw new Error("missing input " + spec.name);
      feed[spec.node] = given instanceof tf.Tensor ? given : tf.tensor(asDtype(given.data, spec.dtype), given.shape,
        spec.dtype);
    }
    const t0 = performance.now();
    let results;
    try {
      results = model.execute(feed, outputNodes);
    } catch (e) {
      results = await model.executeAsync(feed, outputNodes);
    }
    if (!Array.isArray(results)) results = [results];
    const datas = await Promise.all(results.map((t) => t.data()));
    const ms = performance.now() - t0;
    const outputs = {};
    metadata.outputs.forEach((o, i) => {
      outputs[o.name] = { shape: results[i].shape, data: Float32Array.from(datas[i]) };
    });
    results.forEach((t) => t.dispose());
    return { outputs: outputs, ms: ms };
  } finally {
    for (const [name, t] of Object.entries(feed)) {
      const given = tensors[metadata.inputs.find((s) => s.node === name).name];
      if (t !== given) t.dispose();
    }
  }
}

/** Values as the input's dtype takes them: an integer input (int32: every integer type on TF.js, e.g. uint8 image
 * pixels a model normalises itself) gets the nearest integers (tf.js would truncate 254.9999 to 254). */
function asDtype(data, dtype) {
  if (dtype === "int32" && !(data instanceof Int32Array)) return Int32Array.from(data, Math.round);
  return data;
}

/** A File/Blob (EXIF orientation honoured), <img>, <video>, <canvas>, ImageBitmap (or OffscreenCanvas) through the model's preprocessing, then predict.
 *  The result also carries `input` (the tensor the model saw). */
export async function predictImage(source, options = {}) {
  await load();
  if (!metadata.image) throw new Error("this model does not take an image");
  const inputs = await imageToInput(source, metadata.image, options.canvas);
  const r = await run(inputs);
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

/** Free the model's weights (load() may be called again after). */
export function dispose() {
  if (model) model.dispose();
  model = null;
  loading = null;
  backend = null;
}
