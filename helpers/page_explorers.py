"""Explorers that work on the rendered page, with no kernel: Chapters 8 (Decoding) and 9 (Seeing
inside).

A live ipywidgets explorer needs Python behind the page. These need none: Python computes the data
once (rounded, so the stored output repeats), and each function returns an ``IPython.display.HTML``
that holds the data as JSON, inline SVG and a little plain JavaScript (no library, no network), so
the figure works in Jupyter, in Colab and on the book's page opened from disk.

* :func:`decoding_prompt`, :func:`rounded_logits`, :func:`kept_after_filters` and
  :func:`decoding_explorer`: temperature, top-k and top-p sliders over precomputed logits; the
  page redoes ``helpers.sampling.filter_logits``'s arithmetic, and ``kept_after_filters`` is the
  same computation in Python, with the sampling helpers, for the checks;
* :func:`attention_prompt` and :func:`attention_explorer`: a prompt, a layer and a head; the head's
  attention map, its head scores and the model's most probable next tokens;
* :func:`embedding_map`: points in two dimensions, each token shown on hover.

Element ids derive from the ``name`` argument (``pe-<name>``), never from chance.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter

import torch
from IPython.display import HTML

from helpers.insight import token_strings
from helpers.sampling import filter_logits

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_STYLE = "font-family:sans-serif;font-size:13px;margin:0.5em 0;"


def _r(x, decimals: int):
    """Floats rounded for the page (a nested list from a tensor, list or number)."""
    if hasattr(x, "tolist"):  # a tensor or a NumPy array
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return [_r(v, decimals) for v in x]
    return round(float(x), decimals)


def _page(kind: str, name: str, data: dict, controls: str, script: str, checks=None) -> HTML:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"name={name!r} must start with a letter and hold only letters, digits, - and _: "
            f"it becomes the id of the figure's element."
        )
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    extra = f" data-checks='{html.escape(json.dumps(checks), quote=True)}'" if checks else ""
    return HTML(
        f'<div id="pe-{name}" class="page-explorer mathjax_ignore tex2jax_ignore" '
        f'data-explorer="{kind}"{extra} style="{_STYLE}">{controls}'
        f'<div class="pe-figure"></div></div>\n'
        f'<script>(function () {{\nconst root = document.getElementById("pe-{name}");\n'
        f"const data = {payload};\n{_COMMON_JS}{script}}})();</script>"
    )


def _select(cls: str, label: str, options) -> str:
    opts = "".join(
        f'<option value="{i}">{html.escape(str(o))}</option>' for i, o in enumerate(options)
    )
    return f'<label style="margin-right:1em">{label} <select class="{cls}">{opts}</select></label>'


def _slider(cls: str, label: str, lo, hi, step, value) -> str:
    return (
        f'<label style="margin-right:1em">{label} <input type="range" class="{cls}" min="{lo}" '
        f'max="{hi}" step="{step}" value="{value}"> <output class="{cls}-value">{value}</output>'
        "</label>"
    )


_COMMON_JS = """const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const q = (cls) => root.querySelector("." + cls);
const show = (s) => "'" + s + "'";  // a token between quotes, its spaces visible
const figure = q("pe-figure");
"""


# -- Chapter 8: the decoding explorer -------------------------------------------------------------
def decoding_prompt(logits: torch.Tensor, tokenizer, n_top: int = 50) -> dict:
    """The page's data for one prompt's next-token logits ``(V,)``: the ``n_top`` largest, rounded
    to 3 decimals, with their token strings, and every other logit rounded *down* to 2 decimals and
    stored as ``[value, count]`` pairs (so none overtakes a top one). :func:`rounded_logits`
    rebuilds the vector the page computes with."""
    values, ids = torch.sort(logits.detach().double().flatten(), descending=True)
    tail = Counter(torch.floor(values[n_top:] * 100).long().tolist())
    return {
        "labels": token_strings(tokenizer, ids[:n_top]),
        "top": _r(values[:n_top], 3),
        "tail": [[v / 100, c] for v, c in sorted(tail.items(), reverse=True)],
    }


def rounded_logits(entry: dict) -> torch.Tensor:
    """The logit vector of a :func:`decoding_prompt` entry, sorted descending, float64."""
    tail = [v for v, c in entry["tail"] for _ in range(c)]
    return torch.tensor(entry["top"] + tail, dtype=torch.float64)


def kept_after_filters(entry: dict, temperature: float, top_k: int, top_p: float):
    """``(kept, mass)``: how many tokens ``helpers.sampling.filter_logits`` keeps on the entry's
    logits (``top_k`` 0 and ``top_p`` 1 mean off, as on the page's sliders) and the probability
    they carry after temperature; the page must show the same."""
    z = rounded_logits(entry)
    kept = torch.isfinite(filter_logits(z, temperature, top_k or None, top_p))
    return int(kept.sum()), float(torch.softmax(z / temperature, dim=-1)[kept].sum())


def decoding_explorer(prompts: dict, name: str, shown: int = 20, checks=()) -> HTML:
    """Chapter 8's explorer: ``prompts`` maps a prompt to its :func:`decoding_prompt` entry. On the
    page, a prompt menu and sliders for temperature, top-k (0: off) and top-p redraw the ``shown``
    most probable tokens' probabilities after temperature, the kept ones in colour, and print the
    kept count and mass. Each of ``checks``, ``(prompt, temperature, top_k, top_p)``, is stored
    with :func:`kept_after_filters`'s answer for a browser test."""
    stored = []
    for prompt, t, k, p in checks:
        kept, mass = kept_after_filters(prompts[prompt], t, k, p)
        stored.append({"prompt": list(prompts).index(prompt), "temperature": t, "top_k": k,
                       "top_p": p, "kept": kept, "mass": round(mass, 2)})
    controls = (
        _select("pe-prompt", "prompt", prompts)
        + "<br>"
        + _slider("pe-temperature", "temperature", 0.1, 3.0, 0.1, 1.0)
        + _slider("pe-top_k", "top-k", 0, 50, 1, 0)
        + _slider("pe-top_p", "top-p", 0.05, 1.0, 0.05, 1.0)
        + '<div class="pe-summary" style="margin-top:0.4em"></div>'
    )
    data = {"prompts": list(prompts.values()), "shown": shown}
    return _page("decoding", name, data, controls, _DECODING_JS, stored)


_FILTER_JS = """const full = data.prompts.map((e) => {
  const v = e.top.slice();
  for (const [x, c] of e.tail) for (let i = 0; i < c; i++) v.push(x);
  return v;  // sorted descending, as rounded_logits
});
// helpers.sampling.filter_logits: temperature, then top-k (ties with the k-th kept), then top-p
// (ascending, drop while the cumulative probability stays <= 1 - p, the most probable stays).
// The logits are sorted descending, so every kept set is a prefix: return its length.
function filterCount(v, t, k, p) {
  const z = v.map((x) => x / t);
  let keep = z.length;
  if (k > 0 && k < z.length) { keep = k; while (keep < z.length && z[keep] >= z[k - 1]) keep++; }
  const e = z.map((x) => Math.exp(x - z[0]));
  let total = 0;
  for (const x of e) total += x;
  const probs = e.map((x) => x / total);
  if (p < 1) {
    let kt = 0;
    for (let i = 0; i < keep; i++) kt += e[i];
    let cum = 0, dropped = 0;
    for (let i = keep - 1; i >= 1; i--) {
      cum += e[i] / kt;
      if (cum <= 1 - p) dropped++; else break;
    }
    keep -= dropped;
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += probs[i];
  return { keep, mass, probs };
}
"""

_DECODING_JS = _FILTER_JS + """function draw() {
  const pi = +q("pe-prompt").value, entry = data.prompts[pi];
  const t = +q("pe-temperature").value, k = +q("pe-top_k").value, p = +q("pe-top_p").value;
  q("pe-temperature-value").textContent = t.toFixed(1);
  q("pe-top_k-value").textContent = k ? k : "off";
  q("pe-top_p-value").textContent = p.toFixed(2);
  const r = filterCount(full[pi], t, k, p);
  root.dataset.kept = r.keep;
  q("pe-summary").textContent = `${r.keep.toLocaleString("en-US")} of ` +
    `${full[pi].length.toLocaleString("en-US")} tokens kept, carrying probability ` +
    `${r.mass.toFixed(2)} (sampling renormalizes it to 1)`;
  const n = Math.min(data.shown, entry.labels.length), W = 40 * n + 60, H = 260;
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  const ymax = Math.max(0.05, r.probs[0]);
  for (let i = 0; i < n; i++) {
    const h = (180 * r.probs[i]) / ymax, x = 50 + 40 * i;
    const bar = el("rect", { x, y: 190 - h, width: 30, height: h,
      fill: i < r.keep ? "#1f77b4" : "#d0d0d0", class: "pe-bar" }, svg);
    el("title", {}, bar, `${show(entry.labels[i])}: ${r.probs[i].toFixed(4)}`);
    el("text", { x: x + 15, y: 200, "font-size": 11, "text-anchor": "end",
      transform: `rotate(-60 ${x + 15} 200)` }, svg, show(entry.labels[i]));
  }
  el("line", { x1: 45, x2: W - 5, y1: 190, y2: 190, stroke: "#333" }, svg);
  el("text", { x: 45, y: 12, "font-size": 11, "text-anchor": "end" }, svg, ymax.toFixed(2));
  el("text", { x: 45, y: 190, "font-size": 11, "text-anchor": "end" }, svg, "0");
  figure.replaceChildren(svg);
}
for (const c of ["pe-prompt", "pe-temperature", "pe-top_k", "pe-top_p"]) {
  q(c).addEventListener("input", draw);
  q(c).addEventListener("change", draw);
}
draw();
"""


# -- Chapter 10: the attention explorer and the embedding map --------------------------------------
@torch.no_grad()
def attention_prompt(model, tokenizer, text: str, top_k: int = 8) -> dict:
    """The page's data for one prompt (its last ``context_length`` tokens): the token strings,
    every head's attention rows ``[layer][head][query]`` (query ``t`` has ``t + 1`` weights, 3
    decimals) and the ``top_k`` most probable next tokens with their probabilities."""
    ids = tokenizer.encode(text)[-model.cfg.context_length :]
    if not ids:
        raise ValueError(f"text={text!r} encodes to no tokens: give the explorer a prompt.")
    weights: list[torch.Tensor] = []
    logits = model(torch.tensor([ids]), attn_weights=weights)  # (1, T, V)
    attn = torch.stack(weights)[:, 0]  # (L, h, T, T)
    rows = [[[_r(w[t, : t + 1], 3) for t in range(len(ids))] for w in layer] for layer in attn]
    probs, best = torch.softmax(logits[0, -1].double(), dim=-1).topk(top_k)
    return {"tokens": token_strings(tokenizer, ids), "attention": rows,
            "next": [[s, _r(p, 3)] for s, p in zip(token_strings(tokenizer, best), probs)]}


def attention_explorer(prompts: dict, scores: dict, baseline: dict, name: str) -> HTML:
    """Chapter 10's explorer: ``prompts`` maps a prompt to its :func:`attention_prompt` entry,
    ``scores`` a head score's name to its ``(L, h)`` table and ``baseline`` the name to an even
    head's score. On the page, menus pick the prompt, the layer and the head; it draws that head's
    attention map, its scores next to the even head's, and the top next tokens."""
    first = next(iter(prompts.values()))["attention"]
    L, h = len(first), len(first[0])
    controls = (
        _select("pe-prompt", "prompt", prompts)
        + "<br>"
        + _select("pe-layer", "layer", range(L))
        + _select("pe-head", "head", range(h))
    )
    data = {"prompts": list(prompts.values()), "names": list(prompts),
            "scores": {k: _r(v, 3) for k, v in scores.items()},
            "baseline": {k: _r(v, 3) for k, v in baseline.items()}}
    return _page("attention", name, data, controls, _ATTENTION_JS)


_ATTENTION_JS = """function colour(w) {  // white to dark blue, as plot_attention's Blues
  const a = Math.max(0, Math.min(1, w));
  const [r, g, b] = [247 - 239 * a, 251 - 203 * a, 255 - 148 * a].map(Math.round);
  return `rgb(${r},${g},${b})`;
}
function draw() {
  const pi = +q("pe-prompt").value, l = +q("pe-layer").value, hd = +q("pe-head").value;
  const e = data.prompts[pi], T = e.tokens.length, c = 22, m = 110, W = m + c * T + 10;
  const title = `layer ${l}, head ${hd}`;
  root.dataset.state = `${pi} ${l} ${hd}`;
  const svg = el("svg", { width: W, height: m + c * T + 20, class: "pe-map" });
  el("text", { x: m, y: 14, "font-size": 13, "font-weight": "bold", class: "pe-title" }, svg,
    title);
  e.tokens.forEach((s, t) => {
    el("text", { x: m - 4, y: m + c * t + 15, "font-size": 11, "text-anchor": "end" }, svg, s);
    const x = m + c * t + 15;
    el("text", { x, y: m - 4, "font-size": 11, transform: `rotate(-60 ${x} ${m - 4})` }, svg, s);
    e.attention[l][hd][t].forEach((w, s2) => {
      const cell = el("rect", { x: m + c * s2, y: m + c * t, width: c - 1, height: c - 1,
        fill: colour(w), class: "pe-cell" }, svg);
      el("title", {}, cell, `query ${e.tokens[t]} -> key ${e.tokens[s2]}: ${w.toFixed(3)}`);
    });
  });
  const side = document.createElement("div");
  side.style.cssText = "display:inline-block;vertical-align:top;margin-left:1.5em";
  let rows = "<tr><th>score</th><th>this head</th><th>even head</th></tr>";
  for (const k in data.scores)
    rows += `<tr><td>${k}</td><td>${data.scores[k][l][hd].toFixed(2)}</td>` +
      `<td>${data.baseline[k].toFixed(2)}</td></tr>`;
  side.innerHTML = `<b>head scores (validation text)</b><table class="pe-scores">${rows}</table>` +
    "<b>most probable next tokens</b>";
  const bars = document.createElement("table");
  for (const [s, p] of e.next) {
    const tr = bars.insertRow(), a = tr.insertCell(), b = tr.insertCell();
    a.textContent = show(s);
    b.innerHTML = `<span style="display:inline-block;height:10px;background:#1f77b4;` +
      `width:${Math.round(150 * p)}px"></span> ${p.toFixed(3)}`;
  }
  side.appendChild(bars);
  const box = document.createElement("div");
  box.appendChild(svg).style.verticalAlign = "top";
  box.appendChild(side);
  figure.replaceChildren(box);
}
for (const c of ["pe-prompt", "pe-layer", "pe-head"]) q(c).addEventListener("change", draw);
draw();
"""


def embedding_map(points, labels, groups, name: str, title: str = "") -> HTML:
    """A scatter of ``points`` ``(N, 2)``; hovering a point shows its label (and group). ``groups``:
    one group name per point (points of the group ``"other"`` are grey)."""
    if not len(points) == len(labels) == len(groups):
        raise ValueError(
            f"points, labels and groups must be as long as each other, got "
            f"{len(points)}, {len(labels)} and {len(groups)}."
        )
    data = {"points": _r(points, 3), "labels": list(labels), "groups": list(groups),
            "title": title}
    controls = '<div class="pe-tip" style="min-height:1.4em;font-weight:bold">hover a point</div>'
    return _page("embedding", name, data, controls, _EMBEDDING_JS)


_EMBEDDING_JS = """
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const names = [...new Set(data.groups.filter((g) => g !== "other"))];
const W = 640, H = 440, pad = 30;
const xs = data.points.map((p) => p[0]), ys = data.points.map((p) => p[1]);
const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
const sx = (x) => pad + ((W - 2 * pad - 120) * (x - x0)) / (x1 - x0 || 1);
const sy = (y) => H - pad - ((H - 2 * pad) * (y - y0)) / (y1 - y0 || 1);
const svg = el("svg", { width: W, height: H });
el("text", { x: pad, y: 16, "font-size": 13, "font-weight": "bold" }, svg, data.title);
const tip = q("pe-tip");
const order = data.points.map((_, i) => i).sort((a, b) =>
  (data.groups[a] !== "other") - (data.groups[b] !== "other"));  // groups drawn on top
for (const i of order) {
  const g = data.groups[i], k = names.indexOf(g);
  const dot = el("circle", { cx: sx(data.points[i][0]), cy: sy(data.points[i][1]),
    r: k < 0 ? 3 : 5, fill: k < 0 ? "#b0b0b0" : palette[k % palette.length],
    class: "pe-point", "data-label": data.labels[i] }, svg);
  el("title", {}, dot, show(data.labels[i]));
  dot.addEventListener("mouseenter", () => {
    tip.textContent = `${show(data.labels[i])}  (${g})`;
    dot.setAttribute("stroke", "#000");
  });
  dot.addEventListener("mouseleave", () => dot.removeAttribute("stroke"));
}
names.forEach((g, k) => {
  el("circle", { cx: W - 110, cy: 40 + 18 * k, r: 5, fill: palette[k % palette.length] }, svg);
  el("text", { x: W - 100, y: 44 + 18 * k, "font-size": 12 }, svg, g);
});
figure.replaceChildren(svg);
"""
