/* packager's image preprocessing in the browser: the same steps, in the same order, as packager/preprocessing.py
 * (docs/preprocessing.md). No canvas smoothing is used: the canvas only reads the decoded pixels at their own size.
 *
 *   const input = await imageToInput(fileOrBlob, config.image);   // {shape: [1, H, W, C], data: Float32Array}
 *
 * config.image (written by packager into the page's config): {input, width, height, channels, color ("rgb" | "bgr"
 * | "grayscale"), mean: [..C], std: [..C], normalize ("mean-std" | "per-image" | "per-channel"), crop ("stretch" | "center-crop" | "letterbox"), background: [r, g, b]}.
 */

export const CROP_POLICIES = ["stretch", "center-crop", "letterbox"];
/** Larger images are refused (before decoding when their header says their size): decoding and reading them back
 * would hold the page for seconds and hundreds of MB. */
export const MAX_PIXELS = 50e6;
const LUMA = [0.299, 0.587, 0.114];

/**
 * Decodes an image Blob/File (or anything createImageBitmap takes: <img>, <video>, <canvas>, ImageBitmap) into
 * upright pixels: {width, height, premultiplied: Uint8ClampedArray RGBA whose RGB is c * a / 255, alpha: the same
 * array's A}. EXIF orientation is applied by the decoder (imageOrientation "from-image"), no colour management
 * (colorSpaceConversion "none"), and alpha is left unpremultiplied until drawn.
 */
export async function decodeImage(source) {
  return bitmapPixels(await decodeBitmap(source));
}

/** The first half of decodeImage: the source decoded into an ImageBitmap (the same options), size-checked. The
 * caller owns it (close() it, or give it to bitmapPixels). */
export async function decodeBitmap(source) {
  refuseHuge(typeof Blob !== "undefined" && source instanceof Blob ? await encodedSize(source) : {
    width: source.naturalWidth || source.videoWidth || source.width, height: source.naturalHeight ||
      source.videoHeight || source.height });
  const bitmap = await createImageBitmap(source, {
    imageOrientation: "from-image",
    premultiplyAlpha: "none",
    colorSpaceConversion: "none",
  });
  try {
    refuseHuge(bitmap);
  } catch (e) {
    if (bitmap.close) bitmap.close();
    throw e;
  }
  return bitmap;
}

/** The second half of decodeImage: a bitmap from decodeBitmap -> its pixels; closes the bitmap. */
export function bitmapPixels(bitmap) {
  try {
    return readPixels(bitmap);
  } finally {
    if (bitmap.close) bitmap.close();
  }
}

function refuseHuge(size) {
  if (size && size.width * size.height > MAX_PIXELS) {
    throw new Error("the image is " + size.width + "\u00d7" + size.height + " pixels (" +
      Math.round(size.width * size.height / 1e6) + " MP), over the " + MAX_PIXELS / 1e6 + " MP this page decodes: " +
      "make it smaller first");
  }
}

/** {width, height} from a PNG or JPEG header (the first 64 KB), or null: no decoding. */
async function encodedSize(blob) {
  const b = new Uint8Array(await blob.slice(0, 65536).arrayBuffer());
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    const v = new DataView(b.buffer);
    return { width: v.getUint32(16), height: v.getUint32(20) };
  }
  if (b[0] !== 0xff || b[1] !== 0xd8) return null;
  for (let i = 2; i + 8 < b.length;) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i += 1; continue; }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };  // SOFn
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return null;
}

function canvas2d(width, height) {
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width: width, height: height });
  return canvas.getContext("2d", { willReadFrequently: true, alpha: true });
}

// A 2D canvas stores premultiplied colours, so reading an unpremultiplied colour back would lose bits under low
// alpha. Instead: drawn over opaque black, the canvas holds exactly c * a / 255 (opaque, read back unchanged), and
// drawn over nothing, its alpha (never lossy). Compositing needs nothing else: v = c*a/255 + bg * (255 - a) / 255.
function readPixels(bitmap) {
  const width = bitmap.width;
  const height = bitmap.height;
  const over = canvas2d(width, height);
  over.imageSmoothingEnabled = false;
  over.fillStyle = "#000";
  over.fillRect(0, 0, width, height);
  over.drawImage(bitmap, 0, 0);
  const premultiplied = over.getImageData(0, 0, width, height).data;
  const alone = canvas2d(width, height);
  alone.imageSmoothingEnabled = false;
  alone.clearRect(0, 0, width, height);
  alone.drawImage(bitmap, 0, 0);
  const withAlpha = alone.getImageData(0, 0, width, height).data;
  for (let i = 3; i < premultiplied.length; i += 4) premultiplied[i] = withAlpha[i];
  return { width: width, height: height, premultiplied: premultiplied };
}

