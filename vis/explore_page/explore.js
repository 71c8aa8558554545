// npcnn explore: the page. Plain JavaScript, no build step, nothing from the internet.
//
// window.EXPLORE (data.js) holds the network's layout and example images;
// with a server, every stroke POSTs the 28x28 pixels to api/predict and a
// click on a map POSTs them with the map to api/unit; a static export has
// every answer for its example images in EXPLORE.static instead.
// Arrays arrive as {shape, f32: base64 of little-endian float32}.
// window.explorer is the page's state, kept readable for tests.
"use strict";

(function () {
  const E = window.EXPLORE;
  const STATIC = E.static || null;
  const [H, W] = E.size;
  const state = {
    pixels: new Float32Array(H * W),  // the drawing, 0..1, white ink on black
    example: null,                    // index of the test image shown, or null once drawn on
    response: null,                   // the last prediction: {probabilities, predicted, maps, dense}
    sent: null,                       // the pixels that prediction was computed from
    selected: null,                   // {layer, channel}
    select: "map",                    // "map" (the whole map) or "max" (its strongest unit)
    unit: null,                       // the last unit: {layer, channel, select, projection, guided, pixels}
    predictions: 0, units: 0,         // answers received, for tests to wait on
    busy: false, again: false,
  };
  window.explorer = state;

  const $ = (id) => document.getElementById(id);

  function decode(message) {
    const text = atob(message.f32);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return {shape: message.shape, values: new Float32Array(bytes.buffer)};
  }

  // -- drawing arrays on canvases ---------------------------------------------

  function maxAbs(values) {
    let m = 0;
    for (const v of values) m = Math.max(m, Math.abs(v));
    return m;
  }

  // Diverging: red positive, blue negative, white zero; |v| / scale saturates at 1.
  function paint(canvas, values, h, w, scale, grey) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      let r, g, b;
      if (grey) {
        r = g = b = Math.round(255 * Math.min(1, Math.max(0, values[i])));
      } else {
        const t = scale > 0 ? Math.min(1, Math.abs(values[i]) / scale) : 0;
        const fade = Math.round(255 * (1 - t));
        [r, g, b] = values[i] >= 0 ? [255, fade, fade] : [fade, fade, 255];
      }
      img.data.set([r, g, b, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function bars(canvas, values, highlight) {
    const n = values.length, width = Math.max(n * 3, 240), height = 48;
    canvas.width = width; canvas.height = height;
    canvas.classList.add("bars");
    const ctx = canvas.getContext("2d");
    const scale = maxAbs(values) || 1, mid = height / 2, step = width / n;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(width, mid); ctx.stroke();
    values.forEach((v, i) => {
      ctx.fillStyle = i === highlight ? "#e80" : v >= 0 ? "#c33" : "#36c";
      const h = (Math.abs(v) / scale) * (mid - 1);
      ctx.fillRect(i * step, v >= 0 ? mid - h : mid, Math.max(1, step - 1), h);
    });
    return canvas;
  }

  function figure(values, h, w, caption, size, scale) {
    const box = document.createElement("div");
    box.className = "figure" + (size ? " " + size : "");
    box.appendChild(paint(document.createElement("canvas"), values, h, w, scale || maxAbs(values)));
    const text = document.createElement("div");
    text.className = "caption"; text.textContent = caption;
    box.appendChild(text);
    return box;
  }

  function paragraph(text, className) {
    const p = document.createElement("p");
    p.textContent = text;
    if (className) p.className = className;
    return p;
  }

  // -- the input ---------------------------------------------------------------

  const pad = $("pad");

  function showPad() { paint(pad, state.pixels, H, W, 1, true); }

  // A soft round brush about 2.5 pixels wide, as MNIST's strokes are.
  function stamp(cx, cy) {
    for (let y = Math.floor(cy - 2); y <= Math.ceil(cy + 2); y++) {
      for (let x = Math.floor(cx - 2); x <= Math.ceil(cx + 2); x++) {
        if (y < 0 || y >= H || x < 0 || x >= W) continue;
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const ink = Math.min(1, Math.max(0, 1.6 - d));
        state.pixels[y * W + x] = Math.max(state.pixels[y * W + x], ink);
      }
    }
  }

  let last = null;
  function padPoint(event) {
    const r = pad.getBoundingClientRect();
    return [(event.clientX - r.left) / r.width * W, (event.clientY - r.top) / r.height * H];
  }
  function strokeTo(point) {
    const [x0, y0] = last || point, [x1, y1] = point;
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2));
    for (let s = 1; s <= steps; s++) stamp(x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps);
    last = point;
    state.example = null;
    markExample();
    showPad();
    compute();
  }

  if (STATIC) {
    pad.classList.add("locked");
    $("draw-note").textContent = "drawing needs the server (npcnn explore --checkpoint ...)";
    $("clear").disabled = true;
  } else {
    pad.addEventListener("pointerdown", (e) => {
      pad.setPointerCapture(e.pointerId);
      last = null;
      strokeTo(padPoint(e));
    });
    pad.addEventListener("pointermove", (e) => { if (last) strokeTo(padPoint(e)); });
    const end = () => { last = null; };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
    $("clear").addEventListener("click", () => {
      state.pixels.fill(0); state.example = null; markExample(); showPad(); compute();
    });
  }

  const exampleCanvases = E.examples.map((example, i) => {
    const c = paint(document.createElement("canvas"), decode(example.pixels).values, H, W, 1, true);
    c.title = "test image of a " + example.label;
    c.addEventListener("click", () => chooseExample(i));
    $("examples").appendChild(c);
    return c;
  });

  function markExample() {
    exampleCanvases.forEach((c, i) => c.classList.toggle("chosen", i === state.example));
  }

  function chooseExample(i) {
    state.pixels.set(decode(E.examples[i].pixels).values);
    state.example = i;
    markExample();
    showPad();
    compute();
  }

  // -- talking to the server, or reading the precomputed answers ----------------

  async function post(path, body) {
    const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify(body)});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  // One request at a time; strokes that come in meanwhile are sent together
  // once it returns, so the maps follow the pen without a queue building up.
  async function compute() {
    if (STATIC) {
      if (state.example !== null) {
        showPrediction(STATIC.responses[state.example], Array.from(state.pixels));
        if (state.selected) showUnit(staticUnit(state.selected.layer, state.selected.channel));
      }
      return;
    }
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      const pixels = Array.from(state.pixels);
      showPrediction(await post("api/predict", {pixels}), pixels);
      if (state.selected) await fetchUnit(pixels);
      $("error").textContent = "";
    } catch (err) {
      $("error").textContent = "the server did not answer: " + err.message;
    } finally {
      state.busy = false;
      if (state.again) { state.again = false; compute(); }
    }
  }

  async function fetchUnit(pixels) {
    const {layer, channel} = state.selected;
    const answer = await post("api/unit", {pixels, layer, channel, select: state.select});
    showUnit(answer, pixels);
  }

  function staticUnit(layer, channel) {
    const perImage = (STATIC.units[state.example] || {})[layer];
    const projections = perImage ? perImage[channel] : {projection: null, guided: null};
    return {layer, channel, select: "map", ...projections, facts: STATIC.facts[layer][channel]};
  }

  function selectUnit(layer, channel) {
    state.selected = {layer, channel};
    document.querySelectorAll("canvas.selected").forEach((c) => c.classList.remove("selected"));
    const chosen = document.querySelector(`canvas[data-layer="${layer}"][data-channel="${channel}"]`) ||
                   document.querySelector(`canvas[data-layer="${layer}"][data-dense]`);
    if (chosen) chosen.classList.add("selected");
    if (state.response && denseCanvases[layer]) bars(denseCanvases[layer], state.response.dense[layer], channel);
    if (STATIC) {
      if (state.example !== null) showUnit(staticUnit(layer, channel), Array.from(state.pixels));
    } else if (!state.busy && state.sent) {
      state.busy = true;
      fetchUnit(state.sent).catch((err) => { $("error").textContent = err.message; })
        .finally(() => { state.busy = false; if (state.again) { state.again = false; compute(); } });
    } else {
      compute();
    }
  }

  // -- the prediction and the network ----------------------------------------------

  function showPrediction(answer, pixels) {
    state.response = answer; state.sent = pixels; state.predictions += 1;
    const box = $("prediction");
    box.textContent = "";
    answer.probabilities.forEach((p, k) => {
      const row = document.createElement("div");
      row.className = "bar-row" + (k === answer.predicted ? " top" : "");
      row.innerHTML = `<span>${k}</span><div><div class="bar"></div></div><span class="value"></span>`;
      row.querySelector(".bar").style.width = (100 * p).toFixed(1) + "%";
      row.querySelector(".value").textContent = p.toFixed(3);
      box.appendChild(row);
    });
    box.dataset.predicted = answer.predicted;
    for (const row of E.layout) {
      if (row.group === "maps") {
        const {values} = decode(answer.maps[row.name]);
        const [, h, w] = row.shape, scale = maxAbs(values);    // one colour scale per layer
        mapCanvases[row.name].forEach((canvas, c) =>
          paint(canvas, values.subarray(c * h * w, (c + 1) * h * w), h, w, scale));
      } else {
        bars(denseCanvases[row.name], answer.dense[row.name],
             state.selected && state.selected.layer === row.name ? state.selected.channel : -1);
      }
    }
    document.body.dataset.predictions = state.predictions;
  }

  const mapCanvases = {}, denseCanvases = {};
  for (const row of E.layout) {
    const layer = document.createElement("div");
    layer.className = "layer";
    layer.innerHTML = `<div class="layer-title"></div>`;
    layer.firstChild.textContent = row.name + " ";
    const kind = document.createElement("span");
    kind.textContent = `${row.kind}, ${row.shape.join("x")}`;
    layer.firstChild.appendChild(kind);
    const holder = document.createElement("div");
    holder.className = row.group;
    if (row.group === "maps") {
      const [C, h, w] = row.shape, size = Math.max(36, Math.min(2 * w, 64));
      mapCanvases[row.name] = [];
      for (let c = 0; c < C; c++) {
        const canvas = document.createElement("canvas");
        canvas.style.width = canvas.style.height = size + "px";
        canvas.dataset.layer = row.name; canvas.dataset.channel = c;
        canvas.title = `${row.name}, channel ${c}`;
        canvas.addEventListener("click", () => selectUnit(row.name, c));
        holder.appendChild(canvas);
        mapCanvases[row.name].push(canvas);
      }
    } else {
      const canvas = document.createElement("canvas");
      canvas.dataset.layer = row.name; canvas.dataset.dense = "";
      canvas.title = `${row.name}: ${row.shape[0]} units (click one)`;
      canvas.addEventListener("click", (e) => {
        const r = canvas.getBoundingClientRect();
        const unit = Math.min(row.shape[0] - 1, Math.floor((e.clientX - r.left) / r.width * row.shape[0]));
        selectUnit(row.name, unit);
      });
      holder.appendChild(canvas);
      denseCanvases[row.name] = canvas;
    }
    layer.appendChild(holder);
    $("network").appendChild(layer);
  }

  // -- the selected unit -------------------------------------------------------------------

  function showUnit(answer, pixels) {
    const facts = answer.facts || STATIC.facts[answer.layer][answer.channel];
    const box = $("unit");
    box.textContent = "";
    const title = document.createElement("h3");
    title.textContent = `${answer.layer}, ${answer.projection === null ? "unit" : "channel"} ${answer.channel}`;
    box.appendChild(title);
    const unit = {layer: answer.layer, channel: answer.channel, select: answer.select, pixels: pixels,
                  projection: null, guided: null};
    if (answer.projection) {
      if (!STATIC) box.appendChild(selectChooser());
      const projection = decode(answer.projection), guided = decode(answer.guided);
      unit.projection = Array.from(projection.values);
      unit.guided = Array.from(guided.values);
      const [h, w] = projection.shape;
      const what = answer.select === "max" ? "its strongest unit" : "the whole map";
      box.appendChild(figure(projection.values, h, w, "deconvnet projection"));
      box.appendChild(figure(guided.values, h, w, "guided backprop"));
      box.appendChild(paragraph(`Projected from ${what} down to the pixels by npcnn's engine; red positive, ` +
                                "blue negative."));
    } else if (E.layout.find((row) => row.name === answer.layer).group === "maps") {
      box.appendChild(paragraph("Pick a test image to see the projections (precomputed for those only).", "hint"));
    } else {
      box.appendChild(paragraph("A dense unit: the deconvnet projects conv-stage maps only. Its incoming " +
                                "weights and class-wise average:", "hint"));
    }
    showFacts(box, facts, answer);
    state.unit = unit; state.units += 1;
    document.body.dataset.units = state.units;
  }

  function selectChooser() {
    const p = document.createElement("p");
    for (const [value, label] of [["map", "whole map"], ["max", "strongest unit"]]) {
      const button = document.createElement("button");
      button.type = "button"; button.textContent = label; button.disabled = state.select === value;
      button.addEventListener("click", () => { state.select = value; selectUnit(state.selected.layer,
                                                                              state.selected.channel); });
      p.appendChild(button);
    }
    return p;
  }

  function showFacts(box, facts, answer) {
    const map = answer.projection !== null || E.layout.find((r) => r.name === answer.layer).group === "maps";
    if (facts.filter) {
      const heading = document.createElement("h3");
      heading.textContent = map ? `Filter (${facts.filter_of}, output ${answer.channel})`
                                : `Incoming weights (${facts.filter_of}, row ${answer.channel})`;
      box.appendChild(heading);
      const weights = decode(facts.filter);
      if (map) {                                   // (C_in, kH, kW): one small map per input channel
        const [C, h, w] = weights.shape, scale = maxAbs(weights.values);
        for (let c = 0; c < C; c++) {
          box.appendChild(figure(weights.values.subarray(c * h * w, (c + 1) * h * w), h, w, `in ${c}`, "tiny",
                                 scale));
        }
      } else {
        box.appendChild(bars(document.createElement("canvas"), Array.from(weights.values), -1));
      }
    }
    const heading = document.createElement("h3");
    heading.textContent = "Class-wise average";
    box.appendChild(heading);
    if (facts.class_average) {
      const avg = decode(facts.class_average);
      if (map) {                                   // (10, H, W)
        const [K, h, w] = avg.shape, scale = maxAbs(avg.values);
        for (let k = 0; k < K; k++) {
          box.appendChild(figure(avg.values.subarray(k * h * w, (k + 1) * h * w), h, w, `${k}`, "small",
                                 scale));
        }
      } else {
        box.appendChild(bars(document.createElement("canvas"), Array.from(avg.values), -1));
        box.appendChild(paragraph("one bar per class, 0 to 9 from the left", "caption"));
      }
      box.appendChild(paragraph("over " + E.class_means, "caption"));
    } else {
      box.appendChild(paragraph("not computed", "hint"));
    }
    if (!map) return;
    const top = document.createElement("h3");
    top.textContent = "Top-9: strongest in the data set (patch | projection)";
    box.appendChild(top);
    if (!facts.top9) {
      box.appendChild(paragraph("Not computed: start npcnn explore with --top9, or --stats FILE.", "hint"));
      return;
    }
    for (const patch of facts.top9) {
      const pair = document.createElement("div");
      pair.className = "pair";
      pair.title = `training image ${patch.id}, activation ${patch.value.toFixed(3)}`;
      const image = decode(patch.image), projection = decode(patch.projection);
      const [h, w] = image.shape;
      pair.appendChild(paint(document.createElement("canvas"), image.values, h, w, 1, true));
      pair.appendChild(paint(document.createElement("canvas"), projection.values, h, w,
                             maxAbs(projection.values)));
      box.appendChild(pair);
    }
    box.appendChild(paragraph("over " + E.top9, "caption"));
  }

  // -- start ---------------------------------------------------------------------------

  const about = E.about;
  const accuracy = typeof about.accuracy === "number" ? `, ${(100 * about.accuracy).toFixed(2)}% test accuracy` : "";
  $("about").textContent = `${about.arch} from ${about.checkpoint}${accuracy}` +
    `; computed by npcnn (numba)${STATIC ? "; a static export: one test image per digit" : ""}`;
  if (!E.top9) $("notice").textContent = "top-9 not computed (npcnn explore --top9 or --stats FILE)";
  chooseExample(0);
})();
