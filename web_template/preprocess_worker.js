/* preprocess.js off the page's main thread: a module Worker that decodes and resamples an image (a Blob, or an
 * ImageBitmap the page already decoded) and posts back the model's pixels and input. image_input.js starts it;
 * the numbers are preprocess.js's, bit for bit, wherever they are computed. */
import { imageToInput, bitmapPixels, modelPixels, normalise } from "./preprocess.js";

self.onmessage = async (event) => {
  const { id, source, image } = event.data;
  try {
    let tensor;
    if (typeof ImageBitmap !== "undefined" && source instanceof ImageBitmap) {
      const pixels = modelPixels(bitmapPixels(source), image);
      tensor = { shape: [1, image.height, image.width, image.channels], data: normalise(pixels, image), pixels };
    } else {
      tensor = await imageToInput(source, image);
    }
    self.postMessage({ id, tensor }, [tensor.data.buffer, tensor.pixels.buffer]);
  } catch (e) {
    self.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
};
