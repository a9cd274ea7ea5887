// aeseek web page: draw or upload a digit, see its neighbours, the latent map, models and jobs.
"use strict";

const API = "/api/v1";
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
let latentMap = null;
let jobTimer = null;
let lastCode = null;  // the query's code, from the last answer: refining starts from it
const marks = new Map();  // gallery id -> "relevant" | "not-relevant"

function showStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function call(path, options = {}) {
  const response = await fetch(API + path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    throw new Error(body && body.message ? `${body.message} (${response.status})` : `HTTP ${response.status}`);
  }
  return body;
}

// ---- drawing pad: pointer events cover mouse, pen and touch ----
function setUpPad() {
  const pad = $("pad");
  const context = pad.getContext("2d");
  const clear = () => { context.fillStyle = "#fff"; context.fillRect(0, 0, pad.width, pad.height); };
  clear();
  context.lineWidth = 22;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#000";
  let drawing = false;
  const point = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
  };
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    context.beginPath();
    context.moveTo(x, y);
    context.lineTo(x + 0.1, y + 0.1);
    context.stroke();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = point(event);
    context.lineTo(x, y);
    context.stroke();
  });
  const stop = () => { drawing = false; };
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);
  $("clear-pad").addEventListener("click", clear);
  $("search-drawing").addEventListener("click", () => {
    pad.toBlob((blob) => search(blob, "drawing.png"), "image/png");
  });
}

// ---- search ----
async function search(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const k = Math.min(100, Math.max(1, parseInt($("k").value, 10) || 10));
  showStatus("Searching...");
  try {
    const body = await call(`/search?k=${k}&debug=true`, { method: "POST", body: form, headers: authHeaders() });
    renderResults(body);
    showStatus(`${body.results.length} neighbours from model ${body.model.version} (${body.model.variant}) in ${body.query_ms.toFixed(1)} ms`);
  } catch (error) {
    showStatus(error.message, true);
  }
}

function renderResults(body) {
  if (body.query_png) $("seen").src = `data:image/png;base64,${body.query_png}`;
  if (body.reconstruction_png) $("reconstruction").src = `data:image/png;base64,${body.reconstruction_png}`;
  lastCode = body.query_code;
  marks.clear();
  $("refine").disabled = true;
  const list = $("results");
  list.replaceChildren();
  for (const result of body.results) {
    const item = document.createElement("li");
    const image = document.createElement("img");
    image.src = `${result.image_url}?scale=3`;
    image.alt = `gallery image ${result.id}, a ${result.label}`;
    const caption = document.createElement("div");
    caption.append(
      `#${result.rank} \u00b7 label `, el("strong", {}, String(result.label)), el("br"),
      `distance ${result.distance.toFixed(2)} \u00b7 score ${result.score.toFixed(2)}`,
    );
    const mark = el("button", { type: "button", class: "secondary mark", "aria-label": `mark result ${result.rank}` }, "mark");
    mark.addEventListener("click", () => cycleMark(result.id, item, mark));
    item.append(image, caption, mark);
    list.append(item);
  }
  drawMap(body.query_code);
}

// ---- relevance feedback: unmarked -> relevant -> not relevant -> unmarked ----
function cycleMark(id, item, button) {
  const next = { undefined: "relevant", relevant: "not-relevant", "not-relevant": undefined }[marks.get(id)];
  if (next) marks.set(id, next); else marks.delete(id);
  item.classList.remove("relevant", "not-relevant");
  if (next) item.classList.add(next);
  button.textContent = next === "relevant" ? "relevant" : next === "not-relevant" ? "not relevant" : "mark";
  $("refine").disabled = marks.size === 0 || !lastCode;
}

