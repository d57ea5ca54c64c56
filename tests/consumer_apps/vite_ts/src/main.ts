// A developer's Vite + TypeScript (strict) app: the packaged model installed with `npm install <web folder>`,
// imported by its package name (the test writes it in place of __PACKAGE__), used as documented.
import { load, predictImage, topK, metadata, tf } from "__PACKAGE__";
import type { Metadata, Prediction } from "__PACKAGE__";

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

/** Checks of model.d.ts's types, never called: each @ts-expect-error line must be a type error (tsc fails on one
 * that is not), so a type widened to `any`/`string`/`object` or a missing field fails the build. */
export function typeChecks(m: Metadata): string {
  // @ts-expect-error a number is not a tf.js namespace
  void load({ tf: 42 });
  // @ts-expect-error an object with one function is not a tf.js namespace either
  void load({ tf: { getBackend: () => "cpu" } });
  // @ts-expect-error the model's tf is typed, not any: it has no such function
  tf?.notATfFunction();
  const backendName: string | undefined = tf?.getBackend();
  // @ts-expect-error the colour mode is one of three, not any string
  if (m.image !== null && m.image.color === "purple") return "";
  // @ts-expect-error an input's dtype is a tf.js dtype
  if (m.inputs[0]?.dtype === "uint8") return "";
  const runtimeDir: string = m.runtime_dir;
  return runtimeDir + String(backendName);
}

const loaded = load();
loaded.then(
  (r) => { document.getElementById("status")!.textContent = "ready on " + r.backend; },
  (e: unknown) => { document.getElementById("status")!.textContent = "failed: " + String(e); },
);
(window as unknown as { app: object }).app = { loaded, classify };
