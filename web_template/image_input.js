/* Image -> model input: the spec's one preprocessing (preprocess.js; packager/preprocessing.py and
 * docs/preprocessing.md define it): EXIF orientation, alpha on the background, crop policy, antialiased bilinear
 * resize, colour mode, x = (pixel - mean) / std. */
import { imageToInput as preprocess } from "./preprocess.js";

/** `source` (a File/Blob — its EXIF orientation is read from its bytes —, <img>, <video>, <canvas>, ImageBitmap,
 *  OffscreenCanvas) -> {inputName: {shape, data}} per `image` (metadata.json's image block). Draws the model's
 *  pixels on `canvas` when given (the demo's preview). */
export async function imageToInput(source, image, canvas) {
  const tensor = await preprocess(source, image);
  if (canvas) showPixels(canvas, tensor.pixels, image);
  return { [image.input]: { shape: tensor.shape, data: tensor.data } };
}

function showPixels(canvas, pixels, image) {
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
