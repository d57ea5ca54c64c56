// The LiteRT.js runtime of a packager web bundle built with --web-runtime litert (an ES module): @litertjs/core
// with its @litertjs/wasm-utils import resolved (the published dist/index.js imports it by bare name, which a
// browser cannot load without an import map). Built by .ci/setup-web-litert.sh with esbuild into litert-runtime.js.
export { loadLiteRt, unloadLiteRt, loadAndCompile, Tensor, isWebGPUSupported, supportsFeature, getGlobalLiteRtPromise } from "@litertjs/core";
