// A developer's webpack 5 app: the packaged model installed with `npm install <web folder>`, imported by its
// package name (the test writes it in place of __PACKAGE__), used as documented.
import { load, predictImage, topK, metadata } from "__PACKAGE__";

async function classify(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  const r = await predictImage(img);
  const out = r.outputs[metadata.primary_output];
  return { label: topK(out.data, 1)[0].label, scores: Array.from(out.data) };
}

const loaded = load();
window.app = { loaded, classify };
