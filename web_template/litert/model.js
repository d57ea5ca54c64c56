/* The model as an ES module, run by LiteRT.js (the browser runtime of the .tflite the Android module ships):
 * the same API as the TF.js bundles' model.js, so an app switches runtime without code changes.
 *
 *   import * as model from "./model.js";          // or, after `npm install ./web`: from "<package name>"
 *   await model.load();                           // -> {backend, skipped}
 *   const r = await model.predict({image: {shape: [1, 224, 224, 3], data: float32Array}});
 *   const r2 = await model.predictImage(imgOrVideoOrCanvasOrImageBitmap);
 *   model.topK(r2.outputs[model.metadata.primary_output].data, 5)  // [{index, label, score}]
 *
 * Labels, inputs, outputs and preprocessing come from metadata.json. Every file is found through model_files.js
 * (literal URLs next to this file, which bundlers copy into an app's build), or where
 * `load({baseUrl, modelUrl, wasmPaths})` says (README.md). Types: model.d.ts.
 */
import { checkedFetch, fileError, fileName, message, watchdog } from "./loading.js";
import { imageOutputsOf } from "./image_output.js";
import { imageToInput } from "./image_input.js";
import { metadataUrl, modelUrl, wasmUrls } from "./model_files.js";

/** The LiteRT.js runtime module (litert/litert-runtime.js), once load() started. */
export let litert = null;
/** No tf.js in this bundle (kept so code written for the TF.js bundle's module reads the same names). */
export const tf = null;

/** Accelerators tried in this order (each validated on the samples by the build); `load({backends})` narrows it. */
export const BACKENDS = ["wasm", "webgpu"];
/** load() fails when nothing progresses (no byte arrives, no step finishes) for this long. */
export const STALL_TIMEOUT_MS = 30000;
export const LOAD_TIMEOUT_MS = STALL_TIMEOUT_MS;
// LiteRT.js's single-thread wasm: the relaxed-SIMD build where the browser has it, else the compat build.
const WASM = { fast: ["litert_wasm_internal.js", "litert_wasm_internal.wasm"],
  compat: ["litert_wasm_compat_internal.js", "litert_wasm_compat_internal.wasm"] };

export let metadata = null;
export let labels = [];
export let backend = null;

let model = null;
let loading = null;

/** metadata.json of this model (fetched once): next to this file, or `{baseUrl}` / `{metadataUrl}`. */
export async function loadMetadata(options = {}) {
  if (!metadata) {
    const response = await checkedFetch(locate(options).metadata, undefined, "application/json");
    setMetadata(await response.json());
  }
  return metadata;
}

function setMetadata(m) {
  metadata = m;
  labels = metadata.labels || [];
}

/** Load the model on the first accelerator that compiles AND runs it (a warm-up run on zeros); resolves
 * {backend, skipped}. Safe to call twice. Options as the TF.js bundle's load(): `baseUrl`, `modelUrl`, `metadataUrl`,
 * `wasmPaths` (a folder, or {file name: URL}), `backends`, `timeoutMs`, `onProgress`, `warmUp`. */
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
  return {
    metadata: options.metadataUrl ? new URL(options.metadataUrl, page)
      : base ? new URL("metadata.json", base) : metadataUrl,
    model: options.modelUrl ? new URL(options.modelUrl, page)
      : base ? new URL((metadata && metadata.model_url) || "model.tflite", base) : modelUrl,
    wasm: (name) => {
      const paths = options.wasmPaths;
      if (paths && typeof paths === "object") return new URL(paths[name], page);
      if (paths) return new URL(name, folder(paths));
      if (base) return new URL(((metadata && metadata.runtime_dir) || "litert") + "/" + name, base);
      return wasmUrls[name];
    },
  };
}

// LiteRT's wasm prints its log (INFO/WARNING lines, on stderr) through console.error: routed by level instead.
function wasmLog(line) {
  const text = String(line);
  if (/^(E|ERROR|F|FATAL)\b/.test(text)) console.error(text);
  else if (/^(W|WARNING)\b/.test(text)) console.warn(text);
  else console.debug(text);
}

