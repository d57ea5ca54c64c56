/* Image -> model input: the spec's preprocessing in the browser (one function, swappable as a whole).
 * Resize to the input size on a canvas, colour mode, x = (pixel - mean) / std. */

/** `source` (<img>, <video>, <canvas>, ImageBitmap, OffscreenCanvas) -> {inputName: {shape, data}} per `image`
 *  ({input, height, width, channels, color, mean, std} from metadata.json). Draws on `canvas` when given (the
 *  demo's preview), else on a canvas of its own. */
export function imageToInput(source, image, canvas) {
  const target = canvas || makeCanvas(image.width, image.height);
  const ctx = target.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, image.width, image.height);
  ctx.drawImage(source, 0, 0, image.width, image.height);
  const pixels = ctx.getImageData(0, 0, image.width, image.height).data;
  const c = image.channels;
  const mean = image.mean.map(Math.fround);
  const std = image.std.map(Math.fround);
  const data = new Float32Array(image.width * image.height * c);
  for (let p = 0, q = 0; p < pixels.length; p += 4, q += c) {
    const r = pixels[p], g = pixels[p + 1], b = pixels[p + 2];
    let values;
    if (c === 1) {
      values = [(r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16];  // PIL's convert("L")
    } else if (image.color === "bgr") {
      values = [b, g, r];
    } else {
      values = [r, g, b];
    }
    for (let k = 0; k < c; k++) {
      data[q + k] = Math.fround(Math.fround(values[c === 1 ? 0 : k] - mean[k]) / std[k]);
    }
  }
  return { [image.input]: { shape: [1, image.height, image.width, c], data: data } };
}

function makeCanvas(width, height) {
  if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(width, height);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}
