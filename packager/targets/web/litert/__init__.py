"""The web target's second runtime, LiteRT.js (``--web-runtime litert``): the Android target's very ``.tflite`` in
the same PWA shell and the same ES module API as the TF.js bundle.

- ``runtime``: the vendored LiteRT.js files (.ci/setup-web-litert.sh) and the runtime choice's names.
- ``convert``: the Android target's chosen ``.tflite`` (handed over by the build session), inspected: static shapes,
  float/int32 I/O (what LiteRT.js's JS API runs), signature names for the page.
- ``bundle``: ``OUT/web/`` with ``web_template/litert/``'s model.js over ``web_template``.
- ``validate``: every sample through the page on wasm (WebGPU when Chromium has an adapter, else UNVERIFIED),
  compared with the original and with the host run of the same file (ai-edge-litert), plus the page checks.
"""
