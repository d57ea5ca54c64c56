/* The demo page's model, off its main thread: a Worker that imports model.js, so the runtime (tf.js or
 * LiteRT.js) is evaluated, its backend started, the model built, warmed up and run here, never on the page's main
 * thread (a 4x-throttled phone spends hundreds of ms there evaluating the runtime alone). model_client.js starts it
 * and talks to it; model.js itself is unchanged (apps that import it run it where they choose).
 *
 * Messages in: {id, op: "load", options: {backends?, warmUp?}} | {id, op: "predict", inputs} |
 *              {id, op: "predictImage", source: Blob | ImageBitmap, image}
 * Messages out: {id, progress} (load only, any number) then {id, result} or {id, error}; {id, refused} when the
 * modules cannot load in a worker (the page then runs the model itself). */
"use strict";
// A classic worker that import()s the ES modules: LiteRT.js loads its Emscripten glue with importScripts(), which
// module workers refuse; tf.js runs the same in either.
let model = null;
let pre = null;
const modules = Promise.all([import("./model.js"), import("./preprocess.js")])
  .then(([m, p]) => { model = m; pre = p; });

const buffers = (outputs) => Object.values(outputs).map((v) => v.data.buffer);
const once = (list) => [...new Set(list)];  // a buffer listed twice cannot be transferred

const ops = {
  async load(message) {
    const options = { ...message.options, onProgress: (p) => self.postMessage({ id: message.id, progress: p }) };
    const r = await model.load(options);
    return [{ ...r, metadata: model.metadata }, []];
  },
  async predict(message) {
    const r = await model.predict(message.inputs);
    return [r, once(buffers(r.outputs))];
  },
  async predictImage(message) {
    const { source, image } = message;
    let tensor;
    if (typeof ImageBitmap !== "undefined" && source instanceof ImageBitmap) {
      const pixels = pre.modelPixels(pre.bitmapPixels(source), image);
      tensor = { shape: [1, image.height, image.width, image.channels], data: pre.normalise(pixels, image), pixels };
    } else {
      tensor = await pre.imageToInput(source, image);  // a Blob: decoded (size-checked, EXIF honoured) here
    }
    const r = await model.predict({ [image.input]: { shape: tensor.shape, data: tensor.data } });
    r.input = { shape: tensor.shape, data: tensor.data };
    r.pixels = tensor.pixels;
    return [r, once([...buffers(r.outputs), tensor.data.buffer, tensor.pixels.buffer])];
  },
};

self.onmessage = async (event) => {
  const message = event.data;
  try {
    await modules;
  } catch (e) {  // the modules cannot load here: the page runs the model itself
    self.postMessage({ id: message.id, refused: "the model's modules did not load in a Worker: " + (e && e.message) });
    return;
  }
  try {
    const [result, transfer] = await ops[message.op](message);
    self.postMessage({ id: message.id, result }, transfer);
  } catch (e) {
    self.postMessage({ id: message.id, error: String(e && e.message ? e.message : e), stalled: !!(e && e.stalled) });
  }
};
