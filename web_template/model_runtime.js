/* model.js's runtime adapter on TF.js: fetches model.json and its shards, starts a tf.js backend, builds the
 * GraphModel and runs it. model.js (the same file on every web runtime) holds the API; a LiteRT.js bundle ships its
 * own model_runtime.js with the same exports. */
import { concat, fileError } from "./loading.js";
import { wasmUrls, weightUrls } from "./model_files.js";

/** The tf.js the model runs on, once load() started: the app's own (`load({tf})`: its backend and flags are left
 * as the app set them), else the vendored runtime (tfjs/tf-runtime.js, imported by the first load(): an app that
 * passes its tf never downloads it). The vendored runtime's engine is private to it: the backend it picks and the
 * flags it sets are never those of another tf.js on the page. */
export let tf = null;
/** No LiteRT.js in this bundle. */
export const litert = null;
let ownRuntime = false;

export const BACKENDS = ["wasm", "webgl", "cpu"];
/** What a backend is called in messages ("no tf.js backend could run the model"). */
export const BACKEND = "tf.js backend";
export const BUILD_STEP = "model built";
/** The model's file in a `baseUrl` folder (before metadata.json says). */
export const MODEL_FILE = "model.json";

/** model.json and its weights (fetched once, whichever backend runs them) and the runtime: tf.js model artifacts. */
export async function prepare(io) {
  const [artifacts] = await Promise.all([fetchArtifacts(io), useRuntime(io.options)]);
  if (ownRuntime) {
    // No wasm threads: on a cross-origin-isolated host (COOP/COEP) tf.js would start pthread workers from blob:
    // URLs and wait for them forever; the bundle ships the single-threaded binaries only.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    tf.setWasmPaths(wasmPaths(io));
  }
  return artifacts;
}

/** The wasm binaries, as tf.setWasmPaths takes them: `load({wasmPaths})`, `{baseUrl}`'s tfjs/, else model_files.js. */
function wasmPaths(io) {
  const options = io.options;
  if (options.wasmPaths) return options.wasmPaths;
  const base = io.locate().base;
  if (base) return new URL((io.metadata().runtime_dir || "tfjs") + "/", base).href;
  const map = Object.fromEntries(Object.entries(wasmUrls).map(([name, url]) => [name, url.href]));
  // tf.setWasmPaths wants the threaded binary too; never fetched: WASM_HAS_MULTITHREAD_SUPPORT is off
  map["tfjs-backend-wasm-threaded-simd.wasm"] = map["tfjs-backend-wasm-simd.wasm"];
  return map;
}

async function fetchArtifacts(io) {
  const options = io.options;
  const where = io.locate();
  const json = JSON.parse(new TextDecoder().decode(await io.download(where.model, "application/json")));
  const packager = json.userDefinedMetadata && json.userDefinedMetadata.packager;
  if (!io.metadata()) {
    if (packager) io.setMetadata(packager);
    else await io.loadMetadata();
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
      const url = (options.modelUrl || where.base) ? new URL(name, where.model) : weightUrls[name];
      if (!url) throw fileError(name + ": not listed in model_files.js (was model.json replaced?)");
      return url;
    });
    const shards = await Promise.all(urls.map((url) => io.download(url, "application/octet-stream")));
    weightData = concat(shards);
  }
  return {
    modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy,
    convertedBy: json.convertedBy, weightSpecs: specs, weightData: weightData, signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata, modelInitializer: json.modelInitializer,
    initializerSignature: json.initializerSignature,
  };
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

/** false: the app's own tf.js runs the model on the backend the app chose (model.js tries none). */
export function ownsBackend() {
  return ownRuntime;
}

/** Start backend `name` (null: the app's tf.js as it is); a reason when it refuses, else null. */
export async function start(name, step) {
  if (name === null) {
    await step("tf.js ready", tf.ready());
    return null;
  }
  if (!(await step(name + " started", tf.setBackend(name)))) return "did not start";
  await step(name + " ready", tf.ready());
  return null;
}

export function build(artifacts) {
  return tf.loadGraphModel({ load: async () => artifacts });
}

export function backendName() {
  return tf.getBackend();
}

export function release(model) {
  model.dispose();
}

/** {inputName: {shape, data}} -> {outputs: {outputName: {shape, data: Float32Array}}, ms}. */
export async function run(model, metadata, tensors) {
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
