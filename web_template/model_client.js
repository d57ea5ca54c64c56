/* The demo page's model (app.js): model.js run in a Worker (model_worker.js), so that the runtime's
 * evaluation, the backend's start, the model's build, the warm-up and every prediction stay off the page's main
 * thread. The same calls as model.js's (load, predict, predictImage, loadMetadata, metadata, backend); images are
 * decoded here (createImageBitmap: cheap) or sent as the file they are, and preprocessed in the worker.
 *
 * Each backend is tried in the worker first, then on the page when it cannot run there (or when the worker cannot
 * start, or the model's modules cannot load in it): `thread` and `skipped` say which, and why. */
import * as model from "./model.js";
import { BACKEND } from "./model_runtime.js";
import { decodeBitmap } from "./preprocess.js";
import { showPixels } from "./image_input.js";

export let metadata = null;
export let backend = null;
/** Where the model runs once loaded: "worker", or "page (<why not in a worker>)". */
export let thread = null;

let worker = null;  // null: not started; false: unusable (the page runs the model)
let workerRefused = null;  // why the model cannot run in a worker here
let nextId = 0;
const pending = new Map();
let loading = null;
let onPage = false;  // the loaded model is model.js's on this page

export async function loadMetadata() {
  metadata = await model.loadMetadata();
  return metadata;
}

function startWorker() {
  if (worker === null) {
    worker = false;
    if (typeof Worker === "undefined") {
      workerRefused = "no Worker in this browser";
      return false;
    }
    try {
      worker = new Worker(new URL("./model_worker.js", import.meta.url));  // classic: see model_worker.js
    } catch (e) {
      workerRefused = "the worker did not start: " + (e && e.message ? e.message : e);
      return false;
    }
    worker.onmessage = (event) => {
      const m = event.data;
      const call = pending.get(m.id);
      if (!call) return;
      if (m.progress) {
        if (call.onProgress) call.onProgress(m.progress);
        return;
      }
      pending.delete(m.id);
      if (m.refused !== undefined) {
        workerRefused = m.refused;
        call.reject(Object.assign(new Error(m.refused), { refused: true }));
      } else if (m.error !== undefined) {
        call.reject(Object.assign(new Error(m.error), { stalled: m.stalled }));
      } else {
        call.resolve(m.result);
      }
    };
    worker.onerror = (event) => {  // model_worker.js itself failed (not loadable): the page runs the model
      if (event.preventDefault) event.preventDefault();
      workerRefused = "model_worker.js did not load" + (event.message ? ": " + event.message : "");
      worker.terminate();
      worker = false;
      for (const call of pending.values()) call.reject(Object.assign(new Error(workerRefused), { refused: true }));
      pending.clear();
    };
  }
  return worker;
}

function call(op, fields, transfer = [], onProgress = null) {
  const w = startWorker();
  if (!w) return Promise.reject(Object.assign(new Error(workerRefused), { refused: true }));
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, onProgress });
    w.postMessage({ id, op, ...fields }, transfer);
  });
}

/** model.js's load(), each backend in the worker first, then on the page; resolves {backend, skipped}. Options:
 * {backends, warmUp, timeoutMs, onProgress} (functions stay on the page: progress is reported from the worker). */
export function load(options = {}) {
  if (!loading) {
    loading = loadSomewhere(options);
    loading.catch(() => { loading = null; });  // a failed load may be retried
  }
  return loading;
}

async function loadSomewhere(options) {
  const meta = await loadMetadata();
  const validated = meta.backends || model.BACKENDS;
  const order = options.backends ? options.backends.filter((b) => validated.includes(b)) : validated;
  const failures = [];
  for (const name of order.length ? order : options.backends) {  // none validated: model.js says so
    let inWorker = null;
    if (!workerRefused) {
      try {
        const plain = { warmUp: options.warmUp, timeoutMs: options.timeoutMs, backends: [name] };  // no functions
        const r = await call("load", { options: plain }, [], options.onProgress);
        onPage = false;
        thread = "worker";
        return finish(r, failures);
      } catch (e) {
        if (!e.refused && !perBackend(e)) throw e;  // a file, a stall: the same on the page
        inWorker = e.refused ? null : reason(e, name);
      }
    }
    try {
      const r = await model.load({ ...options, backends: [name] });
      onPage = true;
      thread = "page (" + (inWorker ? name + " cannot run in a Worker here: " + inWorker : workerRefused) + ")";
      return finish(r, failures);
    } catch (e) {
      if (!perBackend(e)) throw e;
      failures.push(name + ": " + (inWorker ? "in a Worker: " + inWorker + "; on the page: " : "") + reason(e, name));
    }
  }
  throw new Error("no " + BACKEND + " could run the model (" + failures.join("; ") + ")");
}

/** A backend's failure ("no tf.js backend could run the model (...)"), not a file's or a stall. */
function perBackend(e) {
  return !e.stalled && String(e.message).startsWith("no " + BACKEND + " could run");
}

/** Backend `name`'s own reason in model.js's "no <backend> could run the model (name: reason)". */
function reason(e, name) {
  const m = String(e.message);
  const head = "no " + BACKEND + " could run the model (" + name + ": ";
  return m.startsWith(head) && m.endsWith(")") ? m.slice(head.length, -1) : m;
}

function finish(r, failures) {
  backend = r.backend;
  return { backend: r.backend, skipped: [...failures, ...r.skipped] };
}

/** {inputName: {shape, data}} -> {outputs: {outputName: {shape, data: Float32Array}}, ms}. Waits for load(). */
export async function predict(inputs) {
  await load();
  if (onPage) return model.predict(inputs);
  return call("predict", { inputs });
}

/** A File/Blob, <img>, <video>, <canvas>, ImageBitmap through the model's preprocessing, then predict; draws the
 * model's pixels on `options.canvas`. The result also carries `input` (the tensor the model saw). */
export async function predictImage(source, options = {}) {
  await load();
  if (onPage) return model.predictImage(source, options);
  if (!metadata.image) throw new Error("this model does not take an image");
  const isBlob = typeof Blob !== "undefined" && source instanceof Blob;
  const payload = isBlob ? source : await decodeBitmap(source);  // no resampling here: the worker does it
  const image = JSON.parse(JSON.stringify(metadata.image));
  const r = await call("predictImage", { source: payload, image }, isBlob ? [] : [payload]);
  if (options.canvas) showPixels(options.canvas, r.pixels, metadata.image);
  delete r.pixels;
  return r;
}
