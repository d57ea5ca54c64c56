/* packager web demo: runs a TF.js graph model on images (file, drop, camera, bundled samples) or on
 * bundled sample tensors. Everything that comes from the model's author (labels, names) is shown
 * with textContent, never parsed as HTML.
 *
 * window.packager is the page's own inference path, also used by packager's browser validation:
 *   ready            Promise resolved with the backend name once the model is loaded (rejected on failure)
 *   predict(inputs)  {name: {shape, data: Float32Array}} -> {outputs: {name: {shape, data}}, ms}
 *   predictB64(...)  the same with float32 data as base64 strings (for drivers outside the page)
 *   predictImage(x) a File/Blob, <img>, <video>, <canvas> or ImageBitmap through the spec's preprocessing
 *                    (preprocess.js) -> same as predict
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("packager-config").textContent);
  const $ = (id) => document.getElementById(id);
  // Every URL of the bundle resolves against this page, so the bundle works under any sub-path
  // (GitHub Pages /repo/, an app's /demo/): tf.js resolves weight files against the model URL it is given.
  const here = (path) => new URL(path, location.href).href;
  const state = { model: null, backend: null };

  let resolveReady;
  let rejectReady;
  const ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  ready.catch(() => {});  // failures are shown on the page; no unhandled-rejection noise

  const api = {
    config: config,
    ready: ready,
    backend: null,
    error: null,
    lastResult: null,
    serviceWorker: null,
    predict: predict,
    predictB64: predictB64,
    predictImage: predictImage,
    showResult: showResult,
  };
  window.packager = api;

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.className = "status" + (kind ? " " + kind : "");
  }

  // ---- backend and model ----------------------------------------------------------------------

  // The first backend (in config.backends order, or ?backend=NAME) that starts AND runs the model wins: a backend
  // whose kernels refuse this graph (e.g. wasm's fused ops with a rank-3 bias) is skipped for the next one.
  async function loadOnFirstWorkingBackend() {
    const wanted = new URLSearchParams(location.search).get("backend");
    const order = wanted ? [wanted] : config.backends;
    // No wasm threads: on a cross-origin-isolated host (COOP/COEP headers) tf.js would start pthread workers
    // from blob: URLs and wait for them forever; the bundle ships the single-threaded binaries only.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    if (tf.wasm && tf.wasm.setWasmPaths) {
      tf.wasm.setWasmPaths(here(config.runtime_dir + "/"));
    }
    const failures = [];
    for (const name of order) {
      try {
        if (!(await tf.setBackend(name))) {
          failures.push(name + ": did not start");
          continue;
        }
        await tf.ready();
      } catch (e) {
        failures.push(name + ": did not start (" + (e && e.message ? e.message : e) + ")");
        continue;
      }
      state.backend = tf.getBackend();
      $("backend").textContent = state.backend;
      try {
        state.model = await tf.loadGraphModel(here(config.model_url), { fetchFunc: checkedFetch });
        await warmUp();
        api.backend = state.backend;
        api.skippedBackends = failures;
        return;
      } catch (e) {
        if (e && e.httpError) throw e;  // a missing or broken file fails on every backend
        failures.push(name + ": " + (e && e.message ? e.message : e));
        if (state.model) state.model.dispose();
        state.model = null;
        console.warn("tf.js backend " + name + " cannot run this model: " + e);
      }
    }
    state.backend = null;
    throw new Error("no tf.js backend could run the model (" + failures.join("; ") + ")");
  }

  async function load() {
    try {
      if (typeof tf === "undefined") {
        throw new Error("the tf.js runtime (" + config.runtime_dir + "/tf.min.js) did not load");
      }
      await withTimeout(loadOnFirstWorkingBackend(), LOAD_TIMEOUT_MS, "loading the model took over " +
        LOAD_TIMEOUT_MS / 1000 + " s (backend " + (state.backend || "not started") + ")");
      setStatus("Model loaded (" + state.backend + " backend). Pick an input.", "ok");
      resolveReady(state.backend);
    } catch (e) {
      const message = "The model failed to load: " + (e && e.message ? e.message : String(e));
      api.error = message;
      $("backend").textContent = state.backend || "none";
      setStatus(message, "error");
      rejectReady(new Error(message));
    }
  }

  const LOAD_TIMEOUT_MS = 60000;

  function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  // tf.js would read an HTTP error page as weights; fail with the URL and status instead.
  async function checkedFetch(url, init) {
    const response = await fetch(url, init);
    if (!response.ok) {
      const error = new Error(String(url).split("/").pop() + ": HTTP " + response.status + " " + response.statusText);
      error.httpError = true;
      throw error;
    }
    return response;
  }

  async function warmUp() {
    const inputs = {};
    for (const spec of config.inputs) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      inputs[spec.name] = { shape: spec.shape, data: new Float32Array(size) };
    }
    await predict(inputs);
  }

  // ---- inference --------------------------------------------------------------------------------

  async function predict(inputs) {
    if (!state.model) {
      throw new Error(api.error || "the model is not loaded yet");
    }
    const feed = {};
    const outputNodes = config.outputs.map((o) => o.node);
    try {
      for (const spec of config.inputs) {
        const given = inputs[spec.name];
        if (!given) {
          throw new Error("missing input " + spec.name);
        }
        feed[spec.node] = tf.tensor(given.data, given.shape, spec.dtype);
      }
      const t0 = performance.now();
      let results;
      try {
        results = state.model.execute(feed, outputNodes);
      } catch (e) {
        results = await state.model.executeAsync(feed, outputNodes);
      }
      if (!Array.isArray(results)) {
        results = [results];
      }
      const datas = await Promise.all(results.map((t) => t.data()));
      const ms = performance.now() - t0;
      const outputs = {};
      config.outputs.forEach((o, i) => {
        outputs[o.name] = { shape: results[i].shape, data: Float32Array.from(datas[i]) };
      });
      results.forEach((t) => t.dispose());
      return { outputs: outputs, ms: ms };
    } finally {
      Object.values(feed).forEach((t) => t.dispose());
    }
  }

  function b64ToFloat32(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  function float32ToB64(arr) {
    const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin);
  }

  async function predictB64(inputs) {
    const decoded = {};
    for (const [name, v] of Object.entries(inputs)) {
      decoded[name] = { shape: v.shape, data: b64ToFloat32(v.b64) };
    }
    const r = await predict(decoded);
    const outputs = {};
    for (const [name, v] of Object.entries(r.outputs)) {
      outputs[name] = { shape: v.shape, b64: float32ToB64(v.data) };
    }
    return { outputs: outputs, ms: r.ms };
  }

  // The spec's preprocessing (packager/preprocessing.py, docs/preprocessing.md) lives in the ES module
  // preprocess.js: EXIF orientation, alpha on the background, crop policy, antialiased bilinear resize, colour
  // mode, mean/std. The preview canvas shows the model's pixels.
  let preprocessModule = null;
  function preprocessor() {
    if (!preprocessModule) preprocessModule = import(here("preprocess.js"));
    return preprocessModule;
  }

  function showPreview(pixels, im) {
    const canvas = $("preview");
    if (!canvas) return;
    const ctx = canvas.getContext("2d");
    const rgba = new ImageData(im.width, im.height);
    const c = im.channels;
    for (let i = 0, q = 0; i < im.width * im.height; i++, q += c) {
      const v = c === 1 ? [pixels[q], pixels[q], pixels[q]]
        : im.color === "bgr" ? [pixels[q + 2], pixels[q + 1], pixels[q]] : [pixels[q], pixels[q + 1], pixels[q + 2]];
      rgba.data.set([v[0], v[1], v[2], 255], i * 4);
    }
    ctx.putImageData(rgba, 0, 0);
  }

  // source: a File/Blob (EXIF orientation read from its bytes), an <img>, <video>, <canvas> or ImageBitmap.
  async function imageToInput(source) {
    const im = config.image;
    const tensor = await (await preprocessor()).imageToInput(source, im);
    showPreview(tensor.pixels, im);
    const inputs = {};
    inputs[im.input] = { shape: tensor.shape, data: tensor.data };
    return inputs;
  }

  async function predictImage(source) {
    if (!config.image) {
      throw new Error("this model does not take an image");
    }
    await ready;
    const inputs = await imageToInput(source);
    const r = await predict(inputs);
    r.input = inputs[config.image.input];
    return r;
  }

  // ---- results ---------------------------------------------------------------------------------

  function showResult(r) {
    api.lastResult = r;
    $("latency").textContent = "Inference: " + r.ms.toFixed(1) + " ms (" + state.backend + ")";
    const list = $("results");
    const raw = $("raw-outputs");
    list.replaceChildren();
    raw.replaceChildren();
    const labelled = config.label_output && r.outputs[config.label_output];
    if (labelled) {
      const scores = r.outputs[config.label_output].data;
      const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, config.top_k);
      const maxAbs = Math.max(1e-12, ...Array.from(scores, Math.abs));
      const asProbability = Array.from(scores).every((s) => s >= 0 && s <= 1);
      for (const i of order) {
        const li = document.createElement("li");
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = config.labels[i];
        const track = document.createElement("span");
        track.className = "track";
        const fill = document.createElement("span");
        fill.className = "fill";
        fill.style.display = "block";
        const frac = asProbability ? scores[i] : Math.abs(scores[i]) / maxAbs;
        fill.style.width = (100 * Math.max(0, Math.min(1, frac))).toFixed(1) + "%";
        track.appendChild(fill);
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = scores[i].toFixed(4);
        li.append(label, track, score);
        list.appendChild(li);
      }
    }
    for (const o of config.outputs) {
      if (labelled && o.name === config.label_output) continue;
      const v = r.outputs[o.name];
      const h = document.createElement("h2");
      h.textContent = o.name + " [" + v.shape.join(", ") + "]";
      const pre = document.createElement("pre");
      const shown = Array.from(v.data.slice(0, 64), (x) => x.toPrecision(5));
      pre.textContent = shown.join(", ") + (v.data.length > 64 ? ", \u2026 (" + v.data.length + " values)" : "");
      raw.append(h, pre);
    }
  }

  async function run(task) {
    try {
      await ready;
      const r = await task();
      showResult(r);
      setStatus("Done.", "ok");
    } catch (e) {
      setStatus("Inference failed: " + (e && e.message ? e.message : String(e)), "error");
    }
  }

  // ---- inputs -------------------------------------------------------------------------------------

  function runFile(file) {
    if (!file) return;
    run(() => predictImage(file));  // the file's own bytes: its EXIF orientation and alpha are honoured
  }

  function selectSample(button) {
    document.querySelectorAll("#sample-strip button").forEach((b) => b.classList.remove("selected"));
    button.classList.add("selected");
  }

  function buildSampleStrip() {
    const strip = $("sample-strip");
    if (!strip) return; // built with --no-bundled-samples: no sample strip
    config.samples.forEach((sample, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.title = "Sample " + (i + 1);
      if (sample.image) {
        const img = document.createElement("img");
        img.src = sample.image;
        img.alt = "sample " + (i + 1);
        button.appendChild(img);
        button.addEventListener("click", () => {
          selectSample(button);
          run(() => predictImage(img));
        });
      } else {
        button.textContent = "Sample " + (i + 1);
        button.addEventListener("click", () => {
          selectSample(button);
          run(async () => {
            const resp = await fetch(here(config.samples_url));
            const all = await resp.json();
            const inputs = {};
            for (const [name, v] of Object.entries(all[i])) {
              inputs[name] = { shape: v.shape, data: b64ToFloat32(v.b64) };
            }
            return predict(inputs);
          });
        });
      }
      strip.appendChild(button);
    });
  }

  function wireImageInputs() {
    const fileInput = $("file-input");
    fileInput.addEventListener("change", () => runFile(fileInput.files[0]));
    const zone = $("drop-zone");
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      runFile(e.dataTransfer.files[0]);
    });
    const video = $("camera");
    const cameraButton = $("camera-button");
    const captureButton = $("capture-button");
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      cameraButton.disabled = true;
      cameraButton.title = "No camera access on this page (needs https or localhost)";
    }
    cameraButton.addEventListener("click", async () => {
      try {
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
        video.hidden = false;
        captureButton.hidden = false;
        await video.play();
      } catch (e) {
        setStatus("The camera is not available: " + (e && e.message ? e.message : String(e)), "error");
      }
    });
    captureButton.addEventListener("click", () => run(() => predictImage(video)));
  }

  function registerServiceWorker() {
    if (!("serviceWorker" in navigator)) return;
    api.serviceWorker = navigator.serviceWorker.register(here("sw.js"))
      .then(() => navigator.serviceWorker.ready)
      .then((reg) => (reg.active ? reg.active.state : "none"))
      .catch((e) => {
        console.warn("service worker not registered (offline use unavailable): " + e);
        return "failed";
      });
  }

  if (config.image) wireImageInputs();
  buildSampleStrip();
  registerServiceWorker();
  load();
})();
