// @ts-check
/**
 * Voxhook dashboard: the little that needs a script. Every page works without it (forms
 * post, links link); this module adds
 *  - the drop zone: each file goes straight to a signed upload URL, with a progress bar,
 *    then becomes a transcription with the form's options;
 *  - following running jobs: regions marked data-refresh are re-read from the server while
 *    one of them says data-refresh-active;
 *  - the player: the word being spoken is highlighted, a click on a word (or a timestamp)
 *    plays from there;
 *  - copy buttons.
 * Served as is (no build step); the Content-Security-Policy allows only this file.
 */

document.documentElement.classList.add("js");

/** @returns {string} */
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

/**
 * POST JSON to the dashboard with the session's CSRF token.
 * @param {string} path
 * @param {Record<string, unknown>} body
 * @returns {Promise<any>}
 */
async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", "Accept": "application/json",
              "X-CSRF-Token": csrfToken()},
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer?.error?.message || `The server answered ${response.status}.`);
  }
  return answer;
}

// --------------------------------------------------------------------------- uploads

/**
 * PUT a file to its signed upload URL, reporting progress (0..1).
 * @param {string} url
 * @param {File} file
 * @param {(fraction: number) => void} onProgress
 * @returns {Promise<void>}
 */
function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    request.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        onProgress(1);
        resolve();
      } else {
        let message = `The upload was refused (${request.status}).`;
        try { message = JSON.parse(request.responseText).error.message; } catch { /* keep */ }
        reject(new Error(message));
      }
    });
    request.addEventListener("error", () => reject(new Error("The connection broke during the upload; try again.")));
    request.send(file);
  });
}

/** The transcribe form's options, as the dashboard's upload endpoint takes them. */
function transcribeOptions() {
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById("transcribe-form"));
  /** @type {Record<string, string>} */
  const options = {};
  if (!form) return options;
  const data = new FormData(form);
  for (const name of ["pipeline_code", "language", "speaker_count"]) {
    const value = String(data.get(name) || "").trim();
    if (value) options[name] = value;
  }
  if (data.get("diarize")) options.diarize = "true";
  return options;
}

/**
 * One file: ask for a signed URL, send the bytes, create the transcription.
 * @param {File} file
 * @param {HTMLElement} list
 */
async function uploadOne(file, list) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name;
  const state = document.createElement("span");
  state.className = "upload-state";
  state.textContent = "starting…";
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  item.append(name, state, bar);
  list.append(item);
  try {
    const upload = await postJson("/dashboard/uploads", {filename: file.name, content_type: file.type});
    if (file.size > upload.max_bytes) {
      throw new Error(`This file is larger than the upload limit (${Math.round(upload.max_bytes / 1048576)} MB).`);
    }
    state.textContent = "uploading…";
    await putFile(upload.upload_url, file, (fraction) => {
      bar.value = fraction;
      state.textContent = `${Math.round(fraction * 100)}%`;
    });
    const created = await postJson(`/dashboard/uploads/${encodeURIComponent(upload.upload_id)}/transcription`,
                                   transcribeOptions());
    state.textContent = "";
    const link = document.createElement("a");
    link.href = created.url;
    link.textContent = `queued: ${created.id} →`;
    link.dataset.created = created.id;
    state.append(link);
    item.dataset.state = "queued";
  } catch (error) {
    const message = document.createElement("span");
    message.className = "upload-error";
    message.setAttribute("role", "alert");
    message.textContent = error instanceof Error ? error.message : String(error);
    item.append(message);
    state.textContent = "failed";
    item.dataset.state = "failed";
  }
}

