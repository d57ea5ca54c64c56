// A Vite + TypeScript (strict) app that already uses tf.js (@tensorflow/tfjs, on the backend it chose) and adds the
// packaged model (`npm install <web folder>`; the test writes its name in place of __PACKAGE__). It shares its tf.js
// with the model (`load({ tf })`), or with `?tf=bundled` lets the model load its own runtime (`load()`): either way
// its backend, flags and registered backends must stay as it set them.
import * as tf from "@tensorflow/tfjs";
import { load, predictImage, topK, metadata } from "__PACKAGE__";

const share = new URLSearchParams(location.search).get("tf") !== "bundled";

async function classify(url: string): Promise<{ label: string; scores: number[] }> {
  const img = new Image();
  img.src = url;
  await img.decode();
  const r = await predictImage(img);
  if (metadata === null) throw new Error("metadata not loaded");
  const out = r.outputs[metadata.primary_output];
  const best = out === undefined ? undefined : topK(out.data, 1)[0];
  if (out === undefined || best === undefined) throw new Error("no scores");
  return { label: best.label, scores: Array.from(out.data) };
}

/** What the app set up of its tf.js: backend, flags, registered backends. */
function appState(): { backend: string; flags: object; backends: string[] } {
  return {
    backend: tf.getBackend(),
    flags: { ...tf.env().getFlags() },  // the flags set or read so far
    backends: Object.keys(tf.engine().registryFactory).sort(),
  };
}

async function start(): Promise<{ backend: string; skipped: string[]; appBefore: ReturnType<typeof appState> }> {
  await tf.setBackend("cpu");  // the app's own choice, which the model must not change
  await tf.ready();
  tf.env().set("WEBGL_PACK", false);  // an app's own flag, which the model must leave as it is
  const appBefore = appState();
  const r = share ? await load({ tf }) : await load();
  return { ...r, appBefore };
}

(window as unknown as { app: object }).app = {
  loaded: start(),
  classify,
  appState,
  sameEngine: () => (globalThis as unknown as { _tfengine: unknown })._tfengine === tf.engine(),
};
