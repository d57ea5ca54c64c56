/* model.js's runtime adapter on LiteRT.js (the browser runtime of the .tflite the Android module ships): fetches
 * model.tflite and LiteRT.js's wasm, compiles the model on an accelerator and runs it. model.js is the TF.js
 * bundle's, unchanged (the same API and types: an app switches runtime without code changes). */
import { wasmUrls } from "./model_files.js";

/** The LiteRT.js runtime module (litert/litert-runtime.js), once load() started. */
export let litert = null;
/** No tf.js in this bundle (`load({tf})` is ignored). */
export const tf = null;

export const BACKENDS = ["wasm", "webgpu"];
/** What a backend is called in messages ("no LiteRT.js accelerator could run the model"). */
export const BACKEND = "LiteRT.js accelerator";
export const BUILD_STEP = "model compiled";
/** The model's file in a `baseUrl` folder (before metadata.json says). */
export const MODEL_FILE = "model.tflite";
// LiteRT.js's single-thread wasm: the relaxed-SIMD build where the browser has it, else the compat build.
const WASM = { fast: ["litert_wasm_internal.js", "litert_wasm_internal.wasm"],
  compat: ["litert_wasm_compat_internal.js", "litert_wasm_compat_internal.wasm"] };

/** metadata.json, model.tflite's bytes (`load({weights})`: those, no download) and the runtime. */
export async function prepare(io) {
  if (!io.metadata()) await io.step("metadata", io.loadMetadata());
  const bytes = io.options.weights ? new Uint8Array(io.options.weights.slice(0))
    : await io.download(io.locate().model, "application/octet-stream");
  await io.step("LiteRT.js ready", useRuntime(io));
  return bytes;
}

/** LiteRT.js's wasm file `name`: `load({wasmPaths})` (a folder, or {file name: URL}), `{baseUrl}`'s litert/, else
 * model_files.js. */
function wasmUrl(io, name) {
  const where = io.locate();
  const paths = io.options.wasmPaths;
  if (paths && typeof paths === "object") return new URL(paths[name], where.page);
  if (paths) return new URL(name, where.folder(paths));
  if (where.base) return new URL(((io.metadata() && io.metadata().runtime_dir) || "litert") + "/" + name, where.base);
  return wasmUrls[name];
}

// LiteRT's wasm prints its log (INFO/WARNING lines, on stderr) through console.error: routed by level instead.
function wasmLog(line) {
  const text = String(line);
  if (/^(E|ERROR|F|FATAL)\b/.test(text)) console.error(text);
  else if (/^(W|WARNING)\b/.test(text)) console.warn(text);
  else console.debug(text);
}

/** The LiteRT.js runtime, loaded once per page (its wasm downloaded here: progress, clear errors). */
async function useRuntime(io) {
  if (!litert) litert = await import("./litert/litert-runtime.js");
  const loaded = litert.getGlobalLiteRtPromise();
  if (loaded) return loaded;  // an earlier load() (or the app's own LiteRT.js) loaded it
  const [js, wasm] = (await litert.supportsFeature("relaxedSimd")) ? WASM.fast : WASM.compat;
  const binary = await io.download(wasmUrl(io, wasm), "application/wasm");
  // Read by the Emscripten module factory that loadLiteRt starts (and cleared by it): the binary fetched above,
  // and where its log goes.
  globalThis.Module = { wasmBinary: binary.buffer, print: wasmLog, printErr: wasmLog };
  return litert.loadLiteRt(wasmUrl(io, js).href);
}

/** Always true: the bundle's own LiteRT.js picks the accelerator. */
export function ownsBackend() {
  return true;
}

/** A reason when accelerator `name` cannot start here, else null. */
export async function start(name) {
  if (name === "webgpu" && !(await webgpuAdapter())) return "no WebGPU adapter in this browser";
  return null;
}

async function webgpuAdapter() {
  try {
    return !!(typeof navigator !== "undefined" && navigator.gpu && await navigator.gpu.requestAdapter());
  } catch (e) {
    return false;
  }
}

export function build(bytes, name) {
  // a copy each time: the runtime may take the buffer over
  return litert.loadAndCompile(bytes.slice(), { accelerator: name });
}

export function backendName(name) {
  return name;
}

export function release(model) {
  model.delete();
}

/** {inputName: {shape, data}} -> {outputs: {outputName: {shape, data: Float32Array}}, ms}. */
export async function run(model, metadata, tensors) {
  const feed = {};
  let results = null;
  try {
    for (const spec of metadata.inputs) {
      const given = tensors[spec.name];
      if (!given) throw new Error("missing input " + spec.name);
      const Type = spec.dtype === "int32" ? Int32Array : Float32Array;
      const data = given.data instanceof Type ? given.data
        : spec.dtype === "int32" ? Int32Array.from(given.data, Math.round) : Float32Array.from(given.data);
      const shape = given.shape || spec.shape;
      if (shape.join(",") !== spec.shape.join(",")) {
        throw new Error("input " + spec.name + " has shape [" + shape + "], the model takes [" + spec.shape + "]");
      }
      feed[spec.node] = new litert.Tensor(data, spec.shape);
    }
    const t0 = performance.now();
    results = await model.run(feed);
    const outputs = {};
    for (const o of metadata.outputs) {
      const t = results[o.node];
      outputs[o.name] = { shape: Array.from(t.type.layout.dimensions), data: Float32Array.from(await t.data()) };
    }
    const ms = performance.now() - t0;
    return { outputs: outputs, ms: ms };
  } finally {
    for (const t of Object.values(feed)) t.delete();
    if (results) for (const t of Object.values(results)) t.delete();
  }
}
