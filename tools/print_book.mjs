// The whole book as one PDF: Debian's chromium (through playwright-core, from tests/browser's npm
// packages) prints Sphinx's single-page build. `make pdf` runs it; so does tests/test_browser.py.
//
//   node tools/print_book.mjs SINGLEHTML_DIR OUT.pdf [CHROMIUM]
//
// MathJax is served from the npm copy (tests/browser/cdn.mjs), so the formulas are typeset without
// network; every fold (solutions, hidden cells) is opened; the print rules of
// book/_ext/static/book_pages.css wrap long code lines and fit figures to the page.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { NM, localCopy } from "../tests/browser/cdn.mjs";

const [root, out, chromiumPath = "/usr/bin/chromium"] = process.argv.slice(2);
const TYPES = { ".html": "text/html", ".css": "text/css", ".js": "application/javascript", ".png": "image/png",
                ".svg": "image/svg+xml", ".woff2": "font/woff2", ".woff": "font/woff" };

// the single-page build served over HTTP, as a reader's browser would see it
const server = http.createServer((req, res) => {
  // Sphinx writes the single page as book/intro.html (the book's root document) but with links
  // relative to the output folder (_static/, _images/): it is served as the folder's index
  const name = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const file = path.join(path.resolve(root), name === "/" ? "book/intro.html" : name);
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
    res.end(data);
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}/`;
const { chromium } = await import(pathToFileURL(path.join(NM, "playwright-core", "index.mjs")).href);

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 1000, height: 1400 } });
await context.route(/^https?:/, (route) => {
  const url = route.request().url();
  if (url.startsWith(base)) return route.continue();
  const local = localCopy(url);
  return local ? route.fulfill(local) : route.abort();
});
const page = await context.newPage();
await page.goto(base, { waitUntil: "load", timeout: 120000 });
await page.emulateMedia({ media: "print" });
await page.evaluate(() => window.bookPages && window.bookPages.openEverything());
// wait for MathJax to typeset every formula (there is no MathJax on a book without math)
await page.waitForFunction(
  () => !document.querySelector(".math") || (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise),
  null, { timeout: 60000 },
);
await page.evaluate(async () => { if (window.MathJax && window.MathJax.startup) await window.MathJax.startup.promise; });
const [formulas, typeset] = await page.evaluate(() => [document.querySelectorAll(".math").length, document.querySelectorAll("mjx-container").length]);
if (typeset < formulas) { console.error(`only ${typeset} of ${formulas} formulas typeset`); process.exitCode = 1; }
await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: 60000 });
// what went into the PDF, beside it (OUT.json): tests/test_browser.py checks it
const contents = await page.evaluate(() => ({
  documents: [...document.querySelectorAll("span[id^='document-'] + section > h2")].map((h) => h.textContent.replace("#", "").trim()),
  figures: [...document.images].filter((i) => i.getAttribute("src").includes("_images/")).length,
  brokenImages: [...document.images].filter((i) => !i.naturalWidth).map((i) => i.getAttribute("src")),
  formulas: document.querySelectorAll(".math").length,
  typeset: document.querySelectorAll("mjx-container").length,
}));
fs.writeFileSync(out.replace(/\.pdf$/, "") + ".json", JSON.stringify(contents, null, 1));
if (contents.brokenImages.length) {
  console.error(`images that did not load: ${contents.brokenImages.join(", ")}`);
  process.exitCode = 1;
}
await page.pdf({
  path: out,
  format: "A4",
  margin: { top: "15mm", bottom: "15mm", left: "14mm", right: "14mm" },
  printBackground: false,
  outline: true,
  tagged: false,
  displayHeaderFooter: true,
  headerTemplate: "<span></span>",
  footerTemplate: '<div style="font-size:8px;width:100%;text-align:center"><span class="pageNumber"></span></div>',
});
await browser.close();
server.close();
console.log(`wrote ${out}`);
