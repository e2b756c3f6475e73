// The CDN scripts the book loads, answered from the npm packages in node_modules (so the browser
// test and the PDF build, tools/print_book.mjs, need no network): [URL pattern, local file].
import path from "node:path";
import fs from "node:fs";
import { fileURLToPath } from "node:url";

export const NM = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");
export const LOCAL = [
  [/^https:\/\/cdn\.jsdelivr\.net\/npm\/mathjax@3\/([^?#]*)/, (m) => path.join(NM, "mathjax", m[1])],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/require\.js\/[^/]+\/require(\.min)?\.js/, () => path.join(NM, "requirejs", "require.js")],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/d3\/[^/]+\/d3(\.min)?(\.js)?$/, () => path.join(NM, "d3", "dist", "d3.min.js")],
  [/^https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/jquery\/[^/]+\/jquery(\.min)?(\.js)?$/, () => path.join(NM, "jquery", "dist", "jquery.min.js")],
  [/^https:\/\/cdn\.jsdelivr\.net\/npm\/@jupyter-widgets\/html-manager@[^/]+\/dist\/([^?#/]+)/, (m) => path.join(NM, "@jupyter-widgets", "html-manager", "dist", m[1])],
];
const TYPES = { ".js": "application/javascript", ".woff": "font/woff", ".woff2": "font/woff2", ".css": "text/css" };

// The local file that answers a CDN URL, with its content type, or null.
export function localCopy(url) {
  for (const [pattern, file] of LOCAL) {
    const m = url.match(pattern);
    if (m) {
      const f = file(m);
      if (fs.existsSync(f)) return { path: f, contentType: TYPES[path.extname(f)] || "application/octet-stream" };
    }
  }
  return null;
}
