// Image outputs (packager's output kind "image": maps, masks or images the size of the input) as ImageData.
// Runtime-independent: model.js re-exports these, whichever runtime it runs on (TF.js or LiteRT.js).

/** The range toImageData maps to 0..255 by default: 0..1 when every value lies in it, else min..max. */
export function defaultRange(data) {
  let lo = Infinity, hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo >= 0 && hi <= 1 ? [0, 1] : [lo, hi];
}

/** An image output {shape: [1, H, W, C], data} (C 1, 3 or 4) as an ImageData of W x H: values in `range` (default
 *  defaultRange) to 0..255; 1 channel grey, 3 RGB, 4 RGBA (straight alpha). */
export function toImageData(output, range) {
  const [h, w, c] = output.shape.slice(-3);
  if (output.shape.length < 3 || ![1, 3, 4].includes(c) || output.data.length < h * w * c) {
    throw new Error("not an image output: shape [" + output.shape.join(", ") + "]");
  }
  const [lo, hi] = range || defaultRange(output.data);
  const span = hi > lo ? hi - lo : 1;
  const px = new Uint8ClampedArray(w * h * 4);
  for (let p = 0; p < w * h; p++) {
    for (let k = 0; k < 4; k++) {
      const v = k === 3 ? (c === 4 ? output.data[p * c + 3] : null) : output.data[p * c + (c === 1 ? 0 : k)];
      px[p * 4 + k] = v === null ? 255 : Math.round(((v - lo) / span) * 255);
    }
  }
  return new ImageData(px, w, h);
}

/** The image outputs of a prediction `r` (``metadata``'s outputs of kind "image" in metadata.outputs: maps, masks or images the
 *  size of the input), by name: {tensor: {shape, data}, image: ImageData}. */
export function imageOutputsOf(metadata, r) {
  const out = {};
  for (const o of metadata.outputs) {
    if (o.kind === "image" && r.outputs[o.name]) {
      out[o.name] = { tensor: r.outputs[o.name], image: toImageData(r.outputs[o.name]) };
    }
  }
  return out;
}
