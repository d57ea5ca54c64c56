// Bundles entry.mjs into tf-runtime.js (one ES module) with esbuild: `node build.mjs <outfile>` (.ci/setup-web.sh).
//
// The bundle keeps its tf.js state to itself. tfjs-core keeps its engine (backend, flags, tensors) on
// `window._tfengine` and its kernel registry on `window._tfGlobals`, so a second tf.js in a page (this runtime
// inside an app that has its own @tensorflow/tfjs) would share them: register every kernel again (hundreds of
// "already registered" warnings) and switch the app's backend when it picks its own. Here both live in objects
// private to this module; `window` stays what tf.js reads platform features from (fetch, location, screen).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";

// [file under @tensorflow/tfjs-core/dist, [exact text, replacement]...]: each text must occur exactly once
const PATCHES = [
  ["engine.js", [
    ["    const ns = getGlobalNamespace();\n    if (ns._tfengine == null) {\n" +
     "        const environment = new Environment(ns);\n",
     "    const ns = PACKAGER_PRIVATE_TF_STATE;\n    if (ns._tfengine == null) {\n" +
     "        const environment = new Environment(getGlobalNamespace());\n"],
    ["export function getOrMakeEngine() {",
     "const PACKAGER_PRIVATE_TF_STATE = {};\nexport function getOrMakeEngine() {"],
  ]],
  ["global_util.js", [
    ["function getGlobalMap() {\n    const ns = getGlobalNamespace();",
     "const PACKAGER_PRIVATE_TF_GLOBALS = {};\nfunction getGlobalMap() {\n    const ns = PACKAGER_PRIVATE_TF_GLOBALS;"],
  ]],
];

const privateState = {
  name: "private-tfjs-state",
  setup(b) {
    b.onLoad({ filter: /[\\/]@tensorflow[\\/]tfjs-core[\\/]dist[\\/](engine|global_util)\.js$/ }, async (args) => {
      let text = await readFile(args.path, "utf8");
      const [, edits] = PATCHES.find(([file]) => args.path.endsWith("/" + file) || args.path.endsWith("\\" + file));
      for (const [from, to] of edits) {
        const n = text.split(from).length - 1;
        if (n !== 1) throw new Error(`${args.path}: expected the text to patch once, found it ${n} times: ${from}`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: "js" };
    });
  },
};

const outfile = process.argv[2];
if (!outfile) throw new Error("usage: node build.mjs <outfile>");
const patched = new Set();
await build({
  entryPoints: [new URL("./entry.mjs", import.meta.url).pathname],
  bundle: true, format: "esm", minify: true, platform: "browser", target: "es2020", legalComments: "none",
  logLevel: "warning", outfile, metafile: true,
  plugins: [privateState, { name: "count", setup(b) { b.onEnd((r) => {
    for (const input of Object.keys(r.metafile ? r.metafile.inputs : {})) {
      const m = input.match(/tfjs-core\/dist\/(engine|global_util)\.js$/);
      if (m) patched.add(m[1]);
    }
  }); } }],
});
if (patched.size !== PATCHES.length) throw new Error("tfjs-core's engine.js/global_util.js were not both bundled");
