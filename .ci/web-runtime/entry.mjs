// The tf.js runtime of a packager web bundle (an ES module): the graph-model API and the backends the page
// may pick (wasm, then webgl, then cpu). Built by .ci/setup-web.sh with esbuild into tf-runtime.js.
export * from "@tensorflow/tfjs-core";
export { loadGraphModel } from "@tensorflow/tfjs-converter";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgl";
export { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
