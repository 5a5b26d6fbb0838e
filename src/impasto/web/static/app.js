// impasto's page: choose images, set options, start a job, watch it form, keep the results.
// Plain JavaScript, no build step; everything it knows comes from /api/options and /api/jobs.
"use strict";

const FINISHED = new Set(["done", "failed", "cancelled"]);
const EVENTS = ["state", "queued", "started", "progress", "stopping", "cancelling", "done", "failed", "cancelled"];
const NO_KEY = "This page has lost the server's key (it was restarted with --new-token?). " +
  "Open the address impasto serve printed.";

const $ = (id) => document.getElementById(id);

const app = {
  options: null,   // GET /api/options
  controls: [],    // {field, input, get(), set(text)}
  content: null,   // File
  styles: [],      // Files
  jobs: new Map(),      // id -> latest snapshot
  sources: new Map(),   // id -> EventSource
  received: new Map(),  // id -> performance.now() of the latest snapshot
  curves: new Map(),    // id -> [[step, total loss], ...]
  current: null,        // id of the job on the stage
  shown: null,          // URL of the image on the stage
};

async function api(path, options = {}) {
  // Every call to the server's API: its key travels in the page's cookie.
  const response = await fetch(path, options);
  if (response.status === 401) showMessage(NO_KEY);
  return response;
}

// ---- small helpers ----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}

function number(value) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  const a = Math.abs(value);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(3)));
}

function nice(value) {
  // Two significant digits for a slider's value: 0.1, 2.5, 37, 120.
  if (value === 0) return "0";
  const digits = Math.max(0, 1 - Math.floor(Math.log10(Math.abs(value))));
  return String(Number(value.toFixed(Math.min(digits, 6))));
}

function detailText(detail) {
  if (!detail) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return JSON.stringify(detail);
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind === "info" ? " info" : "");
  box.hidden = !text;
}

function clearInvalid() {
  for (const node of document.querySelectorAll(".control.invalid")) node.classList.remove("invalid");
}

