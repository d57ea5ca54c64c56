/* The demo page's model, off its main thread: a module Worker that imports model.js, so the runtime (tf.js or
 * LiteRT.js) is evaluated, its backend started, the model built, warmed up and run here, never on the page's main
 * thread (a 4x-throttled phone spends hundreds of ms there evaluating the runtime alone). model_client.js starts it
 * and talks to it; model.js itself is unchanged (apps that import it run it where they choose).
 *
 * Messages in: {id, op: "load", options: {backends?, warmUp?}} | {id, op: "predict", inputs} |
 *              {id, op: "predictImage", source: Blob | ImageBitmap, image}
 * Messages out: {id, progress} (load only, any number) then {id, result} or {id, error} — or {id, refused} when this
 * runtime cannot run in a worker (the page then runs it itself). */
import * as model from "./model.js";
import * as runtime from "./model_runtime.js";
import { imageToInput, bitmapPixels, modelPixels, normalise } from "./preprocess.js";

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
      const pixels = modelPixels(bitmapPixels(source), image);
      tensor = { shape: [1, image.height, image.width, image.channels], data: normalise(pixels, image), pixels };
    } else {
      tensor = await imageToInput(source, image);  // a Blob: decoded (size-checked, EXIF honoured) here
    }
    const r = await model.predict({ [image.input]: { shape: tensor.shape, data: tensor.data } });
    r.input = { shape: tensor.shape, data: tensor.data };
    r.pixels = tensor.pixels;
    return [r, once([...buffers(r.outputs), tensor.data.buffer, tensor.pixels.buffer])];
  },
};

self.onmessage = async (event) => {
  const message = event.data;
  if (runtime.WORKER_REFUSED) {
    self.postMessage({ id: message.id, refused: runtime.WORKER_REFUSED });
    return;
  }
  try {
    const [result, transfer] = await ops[message.op](message);
    self.postMessage({ id: message.id, result }, transfer);
  } catch (e) {
    self.postMessage({ id: message.id, error: String(e && e.message ? e.message : e), stalled: !!(e && e.stalled) });
  }
};
