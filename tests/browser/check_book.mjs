// Drive a real browser (Debian's chromium, through playwright-core) over the rendered book.
//
//   node check_book.mjs PLAN.json
//
// PLAN.json: {"base": "http://127.0.0.1:PORT/", "chromium": "/usr/bin/chromium", "screenshots": DIR,
//             "pages": [{"path", "title", "notebook" (chapters only)}], "search": {"term", "expect"},
//             "explorers": {"base": "file:///.../_build/html/", "pages": [path, ...]}}
// Prints one JSON report: {"pages": {path: {"problems": [...], ...}}, "search": {...}, "blocked": [...]}.
// Requests to the CDNs the book uses are answered from the npm packages in node_modules, so the checks
// hold with no network; any other outside request is blocked and reported.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const NM = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");
const LOCAL = [
  [/^https:\/\/cdn\.jsdelivr\.net\/npm\/mathjax@3\/([^?#]*)/, (m) => path.join(NM, "mathjax", m[1])],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/require\.js\/[^/]+\/require(\.min)?\.js/, () => path.join(NM, "requirejs", "require.js")],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/d3\/[^/]+\/d3(\.min)?(\.js)?$/, () => path.join(NM, "d3", "dist", "d3.min.js")],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/jquery\/[^/]+\/jquery(\.min)?(\.js)?$/, () => path.join(NM, "jquery", "dist", "jquery.min.js")],
  [/^https:\/\/cdn\.jsdelivr\.net\/npm\/@jupyter-widgets\/html-manager@[^/]+\/dist\/([^?#/]+)/, (m) => path.join(NM, "@jupyter-widgets", "html-manager", "dist", m[1])],
];
const TYPES = { ".js": "application/javascript", ".woff": "font/woff", ".woff2": "font/woff2", ".css": "text/css" };
const NEEDED = new Set(["script", "stylesheet", "image", "font"]);

const browser = await chromium.launch({
  executablePath: plan.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const blocked = [];
let current = null; // the report of the page being checked
await context.route("**/*", async (route) => {
  const url = route.request().url();
  if (url.startsWith("file://")) return route.continue(); // the explorers' pages, opened from disk
  if (url.startsWith(plan.base)) {
    if (!/\.html([?#].*)?$/.test(url) || route.request().resourceType() !== "document") return route.continue();
    // The CDN scripts are replaced by npm copies (LOCAL) whose bytes differ from the CDN's minified
    // files, so a subresource-integrity hash on such a tag cannot match: drop it from those tags only,
    // in the page under test. Everything else on the page is served as built.
    const response = await route.fetch();
    const body = (await response.text()).replace(/<script\b[^>]*>/g, (tag) => {
      const src = (tag.match(/\bsrc="([^"]+)"/) || [])[1];
      return src && LOCAL.some(([pattern]) => pattern.test(src)) ? tag.replace(/\s+integrity="[^"]*"/, "") : tag;
    });
    return route.fulfill({ response, body });
  }
  for (const [pattern, file] of LOCAL) {
    const m = url.match(pattern);
    if (m) {
      const f = file(m);
      if (fs.existsSync(f)) return route.fulfill({ path: f, contentType: TYPES[path.extname(f)] || "application/octet-stream" });
    }
  }
  blocked.push(url);
  if (current && NEEDED.has(route.request().resourceType())) current.problems.push(`needs ${url}, which is not served locally`);
  return route.abort();
});

const linkCache = new Map(); // url without hash -> html text or null
async function fetchPage(url) {
  if (!linkCache.has(url)) {
    const r = await context.request.get(url);
    linkCache.set(url, r.ok() ? await r.text() : null);
  }
  return linkCache.get(url);
}

const report = { pages: {}, search: null, blocked };
for (const spec of plan.pages) {
  const page = await context.newPage();
  const rep = (current = { problems: [], images: 0, math: 0, cells: 0, outputs: 0, links: 0, bertviz: 0 });
  report.pages[spec.path] = rep;
  page.on("pageerror", (err) => rep.problems.push(`script error: ${err.message.split("\n")[0]}`));
  const response = await page.goto(plan.base + spec.path, { waitUntil: "load" });
  if (!response || !response.ok()) { rep.problems.push(`HTTP ${response && response.status()}`); await page.close(); continue; }

  const h1 = (await page.locator("main h1").first().textContent({ timeout: 5000 }).catch(() => "")) || "";
  // Sphinx typesets quotes and dashes ("smartquotes"); compare plain text
  const plain = (t) => t.replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, '"').replace(/\u2014/g, "---").replace(/\u2013/g, "--");
  if (!plain(h1.replace("#", "")).trim().includes(plain(spec.title))) rep.problems.push(`title is ${JSON.stringify(h1.trim())}, expected ${JSON.stringify(spec.title)}`);

  const mathCount = await page.locator("main .math").count();
  rep.math = mathCount;
  if (mathCount > 0) {
    try {
      await page.waitForFunction((n) => document.querySelectorAll("main mjx-container").length >= n, mathCount, { timeout: 20000 });
    } catch { rep.problems.push(`math not typeset: ${await page.locator("main mjx-container").count()} of ${mathCount} formulas`); }
    if (await page.locator("main mjx-merror").count()) rep.problems.push("MathJax reports an error in a formula");
  }

  await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: 20000 }).catch(() => {});
  const broken = await page.evaluate(() => [...document.images].filter((i) => !i.naturalWidth).map((i) => i.getAttribute("src").slice(0, 80)));
  rep.images = await page.evaluate(() => document.images.length);
  for (const src of broken) rep.problems.push(`broken image ${src}`);

  if (spec.notebook) {
    rep.cells = await page.locator("main div.cell_input").count();
    rep.outputs = await page.locator("main div.cell_output").count();
    if (!rep.cells || !rep.outputs) rep.problems.push(`code cells ${rep.cells}, outputs ${rep.outputs}: expected both`);
    const colab = await page.evaluate(() => [...document.querySelectorAll("a[href*='colab.research.google.com']")].map((a) => a.href));
    rep.colab = colab;
    if (!colab.length || !colab.every((h) => h.endsWith(`/blob/main/${spec.notebook}`))) rep.problems.push(`Colab launch button ${JSON.stringify(colab)} does not open ${spec.notebook}`);
    const bertviz = page.locator("main [id^='bertviz-']");
    rep.bertviz = await bertviz.count();
    for (let i = 0; i < rep.bertviz; i++) {
      try {
        await bertviz.nth(i).locator("svg line").first().waitFor({ state: "attached", timeout: 20000 });
      } catch { rep.problems.push(`bertviz view ${i + 1} drew no attention lines`); }
    }
    await page.screenshot({ path: path.join(plan.screenshots, spec.path.replace(/\//g, "_").replace(/\.html$/, ".png")) });
  }

  const hrefs = await page.evaluate(() => [...document.querySelectorAll("a[href]")].map((a) => a.href));
  for (const href of new Set(hrefs)) {
    if (!href.startsWith(plan.base)) continue;
    rep.links += 1;
    const [url, frag] = href.split("#");
    const html = await fetchPage(url);
    if (html === null) rep.problems.push(`link to a missing page: ${href.slice(plan.base.length)}`);
    else if (frag && url.endsWith(".html") && !html.includes(`id="${decodeURIComponent(frag)}"`)) rep.problems.push(`link to a missing anchor: ${href.slice(plan.base.length)}`);
  }
  current = null;
  await page.close();
}

// The explorers of helpers.page_explorers, on pages opened from disk (file://, no server, no kernel):
// moving a control must change the figure. The decoding explorer's kept counts must equal the ones
// Python stored in data-checks (helpers.sampling); the attention explorer's title must follow the
// chosen head; hovering a point of the embedding map must show its token.
async function setControl(page, id, cls, value) {
  const control = page.locator(`#${id} .${cls}`);
  if ((await control.evaluate((c) => c.tagName)) === "SELECT") return control.selectOption(String(value));
  await control.evaluate((c, v) => {
    c.value = String(v);
    c.dispatchEvent(new Event("input", { bubbles: true }));
    c.dispatchEvent(new Event("change", { bubbles: true }));
  }, value);
}
async function checkExplorer(page, id, kind) {
  const root = page.locator(`#${id}`);
  const figure = () => root.locator(".pe-figure").innerHTML();
  const out = { id, kind, problems: [], changed: false };
  const before = await figure();
  if (!before.includes("<svg")) out.problems.push(`${id} drew nothing`);
  if (kind === "decoding") {
    out.checks = JSON.parse((await root.getAttribute("data-checks")) || "[]");
    for (const c of out.checks) {
      await setControl(page, id, "pe-prompt", c.prompt);
      await setControl(page, id, "pe-temperature", c.temperature);
      await setControl(page, id, "pe-top_k", c.top_k);
      await setControl(page, id, "pe-top_p", c.top_p);
      c.shown = Number(await root.getAttribute("data-kept"));
      if (c.shown !== c.kept) out.problems.push(`${id}: ${JSON.stringify(c)}: the page keeps ${c.shown}, Python ${c.kept}`);
    }
    if (!out.checks.length) out.problems.push(`${id} has no data-checks`);
  } else if (kind === "attention") {
    const heads = await root.locator(".pe-head option").count(), layers = await root.locator(".pe-layer option").count();
    await setControl(page, id, "pe-layer", layers - 1);
    await setControl(page, id, "pe-head", heads - 1);
    out.title = await root.locator(".pe-title").textContent();
    if (out.title !== `layer ${layers - 1}, head ${heads - 1}`) out.problems.push(`${id}: title ${JSON.stringify(out.title)} after choosing layer ${layers - 1}, head ${heads - 1}`);
  } else if (kind === "embedding") {
    const point = root.locator(".pe-point").last();
    await point.hover();
    out.label = await point.getAttribute("data-label");
    out.tip = await root.locator(".pe-tip").textContent();
    out.changed = out.tip.includes(`'${out.label}'`);
    if (!out.changed) out.problems.push(`${id}: hovering ${JSON.stringify(out.label)} shows ${JSON.stringify(out.tip)}`);
    return out;
  }
  out.changed = (await figure()) !== before;
  if (!out.changed) out.problems.push(`${id}: the figure did not change when the controls moved`);
  return out;
}
if (plan.explorers) {
  report.explorers = {};
  for (const p of plan.explorers.pages) {
    const page = await context.newPage();
    const rep = (current = { problems: [], explorers: [], script_errors: [] });
    report.explorers[p] = rep;
    // Reported, not counted: on a file:// page the integrity attributes of the CDN tags cannot be
    // dropped as above, so require.js (served from npm) is refused and the ipywidgets manager that
    // needs it fails ("define is not defined"); the explorers need neither.
    page.on("pageerror", (err) => rep.script_errors.push(err.message.split("\n")[0]));
    await page.goto(plan.explorers.base + p, { waitUntil: "load" });
    const found = await page.locator("main .page-explorer").evaluateAll((els) => els.map((e) => [e.id, e.dataset.explorer]));
    for (const [id, kind] of found) {
      rep.explorers.push(await checkExplorer(page, id, kind));
      await page.locator(`#${id}`).screenshot({ path: path.join(plan.screenshots, `${id}.png`) }).catch(() => {});
    }
    for (const e of rep.explorers) rep.problems.push(...e.problems);
    current = null;
    await page.close();
  }
}

if (plan.search) {
  const page = await context.newPage();
  await page.goto(`${plan.base}search.html?q=${encodeURIComponent(plan.search.term)}`);
  const hits = await page.locator("#search-results li a").first().waitFor({ timeout: 20000 })
    .then(() => page.evaluate(() => [...document.querySelectorAll("#search-results li a")].map((a) => a.getAttribute("href"))))
    .catch(() => []);
  report.search = { term: plan.search.term, hits, found: hits.some((h) => h.includes(plan.search.expect)) };
  await page.close();
}
await browser.close();
console.log(JSON.stringify(report));