async function refine() {
  const chosen = (kind) => [...marks].filter(([, mark]) => mark === kind).map(([id]) => id);
  const k = Math.min(100, Math.max(1, parseInt($("k").value, 10) || 10));
  const request = { code: lastCode, relevant: chosen("relevant"), not_relevant: chosen("not-relevant"), k };
  showStatus("Refining...");
  try {
    const body = await call("/search/feedback", {
      method: "POST", body: JSON.stringify(request), headers: { ...authHeaders(), "Content-Type": "application/json" },
    });
    renderResults(body);
    showStatus(`${body.results.length} neighbours after your marks (model ${body.model.version})`);
  } catch (error) {
    showStatus(error.message, true);
  }
}

// An element with attributes and children; strings become text nodes, never markup.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// ---- latent map ----
async function loadMap() {
  try {
    latentMap = await call("/models/active/latent-map");
    $("legend").replaceChildren(...COLOURS.map((colour, digit) => {
      return el("li", {}, el("span", { style: { background: colour } }), String(digit));
    }));
    drawMap(null);
  } catch (error) {
    latentMap = null;
  }
}

function drawMap(code) {
  const canvas = $("map");
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (!latentMap) return;
  const [minX, maxX, minY, maxY] = latentMap.bounds;
  const toCanvas = (x, y) => [
    ((x - minX) / (maxX - minX)) * (canvas.width - 20) + 10,
    canvas.height - (((y - minY) / (maxY - minY)) * (canvas.height - 20) + 10),
  ];
  for (const [x, y, label] of latentMap.points) {
    const [cx, cy] = toCanvas(x, y);
    context.fillStyle = COLOURS[label];
    context.fillRect(cx - 1.5, cy - 1.5, 3, 3);
  }
  if (code) {
    const centred = code.map((value, i) => value - latentMap.mean[i]);
    const [qx, qy] = latentMap.components.map((row) => row.reduce((sum, w, i) => sum + w * centred[i], 0));
    const [cx, cy] = toCanvas(qx, qy);
    context.strokeStyle = "#000";
    context.lineWidth = 4;
    context.beginPath();
    context.moveTo(cx - 10, cy - 10); context.lineTo(cx + 10, cy + 10);
    context.moveTo(cx + 10, cy - 10); context.lineTo(cx - 10, cy + 10);
    context.stroke();
  }
}

// ---- models ----
async function loadModels() {
  const rows = $("models").querySelector("tbody");
  try {
    const models = await call("/models");
    rows.replaceChildren(...models.data.map((model) => {
      const row = document.createElement("tr");
      const retrieval = model.metrics.retrieval || {};
      const p10 = retrieval.p_at_10 !== undefined ? retrieval.p_at_10.toFixed(4) : "-";
      const map100 = retrieval.map_at_100 !== undefined ? retrieval.map_at_100.toFixed(4) : "-";
      const mse = retrieval.reconstruction_mse !== undefined && retrieval.reconstruction_mse !== null ? retrieval.reconstruction_mse.toFixed(4) : "-";
      row.append(
        el("td", {}, el("code", {}, model.version)), el("td", {}, model.variant),
        el("td", {}, String(model.config.code_dim)), el("td", {}, p10), el("td", {}, map100), el("td", {}, mse),
        el("td"),
      );
      const cell = row.lastElementChild;
      if (model.active) {
        cell.textContent = "active";
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.textContent = "Activate";
        button.setAttribute("aria-label", `Activate model ${model.version}`);
        button.addEventListener("click", () => activate(model.version));
        cell.append(button);
      }
      return row;
    }));
  } catch (error) {
    showStatus(error.message, true);
  }
}

async function activate(version) {
  showStatus(`Activating ${version} (embedding the gallery)...`);
  try {
    await call(`/models/${version}/activate`, { method: "POST", headers: authHeaders() });
    showStatus(`Model ${version} is active.`);
    await Promise.all([loadActive(), loadModels(), loadMap()]);
  } catch (error) {
    showStatus(error.message, true);
  }
}

