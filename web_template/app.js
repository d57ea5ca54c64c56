/* packager web demo: one user of the model's ES module (model.js). Runs the model on images (file, drop, camera,
 * bundled samples) or on bundled sample tensors. Everything from the model's author (labels, names) is shown with
 * textContent, never parsed as HTML.
 *
 * window.packager is the page's own inference path, also used by packager's browser validation:
 *   ready            Promise resolved with the backend name once the model is loaded (rejected on failure)
 *   predict(inputs)  {name: {shape, data: Float32Array}} -> {outputs: {name: {shape, data}}, ms}
 *   predictB64(...)  the same with float32 data as base64 strings (for drivers outside the page)
 *   predictImage(el) an <img>/<video>/<canvas>/ImageBitmap through the spec's preprocessing -> same as predict
 *   thread           where the model runs once loaded: "worker", or "page (why not in a worker)"
 * ?backend=NAME loads on that backend only (the build validates each backend that way).
 * The model runs in a Worker (model_client.js -> model_worker.js -> model.js): the runtime's evaluation, the
 * backend's start, the model's build and every run stay off this page's main thread.
 */
import * as model from "./model_client.js";
import { showResult, showError, clearResult } from "./results.js";
import { wireImageInputs } from "./inputs.js";

const page = JSON.parse(document.getElementById("packager-page").textContent);
const $ = (id) => document.getElementById(id);
const here = (path) => new URL(path, location.href).href;

let ready;
let resolveReady;
let rejectReady;

const api = {
  config: null,
  ready: null,
  backend: null,
  skippedBackends: [],
  thread: null,
  error: null,
  lastResult: null,
  serviceWorker: null,
  predict: (inputs) => model.predict(inputs),
  predictB64: predictB64,
  predictImage: (source) => model.predictImage(source, { canvas: $("preview") }),
  showResult: (r) => show(r),
};
window.packager = api;

// A new `ready` for each attempt to load the model (the first, and each Retry).
function newReady() {
  ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  ready.catch(() => {});  // failures are shown on the page; no unhandled-rejection noise
  api.ready = ready;
}
newReady();

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  lastAnnounced = text;
  el.className = "status" + (kind ? " " + kind : "");
}

let lastAnnounced = null;  // the status last said, so that live mode speaks only when the top label changes

// The result in view and announced (the status is a live region).
function show(r, live) {
  api.lastResult = r;
  const top = showResult(r, model.metadata, model.backend);
  const text = !top ? "Done: outputs shown below." : live ? "Live: " + top.label : "Result: " + top.label + ", " + top.shown;
  if (!live || text !== lastAnnounced) setStatus(text, "ok");
  if (!live) $("result-section").scrollIntoView({ block: "nearest" });
}

async function load() {
  const params = new URLSearchParams(location.search);
  const wanted = params.get("backend");
  const options = wanted ? { backends: [wanted] } : {};
  if (params.get("warmup") === "0") options.warmUp = false;  // ?warmup=0: no warm-up run (the build's fallback checks)
  const bar = $("load-progress");
  bar.style.visibility = "visible";
  $("retry").hidden = true;
  bar.removeAttribute("value");  // indeterminate until a download says its size
  options.onProgress = (p) => {
    if (p.total) {
      bar.max = p.total;
      bar.value = p.loaded;
    }
  };
  try {
    const { backend, skipped } = await model.load(options);
    api.backend = backend;
    api.skippedBackends = skipped;
    api.thread = model.thread;
    $("backend").textContent = backend;
    $("backend-choice").value = backend;
    api.error = null;
    bar.style.visibility = "hidden";  // its line keeps its height: nothing below shifts
    setStatus("Model loaded (" + backend + " backend). Pick an input.", "ok");
    resolveReady(backend);
  } catch (e) {
    const message = "The model failed to load: " + (e && e.message ? e.message : String(e));
    api.error = message;
    $("backend").textContent = "none";
    setStatus(message, "error");
    bar.style.visibility = "hidden";
    $("retry").hidden = false;
    rejectReady(new Error(message));
  }
}

