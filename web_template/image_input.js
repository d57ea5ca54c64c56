/* Image -> model input: the spec's one preprocessing (preprocess.js; packager/preprocessing.py and
 * docs/preprocessing.md define it): EXIF orientation, alpha on the background, crop policy, antialiased bilinear
 * resize, colour mode, x = (pixel - mean) / std. It runs in a module Worker (preprocess_worker.js) so that a big
 * photo does not hold the page (a 24 MP JPEG is ~2 s of decoding and resampling); on the page itself only where
 * workers cannot (no Worker or OffscreenCanvas, or the worker file failed to load). Same numbers either way. */
import { imageToInput as preprocess, decodeBitmap } from "./preprocess.js";

/** `source` (a File/Blob — its EXIF orientation is read from its bytes —, <img>, <video>, <canvas>, ImageBitmap,
 *  OffscreenCanvas) -> {inputName: {shape, data}} per `image` (metadata.json's image block). Draws the model's
 *  pixels on `canvas` when given (the demo's preview). */
export async function imageToInput(source, image, canvas) {
  const tensor = await offThread(source, image);
  if (canvas) showPixels(canvas, tensor.pixels, image);
  return { [image.input]: { shape: tensor.shape, data: tensor.data } };
}

let worker = null;  // null: not started; false: unusable here (then the page preprocesses)
let nextId = 0;
const pending = new Map();

function startWorker() {
  if (worker === null) {
    worker = false;
    if (typeof Worker === "undefined" || typeof OffscreenCanvas === "undefined") return false;
    try {
      // A literal new URL(..., import.meta.url) inside new Worker(): Vite, webpack 5 and Rollup bundle the worker.
      worker = new Worker(new URL("./preprocess_worker.js", import.meta.url), { type: "module" });
    } catch (e) {
      return false;
    }
    worker.onmessage = (event) => {
      const call = pending.get(event.data.id);
      if (!call) return;
      pending.delete(event.data.id);
      if (event.data.error !== undefined) call.reject(new Error(event.data.error));
      else call.resolve(event.data.tensor);
    };
    worker.onerror = (event) => {  // the worker itself failed (not loadable): preprocess on the page from now on
      if (event.preventDefault) event.preventDefault();
      worker.terminate();
      worker = false;
      for (const call of pending.values()) call.fallback();
      pending.clear();
    };
  }
  return worker;
}

async function offThread(source, image) {
  if (!startWorker()) return preprocess(source, image);
  // Blobs are copied to the worker as they are; anything else is decoded here (cheap: no resampling) and its
  // bitmap moved there.
  const isBlob = typeof Blob !== "undefined" && source instanceof Blob;
  const payload = isBlob ? source : await decodeBitmap(source);
  const w = startWorker();
  if (!w) {
    if (!isBlob && payload.close) payload.close();
    return preprocess(source, image);
  }
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, fallback: () => preprocess(source, image).then(resolve, reject) });
    w.postMessage({ id, source: payload, image: plain(image) }, isBlob ? [] : [payload]);
  });
}

/** The image block as plain data (it may be a frozen or proxied object). */
function plain(image) {
  return JSON.parse(JSON.stringify(image));
}

/** The model's pixels (HWC, its channels) drawn on `canvas` (the demo's preview of the model input). */
export function showPixels(canvas, pixels, image) {
  const ctx = canvas.getContext("2d");
  const rgba = new ImageData(image.width, image.height);
  const c = image.channels;
  for (let i = 0, q = 0; i < image.width * image.height; i++, q += c) {
    const v = c === 1 ? [pixels[q], pixels[q], pixels[q]]
      : image.color === "bgr" ? [pixels[q + 2], pixels[q + 1], pixels[q]] : [pixels[q], pixels[q + 1], pixels[q + 2]];
    rgba.data.set([v[0], v[1], v[2], 255], i * 4);
  }
  ctx.putImageData(rgba, 0, 0);
}