/** The LiteRT.js runtime, loaded once per page (its wasm downloaded here: progress, clear errors). */
async function useRuntime(options, watch) {
  if (!litert) litert = await import("./litert/litert-runtime.js");
  const loaded = litert.getGlobalLiteRtPromise();
  if (loaded) return loaded;  // an earlier load() (or the app's own LiteRT.js) loaded it
  const [js, wasm] = (await litert.supportsFeature("relaxedSimd")) ? WASM.fast : WASM.compat;
  const where = locate(options);
  const binary = await download(where.wasm(wasm), "application/wasm", watch);
  // Read by the Emscripten module factory that loadLiteRt starts (and cleared by it): the binary fetched above,
  // and where its log goes.
  globalThis.Module = { wasmBinary: binary.buffer, print: wasmLog, printErr: wasmLog };
  return litert.loadLiteRt(where.wasm(js).href);
}

async function webgpuAdapter() {
  try {
    return !!(typeof navigator !== "undefined" && navigator.gpu && await navigator.gpu.requestAdapter());
  } catch (e) {
    return false;
  }
}

async function loadOnFirstWorkingBackend(options, watch) {
  const step = (what, promise) => watch.guard(promise).then((r) => { watch.progress(what); return r; });
  if (!metadata) await step("metadata", loadMetadata(options));
  const bytes = await download(locate(options).model, "application/octet-stream", watch);
  await step("LiteRT.js ready", useRuntime(options, watch));
  const validated = metadata.backends || BACKENDS;
  const order = options.backends ? options.backends.filter((b) => validated.includes(b)) : validated;
  if (!order.length) {
    throw new Error("none of the backends asked for (" + options.backends.join(", ") + ") was validated by the " +
      "build: " + validated.join(", "));
  }
  const failures = [];
  for (const name of order) {
    if (name === "webgpu" && !(await webgpuAdapter())) {
      failures.push(name + ": no WebGPU adapter in this browser");
      continue;
    }
    try {
      // a copy each time: the runtime may take the buffer over
      model = await step("model compiled on " + name, litert.loadAndCompile(bytes.slice(), { accelerator: name }));
      if (options.warmUp !== false) await step("warmed up on " + name, warmUp());
      backend = name;
      return { backend: backend, skipped: failures };
    } catch (e) {
      if (e && e.stalled) throw e;
      failures.push(name + ": " + message(e));
      if (model) model.delete();
      model = null;
      console.warn("LiteRT.js accelerator " + name + " cannot run this model: " + message(e));
    }
  }
  throw new Error("no LiteRT.js accelerator could run the model (" + failures.join("; ") + ")");
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
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function warmUp() {
  const inputs = {};
  for (const spec of metadata.inputs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    inputs[spec.name] = { shape: spec.shape, data: spec.dtype === "int32" ? new Int32Array(n) : new Float32Array(n) };
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
  let results = null;
  try {
    for (const spec of metadata.inputs) {
      const given = tensors[spec.name];
      if (!given) throw new Error("missing input " + spec.name);
      const Type = spec.dtype === "int32" ? Int32Array : Float32Array;
      const data = given.data instanceof Type ? given.data : Type.from(given.data);
      const shape = given.shape || spec.shape;
      if (shape.join(",") !== spec.shape.join(",")) {
        throw new Error("input " + spec.name + " has shape [" + shape + "], the model takes [" + spec.shape + "]");
      }
      feed[spec.tensor] = new litert.Tensor(data, spec.shape);
    }
    const t0 = performance.now();
    results = await model.run(feed);
    const outputs = {};
    for (const o of metadata.outputs) {
      const t = results[o.tensor];
      outputs[o.name] = { shape: Array.from(t.type.layout.dimensions), data: Float32Array.from(await t.data()) };
    }
    const ms = performance.now() - t0;
    return { outputs: outputs, ms: ms };
  } finally {
    for (const t of Object.values(feed)) t.delete();
    if (results) for (const t of Object.values(results)) t.delete();
  }
}

/** A File/Blob (EXIF orientation honoured), <img>, <video>, <canvas>, ImageBitmap (or OffscreenCanvas) through the
 *  model's preprocessing, then predict. The result also carries `input` (the tensor the model saw). */
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

/** Free the compiled model (load() may be called again after). */
export function dispose() {
  if (model) model.delete();
  model = null;
  loading = null;
  backend = null;
}
