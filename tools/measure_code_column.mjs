// How many monospace characters fit on one line of a code cell of the rendered book, at a given
// viewport width, before the cell scrolls sideways (STYLE.md, "Layout on the page").
//
//   node tools/measure_code_column.mjs PAGE.html CHROMIUM [WIDTH ...]
//
// PAGE.html: a built chapter page (e.g. _build/html/chapters/ch03_attention.html); CHROMIUM: the
// browser to drive (Debian's chromium); WIDTH: viewport widths in px (default 1280 1440).
// For each width it fills a code block (its <pre>) with n characters for growing n and prints the
// largest n that does not scroll sideways (scrollWidth <= clientWidth): for a code cell's input,
// its output, the input of a folded solution cell (tag hide-cell, opened), and a literalinclude
// block of a page. Runs with the npm packages of tests/browser (`make test` installs them).
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve("tests/browser/package.json"));
const { chromium } = require("playwright-core");

const [page_, exe, ...widthArgs] = process.argv.slice(2);
const widths = widthArgs.length ? widthArgs.map(Number) : [1280, 1440];
const browser = await chromium.launch({ executablePath: exe, args: ["--no-sandbox", "--disable-gpu"] });
const result = {};
for (const width of widths) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  await page.route(/^https?:/, (route) => route.abort()); // no network: the layout is the book's CSS
  await page.goto("file://" + path.resolve(page_));
  result[width] = await page.evaluate(() => {
    const fits = (pre) => {
      const keep = pre.innerHTML;
      let n = 10;
      for (;; n++) {
        pre.textContent = "x".repeat(n + 1);
        if (pre.scrollWidth > pre.clientWidth) break;
      }
      const rect = pre.getBoundingClientRect();
      const font = getComputedStyle(pre).font;
      pre.innerHTML = keep;
      return { chars: n, preWidthPx: Math.round(rect.width), font };
    };
    for (const d of document.querySelectorAll("details")) d.open = true; // folded cells, opened
    const out = {};
    const where = {
      input: "div.cell:not(.tag_hide-cell) div.cell_input pre",
      output: "div.cell:not(.tag_hide-cell) div.cell_output pre",
      foldedInput: "div.cell.tag_hide-cell div.cell_input pre", // a solution, tagged hide-cell
      included: "div[class^=\"highlight-\"]:not(.cell *) pre", // a literalinclude on a page
    };
    for (const [name, selector] of Object.entries(where)) {
      const pre = document.querySelector(selector);
      if (pre) out[name] = fits(pre);
    }
    return out;
  });
  await context.close();
}
await browser.close();
console.log(JSON.stringify(result, null, 1));
