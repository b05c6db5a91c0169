// Frame rate and update latency of the built dashboard under a synthetic full load, in Debian's
// Chromium: hundreds of instruments, each updating several times a second.
//
//   npm run build && node e2e/stress.mjs [symbols=40] [updates per instrument per s=5] [seconds=10]
//
// The page is dashboard/dist served through Playwright routes; the API's REST answers are stubs,
// and the WebSocket is replaced in the page by a generator speaking the API's protocol
// (`snapshot`, then `price_update` with sequence numbers), so what is measured is the dashboard
// alone: JSON parse + store + React render + paint, on the page's main thread (the generator's own
// JSON.stringify runs there too, which makes the figures conservative).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const [symbols = 40, rate = 5, seconds = 10] = process.argv.slice(2).map(Number);
const VENUES = ["binance", "bybit", "okx", "kucoin", "deribit", "bitmex", "gate", "mexc", "bitget", "phemex", "coindcx", "hyperliquid", "paradex", "coinex"];
const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../dist");
const ORIGIN = "http://bench.local";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

const userDataDir = mkdtempSync(join(tmpdir(), "arbstream-stress-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.E2E_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1680, height: 1000 },
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));

const now = new Date().toISOString();
const stubs = {
  "/api/info": { service: "arbstream", version: "bench", namespace: "", complete: true, docs: "/docs", websocket: "/ws" },
  "/api/venues": { venues: [], timestamp: now },
  "/api/opportunities": { opportunities: [], recent_alerts: [], timestamp: now },
  "/api/episodes": { episodes: [], total: 0, limit: 50, offset: 0, timestamp: now },
  "/health": {
    status: "ok",
    complete: true,
    broker: { reachable: true, bootstrap: "bench" },
    consumer: { caught_up: true, lag_total: 0, lag_by_topic: {}, records_applied: 0, load_seconds: 0 },
    venues: [],
    venues_unhealthy: [],
    reasons: [],
    timestamp: now,
  },
};
// The Prices screen polls /api/spreads (one row per symbol) every second: new values each time.
const spreadNames = Array.from({ length: symbols }, (_, i) => (i === 0 ? "BTC" : i === 1 ? "ETH" : `S${String(i).padStart(3, "0")}`));
const spreadsBody = () => ({
  spreads: spreadNames.map((symbol, i) => {
    const net = Number(((Math.random() - 0.7) * 0.8).toFixed(4));
    const [buy, sell] = [VENUES[i % VENUES.length], VENUES[(i + 3) % VENUES.length]];
    return {
      symbol,
      quote_group: "USDT",
      usable_venues: VENUES.length,
      buy_exchange: buy,
      sell_exchange: sell,
      buy_price: 100,
      sell_price: 100.1,
      spread: 0.1,
      spread_percentage: Number((net + 0.1).toFixed(4)),
      net_spread_percentage: net,
      size: 1,
      notional: 100,
      buy_fee: 0.0005,
      sell_fee: 0.0005,
      buy_instrument_id: `${symbol}-USDT-PERP@${buy}`,
      sell_instrument_id: `${symbol}-USDT-PERP@${sell}`,
    };
  }),
  total: symbols,
  offset: 0,
  limit: null,
  timestamp: new Date().toISOString(),
});
await page.route(`${ORIGIN}/**`, async (route) => {
  const url = new URL(route.request().url());
  if (url.pathname in stubs) return route.fulfill({ json: stubs[url.pathname] });
  if (url.pathname === "/api/spreads") return route.fulfill({ json: spreadsBody() });
  const file = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
  try {
    return route.fulfill({ body: readFileSync(join(dist, file)), contentType: TYPES[extname(file)] ?? "application/octet-stream" });
  } catch {
    return route.fulfill({ status: 404, body: "" });
  }
});

