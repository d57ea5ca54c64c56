// Loading, whichever runtime model.js runs on (TF.js or LiteRT.js): a stall watchdog (no progress for N s, not a
// total time limit: a slow link still loads), fetches that name the file and tell an HTML page served for a missing
// file from the file itself, and error messages.

/** Progress of a load: `progress(step, loaded, total)` reports to onProgress and restarts the stall timer;
 * `guard(promise)` (re)starts it and rejects when nothing progressed for `ms`; `stop()` when the load ended. */
export function watchdog(ms, onProgress) {
  let timer = null;
  let fail = null;
  let step = "starting";
  const stalled = new Promise((_, reject) => { fail = reject; });
  stalled.catch(() => {});
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const error = new Error("loading the model stalled: no progress for " + ms / 1000 + " s (last step: " +
        step + ")");
      error.stalled = true;
      fail(error);
    }, ms);
  };
  return {
    progress(what, loaded, total) {
      step = what;
      arm();
      if (onProgress) onProgress({ step: what, loaded: loaded, total: total });
    },
    guard(promise) {
      arm();
      return Promise.race([promise, stalled]);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

// tf.js would read an HTTP error page (or the HTML page a dev server or SPA host sends for a missing file) as
// weights; fail with the file's name and what came back instead.
export async function checkedFetch(url, init, expected) {
  const name = fileName(url);
  const response = await fetch(url, init);
  if (!response.ok) throw fileError(name + ": HTTP " + response.status + " " + response.statusText);
  const type = (response.headers.get("Content-Type") || "").toLowerCase();
  if (expected && type.startsWith("text/html")) {
    throw fileError(name + ": the server sent an HTML page instead of " + expected + " (is the file missing there? " +
      url + ")");
  }
  return response;
}

export function fileName(url) {
  return decodeURIComponent(String(url).split(/[?#]/)[0].split("/").pop()) || String(url);
}

export function fileError(text) {
  const error = new Error(text);
  error.httpError = true;
  return error;
}

export function message(e) {
  return e && e.message ? e.message : String(e);
}

/** The whole body of `url`, read as it arrives (each chunk is progress for the watchdog and onProgress). */
export async function download(url, expected, watch) {
  const response = await watch.guard(checkedFetch(url, undefined, expected));
  const name = fileName(url);
  const total = Number(response.headers.get("Content-Length")) || undefined;
  watch.progress(name, 0, total);
  if (!response.body || !response.body.getReader) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await watch.guard(reader.read());
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    watch.progress(name, loaded, total);
  }
  return new Uint8Array(concat(chunks));
}

/** Buffers (or typed arrays) end to end, as one ArrayBuffer. */
export function concat(buffers) {
  const out = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of buffers) {
    out.set(b instanceof Uint8Array ? b : new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out.buffer;
}
