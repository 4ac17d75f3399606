// w2v report: the page's code. Plain JavaScript, no library, nothing fetched.
// Neighbours and analogies follow w2v.evaluate.Vectors (gensim's most_similar): the mean of the
// unit vectors (positive added, negative subtracted), normalised, scored by cosine against every
// word of the page, the query words left out.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("w2v-data").textContent);
  const N = D.n, DIM = D.dim, words = D.words;
  const index = new Map();
  words.forEach((w, i) => { if (!index.has(w)) index.set(w, i); });

  function bytes(b64) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function half(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * f * Math.pow(2, -24);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  // unit vectors: float16 from the page, renormalised in float64
  const unit = new Float64Array(N * DIM);
  {
    const raw = bytes(D.vectors_f16), view = new DataView(raw.buffer), table = new Float64Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = half(h);
    for (let i = 0; i < N; i++) {
      let ss = 0;
      for (let d = 0; d < DIM; d++) {
        const v = table[view.getUint16(2 * (i * DIM + d), true)];
        unit[i * DIM + d] = v; ss += v * v;
      }
      const norm = Math.sqrt(ss);
      if (norm > 0) for (let d = 0; d < DIM; d++) unit[i * DIM + d] /= norm;
    }
  }
  // map positions in [-1, 1], sent as 16-bit steps
  const xy = new Float64Array(2 * N);
  {
    const raw = bytes(D.xy_u16), view = new DataView(raw.buffer);
    for (let i = 0; i < 2 * N; i++) xy[i] = view.getUint16(2 * i, true) / 32767.5 - 1;
  }

  // ---- neighbours and analogies (3CosAdd)
  function nearest(positive, negative, k) {
    const mean = new Float64Array(DIM);
    for (const i of positive) for (let d = 0; d < DIM; d++) mean[d] += unit[i * DIM + d];
    for (const i of negative) for (let d = 0; d < DIM; d++) mean[d] -= unit[i * DIM + d];
    let ss = 0;
    for (let d = 0; d < DIM; d++) ss += mean[d] * mean[d];
    const norm = Math.sqrt(ss) || 1;
    const exclude = new Set([...positive, ...negative]);
    const best = [];  // [score, id], best first, at most k
    for (let j = 0; j < N; j++) {
      if (exclude.has(j)) continue;
      let dot = 0;
      const o = j * DIM;
      for (let d = 0; d < DIM; d++) dot += unit[o + d] * mean[d];
      const score = dot / norm;
      if (best.length === k && score <= best[k - 1][0]) continue;
      let at = best.length;
      while (at > 0 && best[at - 1][0] < score) at--;
      best.splice(at, 0, [score, j]);
      if (best.length > k) best.pop();
    }
    return best.map(([score, j]) => ({ word: words[j], id: j, score }));
  }

  // a word's k nearest: from the float16 vectors, except where the page holds the float32 list
  // (D.exact: words whose first D.exact_k neighbours the rounding would order otherwise)
  function neighbours(i, k) {
    const fix = D.exact[String(i)];
    if (!fix) return nearest([i], [], k);
    const head = fix.slice(0, k).map(([j, score]) => ({ word: words[j], id: j, score }));
    if (k <= head.length) return head;
    const taken = new Set(head.map((r) => r.id));
    return head.concat(nearest([i], [], k + head.length).filter((r) => !taken.has(r.id)).slice(0, k - head.length));
  }

  const $ = (id) => document.getElementById(id);
  const message = $("message");
  function unknown(w) {
    const more = D.n < D.vocab_size ? ` (the page holds the ${D.n.toLocaleString("en")} most frequent of ` +
      `${D.vocab_size.toLocaleString("en")} words; w2v report --words ${D.vocab_size} for all)` : "";
    return `'${w}' is not among the page's words${more}`;
  }
  function kValue() {
    const k = parseInt($("k").value, 10);
    return Math.max(1, Math.min(Number.isFinite(k) ? k : 10, N - 1));
  }
  function fill(list, results) {
    list.replaceChildren();
    for (const r of results) {
      const li = document.createElement("li");
      li.dataset.word = r.word;
      li.dataset.score = r.score.toFixed(4);
      li.textContent = r.word;
      const s = document.createElement("span");
      s.className = "score"; s.textContent = r.score.toFixed(3);
      li.append(s);
      li.addEventListener("click", () => { $("search").value = r.word; search(); });
      list.append(li);
    }
  }
  function search() {
    const w = $("search").value.trim(), list = $("neighbours");
    if (!w) { fill(list, []); message.textContent = ""; highlight(null, []); return; }
    if (!index.has(w)) { fill(list, []); message.textContent = unknown(w); highlight(null, []); return; }
    const i = index.get(w), results = neighbours(i, kValue());
    message.textContent = "";
    fill(list, results);
    highlight(i, results.map((r) => r.id));
  }
  function analogy() {
    const ws = ["analogy-a", "analogy-b", "analogy-c"].map((id) => $(id).value.trim());
    const list = $("analogy-result");
    if (ws.some((w) => !w)) { message.textContent = "give three words: a is to b as c is to ?"; fill(list, []); return; }
    const missing = ws.find((w) => !index.has(w));
    if (missing !== undefined) { message.textContent = unknown(missing); fill(list, []); return; }
    const [a, b, c] = ws.map((w) => index.get(w));
    const results = nearest([b, c], [a], kValue());
    message.textContent = "";
    fill(list, results);
    highlight(c, results.map((r) => r.id));
  }
  $("search").addEventListener("input", search);
  $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  $("k").addEventListener("change", () => { if ($("search").value.trim()) search(); });
  $("analogy-c").addEventListener("keydown", (e) => { if (e.key === "Enter") analogy(); });

  // ---- the map: canvas, zoom (wheel, buttons), pan (drag), hover and click
  const box = $("map"), canvas = $("map-canvas"), ctx = canvas.getContext("2d"), tip = $("tooltip");
  let scale = 1, tx = 0, ty = 0, focus = null, near = [], hovered = null;
  function base() { return Math.min(canvas.clientWidth, canvas.clientHeight) * 0.46; }
  function screenOf(i) {
    return [canvas.clientWidth / 2 + tx + xy[2 * i] * base() * scale,
            canvas.clientHeight / 2 + ty - xy[2 * i + 1] * base() * scale];
  }
  function resize() {
    const r = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * r); canvas.height = Math.round(canvas.clientHeight * r);
    ctx.setTransform(r, 0, 0, r, 0, 0);
    draw();
  }
  function draw() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "rgba(71, 85, 105, 0.55)";
    const pts = new Float64Array(2 * N);
    for (let i = 0; i < N; i++) {
      const [x, y] = screenOf(i);
      pts[2 * i] = x; pts[2 * i + 1] = y;
      if (x > -4 && y > -4 && x < w + 4 && y < h + 4) ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    // labels: the most frequent words first, skipping any that would overlap one already drawn
    ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
    const cell = 12, cols = Math.ceil(w / cell) + 1, used = new Uint8Array(cols * (Math.ceil(h / cell) + 1));
    const take = (x, y, width) => {
      const c0 = Math.floor(x / cell), c1 = Math.floor((x + width) / cell), r = Math.floor(y / cell);
      if (c0 < 0 || r < 0 || x + width > w || y > h - 4) return false;
      for (let c = c0; c <= c1; c++) if (used[r * cols + c]) return false;
      for (let c = c0; c <= c1; c++) used[r * cols + c] = 1;
      return true;
    };
    const special = new Set(near); if (focus !== null) special.add(focus);
    const label = (i, color) => {  // a highlighted word: beside its point, above or below it if taken
      ctx.font = "bold 11px system-ui, sans-serif";
      const x = pts[2 * i] + 5, width = ctx.measureText(words[i]).width;
      let y = pts[2 * i + 1];
      for (const dy of [0, -cell, cell, -2 * cell, 2 * cell]) {
        if (take(x, pts[2 * i + 1] + dy, width)) { y = pts[2 * i + 1] + dy; break; }
      }
      ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255, 255, 255, 0.9)"; ctx.strokeText(words[i], x, y);
      ctx.fillStyle = color; ctx.fillText(words[i], x, y);
    };
    for (const i of special) {
      ctx.fillStyle = i === focus ? "#c2410c" : "#2563eb";
      ctx.beginPath(); ctx.arc(pts[2 * i], pts[2 * i + 1], 4, 0, 2 * Math.PI); ctx.fill();
      label(i, i === focus ? "#c2410c" : "#1d4ed8");
    }
    let shown = 0;
    for (let i = 0; i < N && shown < 400; i++) {
      if (special.has(i)) continue;
      const x = pts[2 * i], y = pts[2 * i + 1];
      if (x < 0 || y < 0 || x > w || y > h) continue;
      ctx.font = "11px system-ui, sans-serif";
      const width = ctx.measureText(words[i]).width;
      if (take(x + 4, y, width)) { ctx.fillStyle = "rgba(29, 35, 48, 0.85)"; ctx.fillText(words[i], x + 4, y); shown++; }
    }
    if (hovered !== null) {
      ctx.strokeStyle = "#111827"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(pts[2 * hovered], pts[2 * hovered + 1], 5, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  function pointAt(mx, my, radius) {
    let best = null, bestD = radius * radius;
    for (let i = 0; i < N; i++) {
      const [x, y] = screenOf(i), d = (x - mx) * (x - mx) + (y - my) * (y - my);
      if (d <= bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function showTip(i, mx, my) {
    hovered = i;
    if (i === null) { tip.style.display = "none"; tip.textContent = ""; draw(); return; }
    const count = D.counts ? `, ${D.counts[i].toLocaleString("en")} times` : "";
    tip.textContent = words[i];
    tip.title = `#${i + 1}${count}`;
    tip.dataset.word = words[i];
    tip.style.display = "block";
    tip.style.left = `${Math.min(mx + 12, canvas.clientWidth - tip.offsetWidth - 4)}px`;
    tip.style.top = `${Math.max(my - 28, 2)}px`;
    draw();
  }
  function highlight(i, ids) {
    focus = i; near = ids;
    if (i !== null) {  // bring the word into view if it is off the canvas
      const [x, y] = screenOf(i), w = canvas.clientWidth, h = canvas.clientHeight;
      if (x < 20 || y < 20 || x > w - 20 || y > h - 20) { tx += w / 2 - x; ty += h / 2 - y; }
    }
    draw();
  }
  function zoomAt(factor, mx, my) {
    const next = Math.max(0.5, Math.min(400, scale * factor)), f = next / scale;
    const cx = canvas.clientWidth / 2, cy = canvas.clientHeight / 2;
    tx = (mx - cx) - ((mx - cx) - tx) * f; ty = (my - cy) - ((my - cy) - ty) * f;
    scale = next; draw();
  }
  const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  let drag = null, moved = false;
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [mx, my] = local(e);
    zoomAt(Math.exp(-e.deltaY * 0.0015), mx, my);
  }, { passive: false });
  canvas.addEventListener("mousedown", (e) => { drag = local(e); moved = false; box.classList.add("dragging"); });
  window.addEventListener("mouseup", () => { drag = null; box.classList.remove("dragging"); });
  canvas.addEventListener("mousemove", (e) => {
    const [mx, my] = local(e);
    if (drag) {
      const dx = mx - drag[0], dy = my - drag[1];
      if (Math.abs(dx) + Math.abs(dy) > 2) moved = true;
      tx += dx; ty += dy; drag = [mx, my]; draw(); return;
    }
    showTip(pointAt(mx, my, 8), mx, my);
  });
  canvas.addEventListener("mouseleave", () => showTip(null, 0, 0));
  canvas.addEventListener("click", (e) => {
    if (moved) return;
    const [mx, my] = local(e), i = pointAt(mx, my, 8);
    if (i !== null) { $("search").value = words[i]; search(); showTip(i, mx, my); }
  });
  canvas.addEventListener("dblclick", () => { scale = 1; tx = 0; ty = 0; draw(); });
  $("zoom-in").addEventListener("click", () => zoomAt(1.6, canvas.clientWidth / 2, canvas.clientHeight / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(1 / 1.6, canvas.clientWidth / 2, canvas.clientHeight / 2));
  $("zoom-reset").addEventListener("click", () => { scale = 1; tx = 0; ty = 0; draw(); });
  window.addEventListener("resize", resize);

  // ---- the run: figures, curves, config, eval
  const fmt = (v) => (typeof v === "number" ? v.toLocaleString("en", { maximumFractionDigits: 6 }) : String(v));
  function table(el, rows, numeric) {
    el.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      row.forEach((cell, c) => {
        const td = document.createElement(c === 0 ? "th" : "td");
        td.textContent = cell;
        if (c > 0 && numeric) td.className = "num";
        tr.append(td);
      });
      el.append(tr);
    }
  }
  table($("figures"), D.figures.map(([k, v]) => [k, v]));
  if (D.config) table($("config"), Object.entries(D.config).map(([k, v]) => [k, fmt(v)]));
  else $("config").closest("section").querySelector("h2").textContent = "Config: none (no config.yaml)";

  function chart(el, xs, ys, color, empty) {
    const r = window.devicePixelRatio || 1, w = el.clientWidth, h = el.clientHeight, c = el.getContext("2d");
    el.width = Math.round(w * r); el.height = Math.round(h * r); c.setTransform(r, 0, 0, r, 0, 0);
    c.clearRect(0, 0, w, h); c.font = "11px system-ui, sans-serif"; c.fillStyle = "#667085";
    const pts = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) { c.fillText(empty, 10, h / 2); return; }
    const left = 58, right = 10, top = 8, bottom = 26;
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const px = (x) => left + (x - x0) / (x1 - x0) * (w - left - right);
    const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom);
    c.strokeStyle = "#e5e7eb"; c.lineWidth = 1; c.textBaseline = "middle"; c.textAlign = "right";
    for (let t = 0; t <= 4; t++) {
      const y = y0 + (y1 - y0) * t / 4;
      c.beginPath(); c.moveTo(left, py(y)); c.lineTo(w - right, py(y)); c.stroke();
      c.fillText(Number(y.toPrecision(3)).toString(), left - 4, py(y));
    }
    c.textBaseline = "top";
    for (let t = 0; t <= 4; t++) {
      const x = x0 + (x1 - x0) * t / 4;
      c.textAlign = t === 0 ? "left" : t === 4 ? "right" : "center";
      c.fillText(`${Number((x / 1e6).toPrecision(3))}M${t === 4 ? " words" : ""}`, px(x), h - bottom + 6);
    }
    c.strokeStyle = color; c.lineWidth = 1.6; c.beginPath();
    pts.forEach(([x, y], i) => (i ? c.lineTo(px(x), py(y)) : c.moveTo(px(x), py(y))));
    c.stroke();
    if (pts.length === 1) { c.fillStyle = color; c.beginPath(); c.arc(px(pts[0][0]), py(pts[0][1]), 3, 0, 7); c.fill(); }
  }
  function charts() {
    const xs = D.records.map((r) => r.words);
    chart($("loss-chart"), xs, D.records.map((r) => (r.loss === null ? NaN : r.loss)), "#2563eb",
      D.records.length ? "no loss recorded yet" : "no log.jsonl: a vectors file alone");
    chart($("lr-chart"), xs, D.records.map((r) => r.learning_rate), "#c2410c",
      D.records.length ? "no learning rate recorded" : "no log.jsonl: a vectors file alone");
  }
  window.addEventListener("resize", charts);

  const num4 = (v) => (typeof v === "number" ? v.toFixed(4) : "-");
  function evaluation() {
    const el = $("eval");
    if (!D.eval) {
      el.textContent = "No results: give w2v report --eval, or save w2v eval --json's output as eval.json in the run directory.";
      el.className = "scroll hint"; return;
    }
    for (const a of D.eval.analogies || []) {
      const p = document.createElement("p");
      p.textContent = `${a.file.split("/").pop()} (${a.method}): ${(100 * a.accuracy).toFixed(2)}% ` +
        `(${a.correct}/${a.total}; ${a.skipped} skipped for unknown words)`;
      const t = document.createElement("table");
      table(t, (a.sections || []).map((s) => [s.section, s.total ? `${(100 * s.correct / s.total).toFixed(1)}%` : "-",
        `${s.correct}/${s.total}`]), true);
      el.append(p, t);
    }
    for (const s of D.eval.similarity || []) {
      const p = document.createElement("p");
      p.textContent = `${s.file.split("/").pop()}: Spearman ${num4(s.spearman)}, Pearson ${num4(s.pearson)}` +
        ` (${s.pairs} pairs, ${s.oov} with unknown words)`;
      el.append(p);
    }
  }

  $("title").textContent = `w2v report: ${D.name}`;
  $("subtitle").textContent = `${D.state} · the ${D.n.toLocaleString("en")} most frequent of ` +
    `${D.vocab_size.toLocaleString("en")} words, dim ${DIM} · written ${D.generated}`;
  $("map-note").textContent = `${D.map_note} · wheel or +/− to zoom, drag to pan, double-click for the whole map`;
  evaluation();
  resize();
  charts();
  // for automated checks: where a word's point is on the canvas (CSS pixels from its top-left)
  window.w2vReport = { screenOf: (w) => (index.has(w) ? screenOf(index.get(w)) : null), nearest, index };
})();