/** Step 5: where the image goes (see crop_geometry in packager/preprocessing.py). */
export function cropGeometry(srcW, srcH, w, h, crop) {
  if (crop === "stretch" || !crop) {
    return { x0: 0, y0: 0, x1: srcW, y1: srcH, cw: w, ch: h, ox: 0, oy: 0 };
  }
  const wider = srcW * h >= srcH * w;
  if (crop === "center-crop") {
    if (wider) {
      const cwSrc = srcH * w / h;
      const x0 = (srcW - cwSrc) / 2;
      return { x0: x0, y0: 0, x1: x0 + cwSrc, y1: srcH, cw: w, ch: h, ox: 0, oy: 0 };
    }
    const chSrc = srcW * h / w;
    const y0 = (srcH - chSrc) / 2;
    return { x0: 0, y0: y0, x1: srcW, y1: y0 + chSrc, cw: w, ch: h, ox: 0, oy: 0 };
  }
  if (crop === "letterbox") {
    let cw, ch;
    if (wider) {
      cw = w;
      ch = Math.max(1, Math.floor((2 * srcH * w + srcW) / (2 * srcW)));
    } else {
      cw = Math.max(1, Math.floor((2 * srcW * h + srcH) / (2 * srcH)));
      ch = h;
    }
    return { x0: 0, y0: 0, x1: srcW, y1: srcH, cw: cw, ch: ch, ox: Math.floor((w - cw) / 2), oy: Math.floor((h - ch) / 2) };
  }
  throw new Error("unknown crop policy " + crop);
}

/** Step 6 on one axis: Pillow's BILINEAR coefficients, support scaled on downscale. {first, ksize, weights}. */
export function axisWeights(nIn, b0, b1, nOut) {
  const scale = (b1 - b0) / nOut;
  const filterscale = Math.max(scale, 1.0);
  const support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(nOut);
  const weights = new Float64Array(nOut * ksize);
  for (let i = 0; i < nOut; i++) {
    const center = b0 + (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), nIn);
    let total = 0;
    for (let x = lo; x < hi; x++) {
      const w = Math.max(0, 1 - Math.abs((x - center + 0.5) / filterscale));
      weights[i * ksize + x - lo] = w;
      total += w;
    }
    if (total !== 0) for (let k = 0; k < hi - lo; k++) weights[i * ksize + k] /= total;
    first[i] = lo;
  }
  return { first: first, ksize: ksize, weights: weights };
}

/**
 * Steps 3-6 (and the channel order of 7): decoded pixels -> the model's pixels, a Float32Array of H*W*C values in
 * 0..255 (before mean/std), channels in the model's order.
 */
