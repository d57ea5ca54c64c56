// Runs a TF.js graph model folder on one sample with tf.js' cpu backend in Node (no tfjs-node, no browser):
//   node benchmarks/tfjs_run.js TFJS_DIR SAMPLE_JSON
// SAMPLE_JSON: {"<signature input name>": {"shape": [...], "dtype": "float32|int32", "data": [...]}}.
// Prints one JSON line: {"ok": true, "outputs": {name: shape}} or {"ok": false, "error": "..."}.
"use strict";
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..", ".tools", "npm-web", "tfjs", "package", "dist", "tf.min.js");
const tf = require(process.env.PACKAGER_TFJS || root);

async function main(dir, samplePath) {
  const mj = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const specs = [];
  const buffers = [];
  for (const group of mj.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: mj.modelTopology, weightSpecs: specs, weightData, signature: mj.signature,
  }));
  const sample = JSON.parse(fs.readFileSync(samplePath, "utf8"));
  const feed = {};
  for (const [name, sig] of Object.entries(mj.signature.inputs)) {
    const x = sample[name];
    if (!x) throw new Error("the sample has no input " + name);
    feed[sig.name] = tf.tensor(x.data, x.shape, x.dtype);
  }
  const names = Object.keys(mj.signature.outputs);
  let out = await model.executeAsync(feed, names.map((n) => mj.signature.outputs[n].name));
  if (!Array.isArray(out)) out = [out];
  const outputs = {};
  names.forEach((n, i) => { outputs[n] = out[i].shape; });
  return outputs;
}

(async () => {
  await tf.setBackend("cpu");
  try {
    console.log(JSON.stringify({ ok: true, outputs: await main(process.argv[2], process.argv[3]) }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String((e && e.message) || e) }));
  }
})();
