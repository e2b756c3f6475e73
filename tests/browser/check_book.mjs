// Drive a real browser (Debian's chromium, through playwright-core) over the rendered book.
//
//   node check_book.mjs PLAN.json
//
// PLAN.json: {"base": "http://127.0.0.1:PORT/", "chromium": "/usr/bin/chromium", "screenshots": DIR,
//             "pages": [{"path", "title", "notebook" (chapters only)}], "search": {"term", "expect"},
//             "furniture": {"home", "chapters", "first", "solutions"},
//             "mobile": {"width", "drawerPage", "chapters": [titles], "screenshot"},
//             "offline": {"needsCdn": ["math", ...], "screenshot"},
//             "explorers": {"base": "file:///.../_build/html/", "pages": [path, ...]}}
// Prints one JSON report: {"pages": {path: {"problems": [...], ...}}, "search": {...}, "blocked": [...],
//                          "furniture": {...}, "mobile": {...}, "offline": {...}, "explorers": {...}}.
// Requests to the CDNs the book uses are answered from the npm packages in node_modules, so the checks
// hold with no network; any other outside request is blocked and reported.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { LOCAL, localCopy } from "./cdn.mjs";

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
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
  const local = localCopy(url);
  if (local) return route.fulfill(local);
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
// Page furniture at desktop width: one search box (no duplicated top strip), a favicon, the home
// page's chapter links and "Start with Chapter 1", solutions that open in one click.
if (plan.furniture) {
  const f = plan.furniture;
  const rep = (report.furniture = { problems: [] });
  const page = await context.newPage();
  await page.goto(plan.base + f.home);
  rep.searchBoxes = await page.locator(".search-button-field:visible").count();
  if (rep.searchBoxes !== 1) rep.problems.push(`${rep.searchBoxes} visible search boxes on the home page, expected 1`);
  const icon = await page.evaluate(() => (document.querySelector("link[rel~='icon']") || {}).href || null);
  rep.favicon = icon;
  if (!icon || !(await context.request.get(icon)).ok()) rep.problems.push(`no favicon (${icon})`);
  rep.chapterLinks = await page.evaluate(() => [...document.querySelectorAll("main table a[href*='chapters/']")].map((a) => a.getAttribute("href")));
  if (rep.chapterLinks.length < f.chapters) rep.problems.push(`the home page's chapter table links ${rep.chapterLinks.length} chapters, expected ${f.chapters}`);
  const start = page.locator("main a", { hasText: "Start with Chapter 1" });
  rep.start = (await start.count()) ? await start.first().getAttribute("href") : null;
  if (!rep.start || !rep.start.includes(f.first)) rep.problems.push(`no "Start with Chapter 1" link to ${f.first} (${rep.start})`);
  const pdf = page.locator("main a", { hasText: "PDF" });
  rep.pdf = (await pdf.count()) ? await pdf.first().evaluate((a) => a.href) : null;
  if (!rep.pdf || !(await context.request.get(rep.pdf)).ok()) rep.problems.push(`the home page's PDF link (${rep.pdf}) does not open`);
  await page.close();

  const sol = await context.newPage();
  await sol.goto(plan.base + f.solutions);
  const solution = sol.locator(".admonition.book-solution").first();
  const code = solution.locator(".cell_input").first();
  if (!(await solution.count()) || !(await code.count())) rep.problems.push(`${f.solutions}: no solution with its code inside`);
  else {
    if (await code.isVisible()) rep.problems.push(`${f.solutions}: a solution's code shows before it is opened`);
    await solution.locator(":scope > .admonition-title").click();
    await code.waitFor({ state: "visible", timeout: 5000 }).catch(() => rep.problems.push(`${f.solutions}: one click on a solution does not show its code`));
  }
  await sol.close();
}