export function modelPixels(decoded, image) {
  const { width: srcW, height: srcH, premultiplied: px } = decoded;
  const w = image.width;
  const h = image.height;
  const c = image.channels;
  const bg = (image.background || [255, 255, 255]).map(Number);
  const g = cropGeometry(srcW, srcH, w, h, image.crop || "stretch");
  const fx = axisWeights(srcW, g.x0, g.x1, g.cw);
  const fy = axisWeights(srcH, g.y0, g.y1, g.ch);
  // Steps 3-4 row by row, then the horizontal pass of step 6 into tmp (srcH rows of cw pixels).
  const tmp = new Float64Array(srcH * g.cw * c);
  const row = new Float32Array(srcW * c);
  for (let y = 0; y < srcH; y++) {
    for (let x = 0, p = y * srcW * 4; x < srcW; x++, p += 4) {
      const a = px[p + 3];
      const rest = 255 - a;
      const r = px[p] + bg[0] * rest / 255;
      const gg = px[p + 1] + bg[1] * rest / 255;
      const b = px[p + 2] + bg[2] * rest / 255;
      if (c === 1) {
        row[x] = LUMA[0] * r + LUMA[1] * gg + LUMA[2] * b;
      } else {
        row[x * 3] = r;
        row[x * 3 + 1] = gg;
        row[x * 3 + 2] = b;
      }
    }
    const base = y * g.cw * c;
    for (let j = 0; j < g.cw; j++) {
      const lo = fx.first[j];
      const wo = j * fx.ksize;
      const n = Math.min(fx.ksize, srcW - lo);
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += row[(lo + t) * c + k] * fx.weights[wo + t];
        tmp[base + j * c + k] = s;
      }
    }
  }
  // The canvas of the input: the background (its luma for one channel), the resampled image at (ox, oy).
  const out = new Float32Array(w * h * c);
  const fill = c === 1 ? [LUMA[0] * bg[0] + LUMA[1] * bg[1] + LUMA[2] * bg[2]] : bg;
  if (g.cw !== w || g.ch !== h) {
    for (let i = 0; i < w * h; i++) for (let k = 0; k < c; k++) out[i * c + k] = fill[k];
  }
  for (let i = 0; i < g.ch; i++) {
    const lo = fy.first[i];
    const wo = i * fy.ksize;
    const n = Math.min(fy.ksize, srcH - lo);
    for (let j = 0; j < g.cw; j++) {
      const o = ((i + g.oy) * w + j + g.ox) * c;
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += tmp[((lo + t) * g.cw + j) * c + k] * fy.weights[wo + t];
        out[o + k] = s;
      }
    }
  }
  if (c === 3 && image.color === "bgr") {
    for (let i = 0; i < out.length; i += 3) {
      const r = out[i];
      out[i] = out[i + 2];
      out[i + 2] = r;
    }
  }
  return out;
}

/** Step 7 with image.normalize "per-image" (perChannel false) or "per-channel": with m the mean and s the population
 * standard deviation of the N values (the whole image's, or one channel's H*W), x = (v - m) / max(s, 1 / sqrt(N))
 * (tf.image.per_image_standardization). Statistics in double precision, the result in float32. */
export function standardise(pixels, image, perChannel) {
  const c = image.channels;
  const groups = perChannel ? c : 1;
  const n = pixels.length / groups;
  const mean = new Array(groups).fill(0);
  const sq = new Array(groups).fill(0);
  for (let i = 0; i < pixels.length; i++) mean[perChannel ? i % c : 0] += pixels[i];
  for (let k = 0; k < groups; k++) mean[k] /= n;
  for (let i = 0; i < pixels.length; i++) {
    const d = pixels[i] - mean[perChannel ? i % c : 0];
    sq[perChannel ? i % c : 0] += d * d;
  }
  const scale = sq.map((v) => Math.max(Math.sqrt(v / n), 1 / Math.sqrt(n)));
  const data = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const k = perChannel ? i % c : 0;
    data[i] = Math.fround((pixels[i] - mean[k]) / scale[k]);
  }
  return data;
}

/** An input of whole pixel levels (image.pixels: a uint8 input, the model normalises itself): each value clamped to
 * 0..255 and rounded half to even, as packager rounds the samples (Math.round would take 2.5 to 3, numpy to 2). */
export function wholeLevels(pixels) {
  const data = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = Math.min(255, Math.max(0, pixels[i]));
    const r = Math.round(v);
    data[i] = r - v === 0.5 && r % 2 === 1 ? r - 1 : r;
  }
  return data;
}

/** Step 7: x = (v - mean) / std per channel, in float32 like the model input (or image.normalize's standardise);
 * a pixel input (image.pixels) takes the pixels themselves, in whole levels. */
export function normalise(pixels, image) {
  if (image.pixels) return wholeLevels(pixels);
  if (image.normalize === "per-image" || image.normalize === "per-channel") {
    return standardise(pixels, image, image.normalize === "per-channel");
  }
  const c = image.channels;
  const mean = image.mean.map(Math.fround);
  const std = image.std.map(Math.fround);
  const data = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const k = i % c;
    data[i] = Math.fround(Math.fround(pixels[i] - mean[k]) / std[k]);
  }
  return data;
}

/** The whole definition: an image (Blob/File, <img>, <video>, <canvas>, ImageBitmap) -> the model input tensor. */
export async function imageToInput(source, image) {
  const pixels = modelPixels(await decodeImage(source), image);
  return { shape: [1, image.height, image.width, image.channels], data: normalise(pixels, image), pixels: pixels };
}
