// A Vite + TypeScript (strict) app that already uses tf.js (@tensorflow/tfjs, on the backend it chose) and adds the
// packaged model (`npm install <web folder>`; the test writes its name in place of __PACKAGE__), sharing its tf.js.
import * as tf from "@tensorflow/tfjs";
import { load, predictImage, topK, metadata } from "__PACKAGE__";

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

async function start(): Promise<{ backend: string; skipped: string[]; appBackendBefore: string }> {
  await tf.setBackend("cpu");  // the app's own choice, which the model must not change
  await tf.ready();
  const appBackendBefore = tf.getBackend();
  const r = await load({ tf });
  return { ...r, appBackendBefore };
}

(window as unknown as { app: object }).app = {
  loaded: start(),
  classify,
  appBackend: () => tf.getBackend(),
  sameEngine: () => (globalThis as unknown as { _tfengine: unknown })._tfengine === tf.engine(),
};
