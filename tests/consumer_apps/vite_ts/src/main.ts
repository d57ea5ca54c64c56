// A developer's Vite + TypeScript (strict) app: the packaged model installed with `npm install <web folder>`,
// imported by its package name (the test writes it in place of __PACKAGE__), used as documented.
import { load, predictImage, topK, metadata } from "__PACKAGE__";
import type { Prediction } from "__PACKAGE__";

interface Classified {
  label: string;
  scores: number[];
}

async function classify(url: string): Promise<Classified> {
  const img = new Image();
  img.src = url;
  await img.decode();
  const r: Prediction = await predictImage(img);
  if (metadata === null) throw new Error("metadata not loaded");
  const out = r.outputs[metadata.primary_output];
  if (out === undefined) throw new Error("no primary output");
  const best = topK(out.data, 1)[0];
  if (best === undefined) throw new Error("no scores");
  return { label: best.label, scores: Array.from(out.data) };
}

const loaded = load();
loaded.then(
  (r) => { document.getElementById("status")!.textContent = "ready on " + r.backend; },
  (e: unknown) => { document.getElementById("status")!.textContent = "failed: " + String(e); },
);
(window as unknown as { app: object }).app = { loaded, classify };