function setUpDropZone() {
  const zone = document.querySelector("[data-drop-zone]");
  const input = /** @type {HTMLInputElement | null} */ (document.querySelector("[data-file-input]"));
  const list = /** @type {HTMLElement | null} */ (document.querySelector("[data-upload-list]"));
  if (!zone || !input || !list) return;
  /** @param {FileList | null} files */
  const send = (files) => {
    for (const file of Array.from(files || [])) void uploadOne(file, list);
  };
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    send(/** @type {DragEvent} */ (event).dataTransfer?.files || null);
  });
  input.addEventListener("change", () => {
    send(input.files);
    input.value = "";
  });
}

// --------------------------------------------------------------------------- live regions

const REFRESH_MS = 1500;

/** Re-read the page while a region says something is still running; swap the regions. */
function followRunningJobs() {
  if (!document.querySelector("[data-refresh][data-refresh-active]")) return;
  window.setTimeout(async () => {
    try {
      const response = await fetch(window.location.href, {credentials: "same-origin",
                                                          headers: {"Accept": "text/html"}});
      if (response.redirected || !response.ok) return;  // signed out, or gone: stop quietly
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-refresh]")) {
        const replacement = region.id ? fresh.getElementById(region.id) : null;
        if (replacement) region.replaceWith(document.importNode(replacement, true));
      }
      setUpPlayer();
    } catch { /* a network hiccup: try again next time */ }
    followRunningJobs();
  }, REFRESH_MS);
}

// --------------------------------------------------------------------------- player

function setUpPlayer() {
  const audio = /** @type {HTMLAudioElement | null} */ (document.querySelector("audio[data-player]"));
  const transcript = document.querySelector("[data-transcript]");
  if (!audio || !transcript || audio.dataset.ready) return;
  audio.dataset.ready = "1";
  const words = /** @type {HTMLElement[]} */ (Array.from(transcript.querySelectorAll(".word[data-start]")));
  const starts = words.map((word) => Number(word.dataset.start));
  const ends = words.map((word) => Number(word.dataset.end));
  /** @type {HTMLElement | null} */
  let current = null;

  /** The word at time t: the last one starting at or before t, if t is before its end. */
  const wordAt = (/** @type {number} */ t) => {
    let low = 0, high = starts.length - 1, found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (starts[middle] <= t) { found = middle; low = middle + 1; } else { high = middle - 1; }
    }
    return found >= 0 && t < Math.max(ends[found], starts[found] + 0.05) ? words[found] : null;
  };
  const highlight = () => {
    const word = wordAt(audio.currentTime);
    if (word === current) return;
    current?.classList.remove("current");
    word?.classList.add("current");
    current = word;
  };
  /** @param {number} seconds */
  const playFrom = (seconds) => {
    audio.currentTime = seconds;
    highlight();
    void audio.play().catch(() => { /* no sound device or autoplay refused: the seek stands */ });
  };
  /** @type {number | undefined} */
  let frame;
  const tick = () => {
    highlight();
    frame = audio.paused ? undefined : window.requestAnimationFrame(tick);
  };
  audio.addEventListener("play", () => { if (frame === undefined) frame = window.requestAnimationFrame(tick); });
  for (const type of ["timeupdate", "seeked"]) audio.addEventListener(type, highlight);
  transcript.addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    const word = target.closest(".word[data-start]");
    const seek = target.closest("[data-seek]");
    const at = word ? Number(/** @type {HTMLElement} */ (word).dataset.start)
      : seek ? Number(/** @type {HTMLElement} */ (seek).dataset.seek) : NaN;
    if (!Number.isNaN(at)) playFrom(at);
  });
}

// --------------------------------------------------------------------------- copy

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = /** @type {HTMLInputElement | null} */ (
        document.getElementById(/** @type {HTMLElement} */ (button).dataset.copy || ""));
      const status = button.closest("section, details")?.querySelector("[data-copy-status]");
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.value);
        if (status) status.textContent = "Copied to the clipboard.";
      } catch {
        source.select();
        if (status) status.textContent = "Select the text and copy it (Ctrl+C / ⌘C).";
      }
    });
  }
}

setUpDropZone();
setUpPlayer();
setUpCopyButtons();
followRunningJobs();