function markInvalid(message) {
  // Messages name the option as on the command line (--style-weight); point at its control.
  const match = /^--([a-z0-9-]+)/.exec(message || "");
  if (!match) return;
  const control = document.querySelector(`.control[data-option="--${match[1]}"]`);
  if (!control) return;
  control.classList.add("invalid");
  const details = control.closest("details");
  if (details) details.open = true;
  control.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// ---- options ----------------------------------------------------------------------------------

function buildControl(field) {
  const id = "opt-" + field.name;
  const wrap = el("div", { class: "control", "data-name": field.name, "data-option": field.option });
  const label = el("label", { for: id, title: field.help, text: field.label });
  wrap.append(label);
  let input, get, set;

  if (field.choices.length) {
    input = el("select", { id, name: field.name });
    for (const choice of field.choices) {
      const text = (field.labels && field.labels[choice]) || choice;
      input.append(el("option", { value: choice, text }));
    }
    get = () => input.value;
    set = (v) => { input.value = v; };
    wrap.classList.add("wide");
    wrap.append(input);
  } else if (field.kind === "bool") {
    input = el("input", { id, type: "checkbox", name: field.name });
    get = () => (input.checked ? "true" : "false");
    set = (v) => { input.checked = v === "true"; };
    wrap.classList.add("wide");
    wrap.append(input);
  } else if (field.slider && (field.kind === "int" || field.kind === "float")) {
    const s = field.slider;
    const log = !!s.log;
    const slider = el("input", {
      id: id + "-slider", type: "range", "aria-label": field.label,
      min: log ? 0 : s.min, max: log ? 1000 : s.max, step: log ? 1 : (s.step || "any"),
    });
    input = el("input", { id, type: "number", name: field.name, step: "any", min: field.kind === "int" ? 1 : 0 });
    const toSlider = (v) => (log ? (1000 * Math.log(v / s.min)) / Math.log(s.max / s.min) : v);
    const fromSlider = (p) => (log ? s.min * Math.pow(s.max / s.min, p / 1000) : Number(p));
    slider.addEventListener("input", () => {
      const v = fromSlider(Number(slider.value));
      input.value = field.kind === "int" ? String(Math.round(v)) : (log ? nice(v) : String(Number(v.toFixed(4))));
      wrap.classList.remove("invalid");
    });
    input.addEventListener("input", () => {
      const v = Number(input.value);
      if (input.value !== "" && isFinite(v) && (!log || v > 0)) slider.value = toSlider(v);
    });
    get = () => input.value.trim();
    set = (v) => { input.value = v; if (v !== "") slider.value = toSlider(Number(v)); };
    wrap.append(slider, input);
  } else if (field.kind === "int" || field.kind === "float") {
    input = el("input", { id, type: "number", name: field.name, step: field.kind === "int" ? 1 : "any" });
    get = () => input.value.trim();
    set = (v) => { input.value = v; };
    wrap.classList.add("wide");
    wrap.append(input);
  } else {
    input = el("input", {
      id, type: "text", name: field.name, spellcheck: "false",
      placeholder: field.nullable ? "default" : "",
    });
    get = () => input.value.trim();
    set = (v) => { input.value = v; };
    wrap.classList.add("wide");
    wrap.append(input);
  }
  // On the control, so that a slider's drag counts as the user's own setting too.
  wrap.addEventListener("input", () => { wrap.classList.remove("invalid"); showPreset(""); });
  const hint = field.main ? field.hint : field.help;
  if (hint) wrap.append(el("div", { class: "hint", text: hint }));
  set(field.default);
  return { field, input, get, set };
}

function buildOptions() {
  const main = $("main-controls"), advanced = $("advanced-controls");
  for (const field of app.options.fields) {
    const control = buildControl(field);
    app.controls.push(control);
    const node = control.input.closest(".control");
    // Advanced options go by their API name, which is also how errors and the docs name them.
    if (!field.main) node.querySelector("label").textContent = field.name;
    (field.main ? main : advanced).append(node);
  }
  // A style weight the user sets is meant as given, as on the command line: the balance turns
  // to fixed, where the user can see it (and turn it back to auto, which then scales the weight).
  const weight = controlOf("style_weight"), balance = controlOf("balance");
  if (weight && balance) weight.input.closest(".control").addEventListener("input", () => balance.set("fixed"));
}

function controlOf(name) {
  return app.controls.find((c) => c.field.name === name);
}

function setOptions(values) {
  // Every control to its default, then the values given (a preset's, or a job's settings).
  for (const { field, set } of app.controls) {
    const value = Object.prototype.hasOwnProperty.call(values, field.name) ? values[field.name] : field.default;
    set(formatValue(value));
  }
  clearInvalid();
}

function formatValue(value) {
  // As the server formats a field (web/options.py format_value): lists comma-separated, null empty.
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(formatValue).join(",");
  return String(value);
}

const DEFAULT_RECIPE = "good results in little time; every setting below can still be changed";

function buildPresets() {
  const select = $("preset");
  for (const preset of app.options.presets) select.append(el("option", { value: preset.name, text: preset.label }));
  // A recipe sets how the picture is made; what it is made of (its size, seed, colours...)
  // stays as chosen. Switching recipes first puts every recipe's fields back to the defaults.
  const recipeFields = new Set(app.options.presets.flatMap((p) => Object.keys(p.values)));
  recipeFields.add("balance"); // a recipe's weight is scaled by the pair's balance, as --preset's is
  select.addEventListener("change", () => {
    const preset = app.options.presets.find((p) => p.name === select.value);
    for (const { field, set } of app.controls) {
      if (!recipeFields.has(field.name)) continue;
      set(preset && field.name in preset.values ? preset.values[field.name] : field.default);
    }
    clearInvalid();
    showPreset(preset ? preset.name : "");
  });
  showPreset("");
}

function showPreset(name) {
  // The recipe in use, and what it does; "" once the settings are the user's own.
  const preset = app.options.presets.find((p) => p.name === name);
  $("preset").value = preset ? preset.name : "";
  $("preset-hint").textContent = preset ? preset.description : DEFAULT_RECIPE;
}

function reuseSettings(job) {
  // The whole configuration the job ran with, as it was sent: the defaults of then included.
  setOptions(job.settings || {});
  showPreset("");
  showMessage(`Settings of ${job.content_name} × ${job.style_names.join(" + ")} restored; choose the images and press Start.`, "info");
  $("job-form").scrollIntoView({ behavior: "smooth", block: "start" });
}

function changedOptions() {
  // Only what differs from the defaults is sent: the server fills in the rest.
  const out = {};
  for (const { field, get } of app.controls) {
    const value = get();
    if (value === "" || value === field.default) continue;
    if ((field.kind === "int" || field.kind === "float") && Number(value) === Number(field.default)) continue;
    out[field.name] = value;
  }
  // With the weight goes the balance it was meant under (the server takes a weight alone as fixed).
  const balance = controlOf("balance");
  if ("style_weight" in out && balance) out.balance = balance.get();
  return out;
}

// ---- choosing images --------------------------------------------------------------------------

function acceptable(file) {
  const limits = app.options ? app.options.limits : null;
  if (file.type && !file.type.startsWith("image/")) {
    showMessage(`'${file.name}' is not an image (it is ${file.type}).`);
    return false;
  }
  if (limits && file.size > limits.max_upload_bytes) {
    const mb = (limits.max_upload_bytes / 1048576).toFixed(0);
    showMessage(`'${file.name}' is ${(file.size / 1048576).toFixed(1)} MB; this server accepts images up to ${mb} MB.`);
    return false;
  }
  return true;
}

function setContent(file) {
  if (!acceptable(file)) return;
  showMessage("");
  app.content = file;
  drawThumbs("content");
}

function addStyles(files) {
  const max = app.options ? app.options.limits.max_styles : 1;
  for (const file of files) {
    if (!acceptable(file)) continue;
    showMessage("");
    if (max === 1) app.styles = [file];
    else if (app.styles.length < max) app.styles.push(file);
    else showMessage(`At most ${max} paintings at once.`, "info");
  }
  drawThumbs("style");
}

function drawThumbs(role) {
  const files = role === "content" ? (app.content ? [app.content] : []) : app.styles;
  const box = $(role + "-thumbs");
  for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  box.replaceChildren();
  files.forEach((file, i) => {
    const remove = el("button", {
      type: "button", class: "remove", title: "Remove", "aria-label": "Remove " + file.name, text: "×",
      onclick: (e) => {
        e.preventDefault();
        e.stopPropagation();
        if (role === "content") app.content = null;
        else app.styles.splice(i, 1);
        drawThumbs(role);
      },
    });
    box.append(el("span", { class: "thumb" },
      el("img", { src: URL.createObjectURL(file), alt: file.name }),
      el("span", { class: "name", text: file.name }), remove));
  });
  if (role === "style" && files.length && files.length < app.options.limits.max_styles) {
    box.append(el("span", { class: "add-more", text: "+ add another" }));
  }
  $(role + "-drop").classList.toggle("filled", files.length > 0);
  $(role + "-input").value = "";
}

function setUpDrop(role) {
  const zone = $(role + "-drop"), input = $(role + "-input");
  const take = (files) => (role === "content" ? files.length && setContent(files[0]) : addStyles(files));
  input.addEventListener("change", () => take([...input.files]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take([...e.dataTransfer.files]);
  });
}

async function useExample(example) {
  const response = await fetch(example.url);
  const blob = await response.blob();
  const file = new File([blob], example.name, { type: blob.type || "image/jpeg" });
  if (example.role === "content") setContent(file);
  else addStyles([file]);
}

function buildExamples() {
  for (const role of ["content", "style"]) {
    const box = $(role + "-examples");
    const examples = app.options.examples.filter((e) => e.role === role);
    if (!examples.length) continue;
    box.append("or try");
    for (const example of examples) {
      box.append(el("button", { type: "button", class: "example", title: `${example.title} (${example.credit})`,
        onclick: () => useExample(example) },
      el("img", { src: example.url, alt: "" }), example.title));
    }
  }
  $("credits").textContent = "Example images: " +
    app.options.examples.map((e) => `${e.title} (${e.credit})`).join("; ") + ".";
}

// ---- jobs -------------------------------------------------------------------------------------

async function start(event) {
  event.preventDefault();
  clearInvalid();
  if (!app.content) return showMessage("Choose a photo first (step 1).");
  if (!app.styles.length) return showMessage("Choose a painting (step 2).");
  const form = new FormData();
  form.append("content", app.content, app.content.name);
  for (const file of app.styles) form.append("style", file, file.name);
  for (const [name, value] of Object.entries(changedOptions())) form.append(name, value);

  showMessage("");
  $("start").disabled = true;
  let response, data;
  try {
    response = await api("/api/jobs", { method: "POST", body: form });
    data = await response.json().catch(() => ({}));
  } catch (e) {
    showMessage("The server did not answer. Is impasto serve still running?");
    return;
  } finally {
    $("start").disabled = false;
  }
  if (!response.ok) {
    const text = detailText(data.detail) || `The server refused the job (HTTP ${response.status}).`;
    showMessage(text);
    markInvalid(text);
    return;
  }
  app.curves.set(data.id, []);
  focus(data.id);
  track(data);
}

function track(snapshot) {
  update(snapshot);
  const id = snapshot.id;
  if (FINISHED.has(snapshot.state) || app.sources.has(id)) return;
  const source = new EventSource(snapshot.events_url);
  for (const name of EVENTS) {
    source.addEventListener(name, (e) => {
      const data = JSON.parse(e.data);
      update(data, name);
      if (FINISHED.has(data.state)) {
        source.close();
        app.sources.delete(id);
        refreshJobs();  // the quota may have removed older jobs to keep this one
      }
    });
  }
  source.onerror = () => {
    if (id === app.current && !FINISHED.has(app.jobs.get(id).state)) {
      $("status").textContent = "Connection to the server lost; retrying…";
    }
  };
  app.sources.set(id, source);
}

function update(snapshot, event) {
  const id = snapshot.id;
  app.jobs.set(id, snapshot);
  app.received.set(id, performance.now());
  if (event === "progress" && snapshot.total_loss !== null) {
    if (!app.curves.has(id)) app.curves.set(id, []);
    const curve = app.curves.get(id);
    if (!curve.length || curve[curve.length - 1][0] < snapshot.step) curve.push([snapshot.step, snapshot.total_loss]);
  }
  upsertCard(snapshot);
  if (id === app.current) render();
}

function focus(id) {
  app.current = id;
  for (const card of document.querySelectorAll(".card")) card.classList.toggle("current", card.dataset.id === id);
  render();
}

function statusText(job) {
  switch (job.state) {
    case "queued":
      return job.position > 1 ? `In the queue: ${job.position - 1} jobs before yours` : "Next in line: starts when the current job ends";
    case "running":
      if (job.keeping) return "Stopping after this step; the picture so far will be kept…";
      if (job.cancelling) return "Cancelling…";
      return job.step ? `Step ${job.step} of ${job.total_steps}${balanced(job)}` : "Preparing: loading the network…";
    case "done":
      if (job.stopped === "time limit") {
        return `Stopped at the server's time limit, step ${job.step} of ${job.total_steps}: the picture so far`;
      }
      if (job.stopped) return `Stopped at step ${job.step} of ${job.total_steps}: the picture so far`;
      return `Done: ${job.step} steps in ${clock(job.elapsed)}${balanced(job)}`;
    case "cancelled":
      return job.step ? `Cancelled at step ${job.step}` : "Cancelled before it started";
    case "failed":
      return "Failed";
    default:
      return job.state;
  }
}

function balanced(job) {
  // The weight the automatic balance chose for this pair, as the command line prints it.
  return job.style_weight_used ? ` · style weight ${Number(job.style_weight_used.toPrecision(3))} for this pair` : "";
}

function shortStatus(job) {
  if (job.state === "queued") return `Queued: #${job.position}`;
  if (job.state === "running" && !job.cancelling) return job.step ? `Step ${job.step} of ${job.total_steps}` : "Getting ready…";
  if (job.state === "done") return job.stopped ? `Stopped at step ${job.step}` : "Done";
  if (job.state === "failed") return "Failed";
  return statusText(job);
}

function showImage(url, kind) {
  if (!url || url === app.shown) return;
  app.shown = url;
  const loader = new Image();
  loader.onload = () => {
    if (app.shown !== url) return;
    const stage = $("stage");
    stage.src = url;
    stage.dataset.kind = kind;
    if (kind === "preview") stage.dataset.previews = String(Number(stage.dataset.previews) + 1);
    stage.hidden = false;
    $("placeholder").hidden = true;
  };
  loader.src = url;
}

function clearImage(job) {
  // A job with no picture yet: say what it is waiting for, rather than show another job's.
  app.shown = null;
  $("stage").hidden = true;
  $("placeholder").hidden = false;
  const waiting = { queued: "Waiting for its turn…", running: "Getting ready…" }[job.state];
  $("placeholder-text").textContent = waiting || "No picture for this job.";
  $("placeholder-hint").textContent = waiting ? "The picture will form here." : "";
}

function render() {
  const job = app.jobs.get(app.current);
  if (!job) return;
  const bar = $("bar");
  const fraction = job.total_steps ? job.step / job.total_steps : 0;
  const done = job.state === "done";
  bar.classList.toggle("waiting", job.state === "queued" || (job.state === "running" && !job.step));
  bar.classList.toggle("done", done);
  bar.classList.toggle("failed", job.state === "failed");
  $("bar-fill").style.width = (done ? 100 : Math.round(fraction * 1000) / 10) + "%";
  bar.setAttribute("aria-valuenow", String(done ? 100 : Math.round(fraction * 100)));
  $("status").textContent = statusText(job);
  tick();

  const losses = $("losses");
  losses.replaceChildren();
  const terms = Object.entries(job.losses || {});
  if (terms.length) terms.push(["total", job.total_loss]);
  for (const [term, value] of terms) losses.append(el("div", {}, el("dt", { text: term }), el("dd", { text: number(value) })));
  drawCurve(app.curves.get(job.id) || []);

  if (done) showImage(job.result_url, "result");
  else if (job.preview_url) showImage(job.preview_url, "preview");
  else clearImage(job);
  showBefore(done ? job.photo_url : null);

  const download = $("download");
  download.hidden = !done;
  if (done) download.href = job.result_url;
  $("reuse").hidden = !job.settings;
  const names = `${job.content_name} × ${job.style_names.join(" + ")}`;
  $("result-info").textContent = done ? `${job.width}×${job.height} px · ${names}` : (job.state === "failed" ? "" : names);
  if (job.state === "failed") showMessage(job.error || "The job failed.");
  const stoppable = job.state === "running" && !job.cancelling;
  $("stop").disabled = !stoppable;
  // Cancel stays possible after "stop and keep": it throws the picture away after all.
  $("cancel").disabled = !(job.state === "queued" || (job.state === "running" && (!job.cancelling || job.keeping)));
}

function tick() {
  // Between events, the clock keeps moving.
  const job = app.jobs.get(app.current);
  if (!job) return;
  const since = job.state === "running" ? (performance.now() - app.received.get(job.id)) / 1000 : 0;
  $("elapsed").textContent = job.started && job.state !== "done" ? `${clock(job.elapsed + since)} elapsed` : "";
  let eta = "", note = "";
  if (job.state === "running" && job.eta !== null) {
    const left = Math.max(0, job.eta - since);
    const limit = app.options.limits.max_seconds;
    eta = `about ${clock(left)} left`;
    // The server stops a job at its time limit and keeps the picture: say so before it happens.
    if (limit && job.elapsed + since + left > limit) {
      note = `This server stops a job after ${clock(limit)} and keeps the picture it has then.`;
    }
  }
  $("eta").textContent = eta;
  $("limit-note").textContent = note;
  $("limit-note").hidden = !note;
}

function drawCurve(points) {
  const canvas = $("curve");
  canvas.hidden = points.length < 2;
  if (canvas.hidden) return;
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 220, h = canvas.clientHeight || 44;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const ys = points.map(([, v]) => Math.log10(Math.max(v, 1e-12)));
  const lo = Math.min(...ys), hi = Math.max(...ys);
  const x0 = points[0][0], x1 = points[points.length - 1][0];
  const px = (s) => 2 + ((s - x0) / Math.max(1, x1 - x0)) * (w - 4);
  const py = (y) => 3 + (1 - (y - lo) / Math.max(1e-9, hi - lo)) * (h - 6);
  ctx.beginPath();
  points.forEach(([s], i) => (i ? ctx.lineTo(px(s), py(ys[i])) : ctx.moveTo(px(s), py(ys[i]))));
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#2f5d9b";
  ctx.lineJoin = "round";
  ctx.stroke();
}

async function cancel(keep) {
  // Stop the job on the stage: keep = the picture so far becomes its result.
  const id = app.current;
  if (!id) return;
  $("stop").disabled = true;
  if (!keep) $("cancel").disabled = true;
  const action = keep ? "stop" : "cancel";
  const response = await api(`/api/jobs/${id}/${action}`, { method: "POST" }).catch(() => null);
  if (response && response.ok) update(await response.json());
}

async function remove(id) {
  const job = app.jobs.get(id);
  const what = job ? `${job.content_name} × ${job.style_names.join(" + ")}` : "this picture";
  const running = job && !FINISHED.has(job.state);
  if (!window.confirm(`Delete ${what}${running ? " (it stops first)" : ""}? Its files are removed from the server.`)) return;
  const response = await api(`/api/jobs/${id}`, { method: "DELETE" }).catch(() => null);
  if (!response || !(response.ok || response.status === 404)) {
    showMessage("The server did not delete it: " + (response ? response.status : "no answer"));
    return;
  }
  forget(id);
}

function forget(id) {
  // A job the server no longer has: off the gallery, and off the stage.
  const source = app.sources.get(id);
  if (source) source.close();
  app.sources.delete(id);
  app.jobs.delete(id);
  app.curves.delete(id);
  const card = $("gallery").querySelector(`[data-id="${id}"]`);
  if (card) card.remove();
  countCards();
  if (app.current === id) {
    app.current = null;
    app.shown = null;
    $("stage").hidden = true;
    $("placeholder").hidden = false;
    $("placeholder-text").textContent = "Your picture will form here.";
    $("placeholder-hint").textContent = "Choose a photo and a painting, then press Start.";
    showBefore(null);
    for (const id of ["download", "reuse"]) $(id).hidden = true;
    $("result-info").textContent = $("status").textContent = "";
    $("losses").replaceChildren();
    $("curve").hidden = true;
    $("stop").disabled = $("cancel").disabled = true;
  }
}

// ---- before and after -------------------------------------------------------------------------

function showBefore(url) {
  const before = $("before");
  $("compare-row").hidden = !url;
  if (!url) {
    before.hidden = $("split").hidden = true;
    before.removeAttribute("src");
    return;
  }
  if (before.getAttribute("src") !== url) {
    before.src = url;
    $("compare").value = "0";
  }
  before.hidden = false;
  placeSplit();
}

function placeSplit() {
  // The photo covers the picture from its left edge to the slider's place; both images share
  // one box and one size, so the photo's pixels lie exactly over the result's.
  const before = $("before"), stage = $("stage");
  if (before.hidden || !stage.naturalWidth) return;
  const t = Number($("compare").value) / 1000;
  const box = stage.getBoundingClientRect();
  const pad = parseFloat(getComputedStyle(stage).paddingLeft) || 0;
  const inner = { w: box.width - 2 * pad, h: box.height - 2 * pad };
  const scale = Math.min(inner.w / stage.naturalWidth, inner.h / stage.naturalHeight);
  const drawn = stage.naturalWidth * scale;
  const left = pad + (inner.w - drawn) / 2;
  const x = left + drawn * t;
  before.style.clipPath = `inset(0 ${Math.max(0, box.width - x)}px 0 0)`;
  const split = $("split");
  split.hidden = t <= 0 || t >= 1;
  split.style.left = `${stage.offsetLeft + x}px`;
}

// ---- gallery ----------------------------------------------------------------------------------

function upsertCard(job) {
  // The gallery: every job the server keeps, newest first (click one to show it on the stage).
  const gallery = $("gallery");
  let card = gallery.querySelector(`[data-id="${job.id}"]`);
  if (!card) {
    card = el("div", { class: "card", "data-id": job.id, title: "Show on the stage", onclick: () => focus(job.id) },
      el("div", { class: "pic" }, el("img", { alt: `${job.content_name} in the style of ${job.style_names.join(", ")}`, loading: "lazy" })),
      el("button", { type: "button", class: "delete", title: "Delete this picture from the server", "aria-label": "Delete", text: "×",
        onclick: (e) => { e.stopPropagation(); remove(job.id); } }),
      el("div", { class: "meta" },
        el("strong", { text: job.content_name }),
        el("span", { text: "in the style of " + job.style_names.join(" + ") }),
        el("span", { class: "state" }),
        el("span", { class: "row" })));
    card.classList.toggle("current", job.id === app.current);
    // Cards arrive newest last when the page loads, newest first afterwards: keep them by date.
    const later = [...gallery.children].find((c) => (app.jobs.get(c.dataset.id) || {}).created < job.created);
    gallery.insertBefore(card, later || null);
    countCards();
  }
  const done = job.state === "done";
  card.classList.toggle("active", !FINISHED.has(job.state));
  card.classList.toggle("failed", job.state === "failed" || job.state === "cancelled");
  const img = card.querySelector("img");
  const src = done ? job.result_url : job.preview_url;
  if (src && img.getAttribute("src") !== src) img.src = src;
  const state = card.querySelector(".state"), row = card.querySelector(".row");
  const key = shortStatus(job);
  if (state.dataset.key === key) return;
  state.dataset.key = key;
  state.textContent = done && !job.stopped ? `${job.width}×${job.height} px` : key;
  state.title = job.error || "";
  state.classList.toggle("live", !FINISHED.has(job.state));
  const actions = [];
  if (done) {
    actions.push(el("a", { href: job.result_url, download: "", text: "Download", onclick: (e) => e.stopPropagation() }));
  }
  if (job.settings) {
    actions.push(el("button", { type: "button", class: "link", text: "Reuse", "aria-label": "Reuse settings", title: "Put this job's settings in the form",
      onclick: (e) => { e.stopPropagation(); reuseSettings(app.jobs.get(job.id)); } }));
  }
  row.replaceChildren(...actions);
}

function countCards() {
  const n = $("gallery").children.length;
  $("gallery-wrap").hidden = !n;
  $("gallery-count").textContent = n ? `(${n})` : "";
}

async function refreshJobs() {
  // The server's jobs, as it has them now: new ones tracked, removed ones forgotten.
  const response = await api("/api/jobs").catch(() => null);
  if (!response || !response.ok) return [];
  const jobs = await response.json();
  const ids = new Set(jobs.map((j) => j.id));
  for (const id of [...app.jobs.keys()]) if (!ids.has(id)) forget(id);
  for (const job of jobs.slice().reverse()) track(job);
  return jobs;
}

async function loadJobs() {
  const jobs = await refreshJobs();
  // On the stage: the latest job still under way, else the latest job.
  const active = jobs.find((j) => !FINISHED.has(j.state));
  const last = active || jobs[0];
  if (last) focus(last.id);
}

// ---- start ------------------------------------------------------------------------------------

async function init() {
  const response = await api("/api/options");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  app.options = await response.json();
  $("version").textContent = app.options.version;
  if (app.options.limits.max_styles === 1) {
    $("style-input").multiple = false;
    $("style-heading").textContent = "Painting";
    $("style-many").textContent = "one";
  }
  buildOptions();
  buildPresets();
  buildExamples();
  setUpDrop("content");
  setUpDrop("style");
  $("job-form").addEventListener("submit", start);
  $("stop").addEventListener("click", () => cancel(true));
  $("cancel").addEventListener("click", () => cancel(false));
  $("reuse").addEventListener("click", () => reuseSettings(app.jobs.get(app.current)));
  $("compare").addEventListener("input", placeSplit);
  $("stage").addEventListener("load", placeSplit);
  window.addEventListener("resize", placeSplit);
  $("reset").addEventListener("click", () => {
    setOptions({});
    showPreset("");
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshJobs(); });
  setInterval(tick, 500);
  await loadJobs();
  document.body.dataset.ready = "true";
}

init().catch((e) => showMessage("The page could not load its settings from the server: " + e));