function retry() {
  newReady();
  setStatus("Loading the model\u2026", "");
  load();
}

// ---- drivers outside the page (packager's validation) pass float32 data as base64 ----------------

function b64ToFloat32(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function float32ToB64(arr) {
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

async function predictB64(inputs) {
  const decoded = {};
  for (const [name, v] of Object.entries(inputs)) decoded[name] = { shape: v.shape, data: b64ToFloat32(v.b64) };
  const r = await model.predict(decoded);
  const outputs = {};
  for (const [name, v] of Object.entries(r.outputs)) outputs[name] = { shape: v.shape, b64: float32ToB64(v.data) };
  return { outputs: outputs, ms: r.ms };
}

// ---- running a task from the page ---------------------------------------------------------------

async function run(task, options = {}) {
  try {
    await ready;
    if (!options.live) setStatus("Running\u2026", "");
    const r = await task();
    if (options.live && options.stillLive && !options.stillLive()) return;  // live mode ended meanwhile
    show(r, options.live);
  } catch (e) {
    clearResult();
    showError();
    setStatus("Inference failed: " + (e && e.message ? e.message : String(e)), "error");
  }
}

function selectSample(button) {
  document.querySelectorAll("#sample-strip button").forEach((b) => b.setAttribute("aria-pressed", "false"));
  button.setAttribute("aria-pressed", "true");
}

/** The sample buttons are in the page's HTML (one per page.samples entry, in order): each gets its action. */
function wireSampleStrip() {
  const strip = $("sample-strip");
  if (!strip) return;  // built with --no-bundled-samples: no sample strip
  const buttons = strip.querySelectorAll("button");
  page.samples.forEach((sample, i) => {
    const button = buttons[i];
    if (sample.image) {
      const img = button.querySelector("img");
      button.addEventListener("click", () => { selectSample(button); run(() => api.predictImage(img)); });
    } else {
      button.addEventListener("click", () => {
        selectSample(button);
        run(async () => {
          const all = await (await fetch(here(page.samples_url))).json();
          const inputs = {};
          for (const [name, v] of Object.entries(all[i])) inputs[name] = { shape: v.shape, data: b64ToFloat32(v.b64) };
          return model.predict(inputs);
        });
      });
    }
  });
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  let controlled = !!navigator.serviceWorker.controller;
  api.serviceWorker = navigator.serviceWorker.register(here("sw.js"))
    .then((reg) => {
      // A new deployment: its service worker replaced the one controlling this page (the first one taking control
      // is not an update); offer to reload, as the page still shows the old files.
      navigator.serviceWorker.addEventListener("controllerchange", () => {
        if (controlled) $("update").hidden = false;
        controlled = true;
      });
      return navigator.serviceWorker.ready.then(() => reg);
    })
    .then((reg) => (reg.active ? reg.active.state : "none"))
    .catch((e) => {
      console.warn("service worker not registered (offline use unavailable): " + e);
      return "failed";
    });
  $("update-reload").addEventListener("click", () => location.reload());
}

// Files dropped anywhere but the drop zone must not navigate away from the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

const metadata = await model.loadMetadata().catch((e) => {
  api.error = "The model's metadata.json did not load: " + e.message;
  setStatus(api.error, "error");
  rejectReady(new Error(api.error));
  throw e;
});
api.config = { ...metadata, ...page };
if (metadata.image) wireImageInputs({ run: run, predictImage: api.predictImage, setStatus: setStatus });
wireSampleStrip();
registerServiceWorker();
wireBackendChoice(metadata);
$("retry").addEventListener("click", retry);
load();

// A choice among the backends the build validated (the page picks the first that runs; this pins one).
function wireBackendChoice(meta) {
  const select = $("backend-choice");
  const wanted = new URLSearchParams(location.search).get("backend");
  for (const name of meta.backends) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    select.appendChild(option);
  }
  select.value = wanted && meta.backends.includes(wanted) ? wanted : meta.backends[0];
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("backend", select.value);
    location.assign(url.href);
  });
}