// The fake WebSocket, installed before the bundle runs.
await page.addInitScript(
  ({ symbols, rate, venues }) => {
    const names = Array.from({ length: symbols }, (_, i) => (i === 0 ? "BTC" : i === 1 ? "ETH" : `S${String(i).padStart(3, "0")}`));
    const mids = names.map((_, i) => 10 + i * 7.31);
    const entry = (si, venue) => {
      const mid = mids[si] * (1 + (Math.random() - 0.5) * 0.0004);
      const t = Date.now();
      return {
        venue,
        instrument_id: `${names[si]}-USDT-PERP@${venue}`,
        native_symbol: `${names[si]}USDT`,
        quote_group: "USDT",
        price: Number(mid.toFixed(4)),
        price_source: "mid",
        bid: Number((mid * 0.99995).toFixed(4)),
        ask: Number((mid * 1.00005).toFixed(4)),
        bid_size: 1.5,
        ask_size: 2.25,
        last: null,
        mark: null,
        price_multiplier: 1,
        funding_rate: 0.0001,
        crossed: false,
        timestamp: t,
        exchange_ts_missing: false,
        receipt_timestamp: t,
        age_ms: 0,
      };
    };
    class BenchSocket {
      static CONNECTING = 0;
      static OPEN = 1;
      static CLOSING = 2;
      static CLOSED = 3;
      readyState = 0;
      seq = 0;
      constructor(url) {
        this.url = url;
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.({});
        }, 10);
      }
      emit(type, data) {
        this.seq += 1;
        this.onmessage?.({ data: JSON.stringify({ type, seq: this.seq, data }) });
      }
      send(text) {
        if (JSON.parse(text).op !== "subscribe") return;
        const prices = {};
        names.forEach((s, si) => {
          prices[s] = venues.map((v) => entry(si, v));
        });
        this.emit("snapshot", { subscription: { channels: [], symbols: null, venues: null, min_net_spread: null, all_instruments: false }, prices });
        if (this.timer) return;
        const perMs = (names.length * venues.length * rate) / 1000;
        let last = performance.now();
        let carry = 0;
        this.timer = setInterval(() => {
          const t = performance.now();
          carry += (t - last) * perMs; // time-based: a late timer sends the backlog
          last = t;
          for (; carry >= 1; carry -= 1) {
            const si = Math.floor(Math.random() * names.length);
            const venue = venues[Math.floor(Math.random() * venues.length)];
            this.emit("price_update", { ...entry(si, venue), symbol: names[si], exchange: venue, primary: true });
          }
        }, 10);
      }
      close() {
        clearInterval(this.timer);
        this.readyState = 3;
      }
    }
    window.WebSocket = BenchSocket;
  },
  { symbols, rate, venues: VENUES },
);

page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
await page.goto(`${ORIGIN}/${process.env.STRESS_QUERY ?? ""}`);
await page.waitForFunction((n) => document.querySelectorAll('[data-testid="price-row"]').length > 0 && window.arbstreamPerf?.report().symbols === n, symbols, { timeout: 20_000 });
await page.waitForTimeout(2_000); // warm-up
// The renderer's main-thread CPU time (not wall time): what the page costs, which a machine busy with
// other work does not inflate the way it lowers the frame rate.
const metricsSession = await page.context().newCDPSession(page);
await metricsSession.send("Performance.enable");
const metrics = async () => Object.fromEntries((await metricsSession.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
const metricsBefore = await metrics();
await page.evaluate(() => window.arbstreamPerf.start());
await page.waitForTimeout(seconds * 1000);
const report = await page.evaluate(() => window.arbstreamPerf.report());
const metricsAfter = await metrics();
const perSecond = (name) => (metricsAfter[name] - metricsBefore[name]) / (metricsAfter.Timestamp - metricsBefore.Timestamp);
// Scrolling through the whole matrix while it updates.
await page.evaluate(() => window.arbstreamPerf.start());
for (let i = 0; i < 20; i++) {
  await page.mouse.move(800, 600);
  await page.mouse.wheel(0, 400);
  await page.waitForTimeout(100);
}
const scrolling = await page.evaluate(() => window.arbstreamPerf.report());
await page.screenshot({ path: process.env.E2E_SHOT ?? join(tmpdir(), "arbstream-stress.png") });
await context.close();
rmSync(userDataDir, { recursive: true, force: true });

const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
const summary = {
  instruments: symbols * VENUES.length,
  offered_updates_per_s: symbols * VENUES.length * rate,
  applied_updates_per_s: round(report.updatesPerSecond),
  fps: round(report.fps),
  long_frames_over_50ms: report.longFrames,
  max_frame_ms: round(report.maxFrameMs),
  message_to_screen_ms: { p50: round(report.renderP50), p95: round(report.renderP95), p99: round(report.renderP99) },
  fps_while_scrolling: round(scrolling.fps),
  main_thread_cpu_per_s: Math.round(perSecond("ThreadTime") * 1000) / 1000,
  script_s_per_s: Math.round(perSecond("ScriptDuration") * 1000) / 1000,
  style_layout_s_per_s: Math.round((perSecond("RecalcStyleDuration") + perSecond("LayoutDuration")) * 1000) / 1000,
  errors,
};
console.log(JSON.stringify(summary));
process.exit(errors.length === 0 ? 0 : 1);