async function loadActive() {
  try {
    const model = await call("/models/active");
    const p10 = model.metrics.retrieval ? ` P@10 ${model.metrics.retrieval.p_at_10.toFixed(4)},` : "";
    $("model-line").textContent = `Active model: ${model.variant} ${model.version} (${model.config.code_dim}-d codes,${p10} gallery of ${model.gallery_size} images).`;
  } catch (error) {
    $("model-line").textContent = `No active model: ${error.message}`;
  }
}

// ---- training ----
async function loadVariants() {
  const variants = await call("/variants");
  const select = $("variant");
  select.replaceChildren(...variants.data.map((entry) => {
    const option = document.createElement("option");
    option.value = entry.variant;
    option.textContent = `${entry.variant}: ${entry.summary}`;
    return option;
  }));
  const fill = () => {
    const entry = variants.data.find((candidate) => candidate.variant === select.value);
    $("config").value = JSON.stringify(entry.defaults, null, 2);
  };
  select.addEventListener("change", fill);
  fill();
}

async function startTraining(event) {
  event.preventDefault();
  let body;
  try {
    body = JSON.parse($("config").value);
  } catch (error) {
    showStatus(`The config is not valid JSON: ${error.message}`, true);
    return;
  }
  try {
    const job = await call("/train", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify(body),
    });
    showStatus(`Job ${job.id} queued.`);
    await loadJobs();
  } catch (error) {
    showStatus(error.message, true);
  }
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "-";
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

async function loadJobs() {
  let jobs;
  try {
    jobs = await call("/jobs");
  } catch (error) {
    $("jobs").textContent = error.message;
    return;
  }
  const active = jobs.data.some((job) => job.state === "queued" || job.state === "running");
  $("jobs").replaceChildren(...jobs.data.slice(0, 10).map((job) => {
    const item = document.createElement("li");
    item.dataset.state = job.state;
    const progress = job.progress;
    const percent = Math.round(progress.fraction * 100);
    // Built from text nodes only: a job's error or variant is data, never markup.
    item.append(
      el("strong", {}, job.variant), " ", el("code", {}, job.id), ": ", el("span", { class: "state" }, job.state),
      ` \u00b7 ${progress.phase} \u00b7 epoch ${progress.epoch}/${progress.epochs}`,
      ` \u00b7 loss ${progress.loss !== null ? progress.loss.toFixed(4) : "-"} \u00b7 ETA ${formatSeconds(progress.eta_s)}`,
      el("progress", { max: "100", value: String(percent), "aria-label": `progress of job ${job.id}` }, `${percent}%`),
      job.model_version
        ? el("div", {}, "model ", el("code", {}, job.model_version),
            `, P@10 ${job.metrics.p_at_10 !== undefined ? job.metrics.p_at_10.toFixed(4) : "-"}`)
        : null,
      job.error ? el("div", { class: "error" }, job.error) : null,
    );
    if (job.loss_curve.length) {
      const curve = document.createElement("img");
      curve.src = `${API}/jobs/${job.id}/loss.png?at=${job.loss_curve.length}`;
      curve.alt = `loss curve of job ${job.id}`;
      item.append(curve);
    }
    if (job.state === "queued" || job.state === "running") {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary";
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", async () => {
        try { await call(`/jobs/${job.id}`, { method: "DELETE", headers: authHeaders() }); } catch (error) { showStatus(error.message, true); }
      });
      item.append(cancel);
    }
    return item;
  }));
  clearTimeout(jobTimer);
  jobTimer = setTimeout(async () => { await loadJobs(); if (!active) loadModels(); }, active ? 1000 : 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("aeseek-key") || "";
  $("api-key").addEventListener("change", () => sessionStorage.setItem("aeseek-key", $("api-key").value.trim()));
  setUpPad();
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("file").files[0];
    if (!file) { showStatus("Choose an image file first.", true); return; }
    search(file, file.name);
  });
  $("train-form").addEventListener("submit", startTraining);
  $("refine").addEventListener("click", refine);
  loadActive();
  loadMap();
  loadModels();
  loadVariants().catch((error) => showStatus(error.message, true));
  loadJobs();
});