// Phones: at 420 px no page is wider than the screen, the ☰ opens a drawer listing every chapter
// and "on this page" opens the page's contents.
if (plan.mobile) {
  const m = plan.mobile;
  const phone = await browser.newContext({ viewport: { width: m.width, height: 900 }, isMobile: true, hasTouch: true });
  await phone.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(plan.base)) return route.continue();
    const local = localCopy(url);
    return local ? route.fulfill(local) : route.abort();
  });
  const rep = (report.mobile = { width: m.width, problems: [], wide: {}, drawer: null });
  for (const spec of plan.pages) {
    const page = await phone.newPage();
    await page.goto(plan.base + spec.path, { waitUntil: "load" });
    await page.waitForTimeout(300);
    const wide = await page.evaluate(() => [document.documentElement.scrollWidth, document.body.scrollWidth]);
    if (Math.max(...wide) > m.width + 1) {
      // the widest element that sticks out, to say what to fix
      const culprit = await page.evaluate((w) => {
        let worst = null;
        for (const el of document.querySelectorAll("main *")) {
          const r = el.getBoundingClientRect();
          if (r.right > w + 1 && (!worst || r.width < worst.w) && r.width > 0) worst = { w: r.width, what: `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}: ${(el.textContent || "").trim().slice(0, 60)}` };
        }
        return worst && worst.what;
      }, m.width);
      rep.wide[spec.path] = Math.max(...wide);
      rep.problems.push(`${spec.path} is ${Math.max(...wide)} px wide at ${m.width} px (${culprit})`);
    }
    if (spec.path === m.drawerPage) {
      await page.locator(".bd-header-article .primary-toggle").click();
      const dialog = page.locator("#pst-primary-sidebar-modal");
      await dialog.waitFor({ state: "visible", timeout: 5000 }).catch(() => {});
      const listed = await page.evaluate(() => [...document.querySelectorAll("#pst-primary-sidebar-modal[open] a")].map((a) => a.textContent.trim()));
      rep.drawer = listed;
      const plain = (t) => t.replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, '"');
      const missing = m.chapters.filter((t) => !listed.some((l) => plain(l).includes(plain(t))));
      if (!listed.length) rep.problems.push("the ☰ button does not open the navigation drawer at 420 px");
      else if (missing.length) rep.problems.push(`the navigation drawer lacks ${JSON.stringify(missing)}`);
      await page.screenshot({ path: path.join(plan.screenshots, "mobile_drawer.png") });
      await page.keyboard.press("Escape");
      await page.locator(".bd-header-article .secondary-toggle").click();
      const toc = await page.locator("#pst-secondary-sidebar-modal[open] a").count().catch(() => 0);
      await page.waitForTimeout(300);
      rep.pageToc = await page.evaluate(() => document.querySelectorAll("#pst-secondary-sidebar-modal[open] a").length);
      if (!rep.pageToc && !toc) rep.problems.push("the \"on this page\" button does not open the page's contents at 420 px");
      await page.keyboard.press("Escape");
    }
    if (spec.path === m.screenshot) await page.screenshot({ path: path.join(plan.screenshots, "mobile_page.png") });
    await page.close();
  }
  await phone.close();
}

// Offline: every request outside the book is blocked, as for a reader without network. The pages
// must still load and show their text, code and figures without script errors, except where a
// feature needs the CDN (plan.offline.needsCdn: what book/running.md says).
if (plan.offline) {
  const off = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await off.route("**/*", (route) => (route.request().url().startsWith(plan.base) ? route.continue() : route.abort()));
  const rep = (report.offline = { problems: [], pages: {} });
  for (const spec of plan.pages) {
    const page = await off.newPage();
    const errors = [];
    page.on("pageerror", (err) => errors.push(err.message.split("\n")[0]));
    await page.goto(plan.base + spec.path, { waitUntil: "load" });
    await page.waitForTimeout(500);
    const r = await page.evaluate(() => ({
      title: (document.querySelector("main h1") || {}).textContent || "",
      math: document.querySelectorAll("main .math").length,
      typeset: document.querySelectorAll("main mjx-container").length,
      localImages: [...document.images].filter((i) => i.src.startsWith(location.origin)).length,
      localBroken: [...document.images].filter((i) => i.src.startsWith(location.origin) && !i.naturalWidth).length,
      bertviz: document.querySelectorAll("main [id^='bertviz-']").length,
      bertvizDrawn: document.querySelectorAll("main [id^='bertviz-'] svg line").length,
    }));
    r.errors = errors;
    r.needs = [];
    if (r.math > r.typeset) r.needs.push("math");
    if (r.bertviz && !r.bertvizDrawn) r.needs.push("bertviz");
    rep.pages[spec.path] = r;
    if (!r.title.trim()) rep.problems.push(`${spec.path}: no title offline`);
    if (r.localBroken) rep.problems.push(`${spec.path}: ${r.localBroken} of the book's own images do not load offline`);
    const unexplained = r.needs.filter((n) => !plan.offline.needsCdn.includes(n));
    if (unexplained.length) rep.problems.push(`${spec.path}: offline, ${unexplained.join(", ")} fails, which book/running.md does not list`);
    // script errors are allowed only where a listed CDN feature (bertviz's require.js) is on the page
    if (errors.length && !r.bertviz) rep.problems.push(`${spec.path}: script errors offline: ${JSON.stringify(errors)}`);
    if (spec.path === plan.offline.screenshot) await page.screenshot({ path: path.join(plan.screenshots, "offline_page.png") });
    await page.close();
  }
  await off.close();
}

await browser.close();
console.log(JSON.stringify(report));
