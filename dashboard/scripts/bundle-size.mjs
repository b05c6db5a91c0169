// Gzip size of the built dashboard: what the first page load fetches, and the lazy chunks.
//   npm run build && npm run size
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../dist");
const html = readFileSync(join(dist, "index.html"), "utf8");
const files = ["index.html", ...readdirSync(join(dist, "assets")).map((f) => `assets/${f}`)];
const initial = new Set(["index.html", ...[...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1])]);
let first = 0;
let lazy = 0;
const rows = files.map((file) => {
  const body = readFileSync(join(dist, file));
  const gz = gzipSync(body, { level: 9 }).length;
  if (initial.has(file)) first += gz;
  else lazy += gz;
  return { file, kB: +(body.length / 1024).toFixed(1), gzip_kB: +(gz / 1024).toFixed(1), loaded: initial.has(file) ? "first load" : "lazy" };
});
console.table(rows);
console.log(`first load: ${(first / 1024).toFixed(1)} kB gzip; lazy (symbol screen + chart): ${(lazy / 1024).toFixed(1)} kB gzip`);
