/* The demo's image inputs: the drop zone (a button: click, Enter or Space opens the file chooser; files may be
 * dropped on it), the camera (start/stop, released when the page is hidden) with single capture and live mode. */

const $ = (id) => document.getElementById(id);

/** `page`: {run(task, options), predictImage(source), setStatus(text, kind)} from app.js. */
export function wireImageInputs(page) {
  const fileInput = $("file-input");
  const zone = $("drop-zone");

  function runFile(file) {
    if (!file) return;
    page.run(() => page.predictImage(file));  // the file's own bytes: its EXIF orientation and alpha are honoured
  }

  fileInput.addEventListener("change", () => {
    runFile(fileInput.files[0]);
    fileInput.value = "";  // choosing the same file again runs it again
  });
  zone.addEventListener("click", () => fileInput.click());
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      fileInput.click();
    }
  });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    runFile(e.dataTransfer.files[0]);
  });
  wireCamera(page);
}

function wireCamera(page) {
  const video = $("camera");
  const cameraButton = $("camera-button");
  const captureButton = $("capture-button");
  const liveButton = $("live-button");
  let stream = null;
  let live = false;

  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
    cameraButton.disabled = true;
    cameraButton.title = "No camera access on this page (needs https or localhost)";
  }

  // The first frame arrives a moment after the stream starts: a capture before it waits for it (createImageBitmap
  // of a video without a frame throws).
  function frame() {
    if (video.readyState >= 2) return Promise.resolve();  // HAVE_CURRENT_DATA
    return new Promise((resolve) => {  // or the camera stopped first: predictImage then says there is no image
      video.addEventListener("loadeddata", resolve, { once: true });
      video.addEventListener("emptied", resolve, { once: true });
    });
  }

  function predictFrame() {
    return frame().then(() => page.predictImage(video));
  }

  function setLive(on) {
    const was = live;
    live = on && stream !== null;
    liveButton.setAttribute("aria-pressed", String(live));
    if (live) liveLoop();
    else if (was) page.setStatus("Live mode stopped.", "");  // the status no longer says "Live: ..."
  }

  async function liveLoop() {
    while (live && stream) {
      await page.run(predictFrame, { live: true, stillLive: () => live && stream !== null });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  function stop() {
    setLive(false);
    if (stream) page.setStatus("Camera stopped.", "");
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    video.hidden = captureButton.hidden = liveButton.hidden = true;
    cameraButton.textContent = "Start the camera";
  }

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      video.srcObject = stream;
      video.hidden = captureButton.hidden = liveButton.hidden = false;
      cameraButton.textContent = "Stop the camera";
      await video.play();
    } catch (e) {
      stop();
      page.setStatus("The camera is not available: " + (e && e.message ? e.message : String(e)), "error");
    }
  }

  cameraButton.addEventListener("click", () => (stream ? stop() : start()));
  captureButton.addEventListener("click", () => page.run(predictFrame));
  liveButton.addEventListener("click", () => setLive(!live));
  // Release the camera when the page is hidden (tab switched, phone locked, navigated away).
  document.addEventListener("visibilitychange", () => { if (document.hidden) stop(); });
  window.addEventListener("pagehide", stop);
  return { stop: stop, get stream() { return stream; } };
}
