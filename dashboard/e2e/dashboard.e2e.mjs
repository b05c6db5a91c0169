// End-to-end test of the dashboard in Debian's Chromium (playwright-core, no downloaded browser),
// against a real stack in demo mode: simulator -> ingest -> Kafka -> worker -> API -> this page.
//
// Driven by tests/test_dashboard_e2e.py, which starts the stack; runnable by hand too:
//   E2E_BASE=http://127.0.0.1:8000 E2E_SIM=http://127.0.0.1:8765 \
//   E2E_VENUES=binance,bybit,... E2E_STALL_VENUE=okx node e2e/dashboard.e2e.mjs
//
// Prints one line `E2E_RESULT {json}` (timings, frame rate, latency) and exits non-zero on failure.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const BASE = env("E2E_BASE").replace(/\/$/, "");
const SIM = env("E2E_SIM").replace(/\/$/, "");
const VENUES = env("E2E_VENUES").split(",").filter(Boolean);
const STALL_VENUE = env("E2E_STALL_VENUE", VENUES[VENUES.length - 1]);
const DISLOCATE_BASE = env("E2E_DISLOCATE_BASE", "BTC");
const DISLOCATE_VENUE = env("E2E_DISLOCATE_VENUE", "binance");
const E2E_DISLOCATE_SECONDS = env("E2E_DISLOCATE_SECONDS", "30");
const OPPORTUNITY_WITHIN_S = Number(env("E2E_OPPORTUNITY_WITHIN_S", "20"));
/** Once the API has the episode, the page must show it within this (REST poll 1 s + WS push). */
const API_TO_SCREEN_S = Number(env("E2E_API_TO_SCREEN_S", "3"));
const EXPECT_TOAST = env("E2E_EXPECT_TOAST", "0") === "1";
const PERF_SECONDS = Number(env("E2E_PERF_SECONDS", "8"));
const ARTIFACTS = resolve(env("E2E_ARTIFACTS", "test-artifacts/dashboard"));
const CHROMIUM = env("E2E_CHROMIUM", "/usr/bin/chromium");

mkdirSync(ARTIFACTS, { recursive: true });
const result = { steps: {}, perf: null };
const started = Date.now();
const step = (name, t0) => {
  result.steps[name] = Math.round((Date.now() - t0) / 100) / 10;
  console.log(`ok  ${name} (${result.steps[name]}s)`);
};

async function control(action, query) {
  const response = await fetch(`${SIM}/control/${action}?${new URLSearchParams(query)}`, { method: "POST" });
  if (!response.ok) throw new Error(`simulator ${action}: HTTP ${response.status} ${await response.text()}`);
}

/** Polls `check` until it returns a truthy non-string value; a string is a diagnostic ("missing x"). */
async function waitFor(what, timeoutMs, check, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last && typeof last !== "string") return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} (last: ${last})`);
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "arbstream-e2e-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1680, height: 1000 },
});
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("console", (message) => {
  if (message.type() === "error") pageErrors.push(`console: ${message.text()}`);
});
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });

/** Venues that have a quote cell in the matrix right now. */
const venuesWithPrices = () =>
  page.$$eval('[data-testid="price-cell"][data-venue]', (cells) => [...new Set(cells.map((c) => c.getAttribute("data-venue")))]);
const visibleSymbols = () => page.$$eval('[data-testid="price-row"]', (rows) => rows.map((r) => r.getAttribute("data-symbol")));

try {
  // 1. Prices for every simulated venue.
  let t0 = Date.now();
  await page.goto(`${BASE}/`);
  await waitFor("the WebSocket to be live", 20_000, async () => (await page.getAttribute('[data-testid="ws-indicator"]', "data-state")) === "live");
  await waitFor(`prices from every venue (${VENUES.join(", ")})`, 45_000, async () => {
    const seen = new Set(await venuesWithPrices());
    const missing = VENUES.filter((v) => !seen.has(v));
    return missing.length === 0 ? true : `missing ${missing.join(",")}`;
  });
  const symbols = await visibleSymbols();
  assert(symbols.includes(DISLOCATE_BASE), `${DISLOCATE_BASE} row present (rows: ${symbols})`);
  // The cross-venue spread column: the API's /api/spreads net for the symbol, as a percentage.
  const spreadCell = `[data-testid="price-row"][data-symbol="${DISLOCATE_BASE}"] [data-testid="spread-cell"]`;
  await waitFor(`a net spread for ${DISLOCATE_BASE}`, 15_000, async () => {
    const text = (await page.textContent(spreadCell)) ?? "";
    return /^-?\d+\.\d{3} %/.test(text) ? true : `cell shows ${JSON.stringify(text)}`;
  });
  const spreads = await (await fetch(`${BASE}/api/spreads?symbols=${DISLOCATE_BASE}`)).json();
  assert(spreads.spreads[0]?.usable_venues >= 2, `/api/spreads has a pair for ${DISLOCATE_BASE}: ${JSON.stringify(spreads)}`);
  step("prices_for_every_venue", t0);

  // 2. Demo banner: shown exactly when the API says the data is simulated.
  const info = await (await fetch(`${BASE}/api/info`)).json();
  assert(typeof info.demo === "boolean", `GET /api/info reports demo: ${JSON.stringify(info)}`);
  await waitFor("the demo banner to match /api/info", 5_000, async () => (await page.locator('[data-testid="demo-banner"]').count()) === (info.demo ? 1 : 0));
  result.demo = info.demo;
  await shot("01-prices");

  // 3. Frame rate and update latency with every symbol the stack tracks.
  await page.evaluate(() => window.arbstreamPerf.start());
  await page.waitForTimeout(PERF_SECONDS * 1000);
  result.perf = await page.evaluate(() => window.arbstreamPerf.report());
  console.log(`perf ${JSON.stringify(result.perf)}`);

  // 4. Price filters: search and venue filter.
  t0 = Date.now();
  await page.fill('[data-testid="price-search"]', "eth");
  await waitFor("search to leave only ETH", 5_000, async () => JSON.stringify(await visibleSymbols()) === '["ETH"]');
  await page.fill('[data-testid="price-search"]', "");
  await waitFor("search cleared", 5_000, async () => (await visibleSymbols()).length === symbols.length);
  const hide = VENUES[0];
  await page.click(`[data-testid="venue-filter"] [data-venue="${hide}"]`);
  await waitFor(`${hide} column hidden`, 5_000, async () => !(await venuesWithPrices()).includes(hide));
  await shot("02-prices-filtered");
  await page.click(`[data-testid="venue-filter"] [data-venue="${hide}"]`);
  await waitFor(`${hide} column back`, 5_000, async () => (await venuesWithPrices()).includes(hide));
  step("price_filters", t0);

  // 5. A planted dislocation shows up as an open episode (and its alert as a toast).
  await page.click('[data-testid="tab-opportunities"]');
  await page.waitForSelector('[data-testid="opportunities-screen"]');
  t0 = Date.now();
  await control("dislocate", { base: DISLOCATE_BASE, venue: DISLOCATE_VENUE, bps: "150", seconds: E2E_DISLOCATE_SECONDS });
  // In parallel: when does the API itself first report the episode? (backend latency)
  let apiSeenAt = null;
  const apiWatch = (async () => {
    while (apiSeenAt === null && Date.now() - t0 < OPPORTUNITY_WITHIN_S * 1000) {
      const body = await (await fetch(`${BASE}/api/opportunities?symbol=${DISLOCATE_BASE}`)).json().catch(() => ({}));
      if ((body.opportunities ?? []).some((o) => o.sell_venue === DISLOCATE_VENUE)) apiSeenAt = Date.now();
      else await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const rowSel = `[data-testid="open-episodes"] tr[data-symbol="${DISLOCATE_BASE}"][data-sell="${DISLOCATE_VENUE}"]`;
  await waitFor(`an open ${DISLOCATE_BASE} episode selling on ${DISLOCATE_VENUE}`, OPPORTUNITY_WITHIN_S * 1000, async () => (await page.locator(rowSel).count()) > 0, 100);
  const screenSeenAt = Date.now();
  await apiWatch;
  result.opportunity_seconds = (screenSeenAt - t0) / 1000;
  result.opportunity_api_seconds = apiSeenAt === null ? null : (apiSeenAt - t0) / 1000;
  result.opportunity_api_to_screen_seconds = apiSeenAt === null ? null : Math.max(0, screenSeenAt - apiSeenAt) / 1000;
  assert(
    result.opportunity_api_to_screen_seconds === null || result.opportunity_api_to_screen_seconds <= API_TO_SCREEN_S,
    `the page showed the episode ${result.opportunity_api_to_screen_seconds}s after the API had it (max ${API_TO_SCREEN_S}s)`,
  );
  step("opportunity_from_dislocation", t0);
  const toast = await waitFor("an alert toast", 8_000, async () => (await page.locator('[data-testid="alert-toast"]').count()) > 0).catch(() => false);
  result.toast = Boolean(toast);
  if (EXPECT_TOAST) {
    assert(toast, "the planted dislocation's alert was announced by a toast");
    const toastText = await page.locator('[data-testid="alert-toast"]').first().textContent();
    assert(toastText.includes(DISLOCATE_BASE) && toastText.includes(`sell ${DISLOCATE_VENUE}`), `toast names the trade: ${toastText}`);
    await waitFor("the alert in the recent alerts table", 5_000, async () => (await page.locator(`[data-testid="recent-alerts"] tr[data-symbol="${DISLOCATE_BASE}"]`).count()) > 0);
  }
  await shot("03-opportunities");

  // 6. Opportunity filters (applied by the API): minimum net spread, symbol, venue.
  t0 = Date.now();
  const openRows = () => page.$$eval('[data-testid="open-episodes"] tbody tr[data-symbol]', (rows) => rows.map((r) => ({ symbol: r.dataset.symbol, buy: r.dataset.buy, sell: r.dataset.sell, net: Number(r.dataset.net) })));
  await page.fill('[data-testid="opp-min-net"]', "50");
  await waitFor("no episode at 50 % net", 5_000, async () => (await openRows()).length === 0);
  await page.fill('[data-testid="opp-min-net"]', "0.5");
  await waitFor("the planted episode back above 0.5 %", 8_000, async () => {
    const rows = await openRows();
    return rows.length > 0 && rows.every((r) => r.net >= 0.005);
  });
  const other = DISLOCATE_BASE === "ETH" ? "BTC" : "ETH";
  await page.selectOption('[data-testid="opp-symbol"]', other);
  await waitFor(`no ${DISLOCATE_BASE} row with the symbol filter on ${other}`, 5_000, async () => {
    const rows = await openRows();
    return rows.every((r) => r.symbol === other) && !rows.some((r) => r.symbol === DISLOCATE_BASE);
  });
  await page.selectOption('[data-testid="opp-symbol"]', DISLOCATE_BASE);
  const shown = await openRows();
  const legVenue = shown.find((r) => r.buy !== DISLOCATE_VENUE)?.buy ?? VENUES.find((v) => v !== DISLOCATE_VENUE);
  await page.selectOption('[data-testid="opp-venue"]', legVenue);
  await waitFor(`only episodes with a ${legVenue} leg`, 8_000, async () => {
    const rows = await openRows();
    return rows.length > 0 && rows.every((r) => r.buy === legVenue || r.sell === legVenue) ? true : JSON.stringify(rows);
  });
  await shot("04-opportunities-filtered");
  await page.fill('[data-testid="opp-min-net"]', "");
  await page.selectOption('[data-testid="opp-venue"]', "");
  await page.selectOption('[data-testid="opp-symbol"]', "");
  step("opportunity_filters", t0);

  // 7. Symbol detail: quotes per venue, spread chart, cooldown, episode history.
  t0 = Date.now();
  await page.goto(`${BASE}/#/symbol/${DISLOCATE_BASE}`);
  await page.waitForSelector('[data-testid="symbol-screen"]');
  await waitFor("per-venue quotes", 10_000, async () => (await page.locator('[data-testid="symbol-quotes"] tbody tr').count()) >= VENUES.length);
  await page.waitForSelector('[data-testid="spread-chart"] canvas');
  await page.waitForSelector('[data-testid="cooldown"]');
  await page.waitForTimeout(2_500); // a few chart points
  await shot("05-symbol");
  step("symbol_detail", t0);

  // 8. A venue the simulator stalls is shown as not connected on the venue screen.
  t0 = Date.now();
  await page.goto(`${BASE}/#/venues`);
  await page.waitForSelector(`[data-testid="venues-table"] tr[data-venue="${STALL_VENUE}"]`);
  const healthyBefore = await page.getAttribute(`tr[data-venue="${STALL_VENUE}"]`, "data-state");
  await control("stall", { venue: STALL_VENUE, seconds: "60" });
  const bad = await waitFor(`${STALL_VENUE} shown as not connected`, 25_000, async () => {
    const state = await page.getAttribute(`tr[data-venue="${STALL_VENUE}"]`, "data-state");
    return ["stale", "disconnected", "error", "gap"].includes(state) ? { state } : `state ${state}`;
  });
  const others = await page.$$eval("[data-testid=venues-table] tr[data-venue]", (rows) => rows.map((r) => [r.dataset.venue, r.dataset.state]));
  const okOthers = others.filter(([v, s]) => v !== STALL_VENUE && ["streaming", "subscribed", "connected"].includes(s));
  assert(okOthers.length >= VENUES.length - 2, `other venues stay connected: ${JSON.stringify(others)}`);
  result.stalled = { venue: STALL_VENUE, before: healthyBefore, after: bad.state };
  await shot("06-venues-stalled");
  step("stalled_venue_not_connected", t0);

  // 9. Its quotes age on the price matrix and are greyed as stale; the others stay fresh.
  t0 = Date.now();
  await page.click('[data-testid="tab-prices"]');
  await waitFor(`${STALL_VENUE} quotes greyed as stale`, 15_000, async () => {
    const states = await page.$$eval(`[data-testid="price-cell"][data-venue="${STALL_VENUE}"]`, (cells) => cells.map((c) => c.getAttribute("data-state")));
    return states.length > 0 && states.every((s) => s === "stale") ? true : `states ${states}`;
  });
  const freshOthers = await page.$$eval('[data-testid="price-cell"][data-state="fresh"]', (cells) => cells.length);
  result.fresh_cells_besides_stalled = freshOthers;
  await shot("07-prices-stalled");
  step("stalled_venue_greyed", t0);

  assert(pageErrors.length === 0, `no page errors: ${pageErrors.join(" | ")}`);
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error?.stack ?? error);
  result.page_errors = pageErrors;
  await shot("99-failure").catch(() => undefined);
  console.error(result.error);
} finally {
  result.seconds = (Date.now() - started) / 1000;
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`E2E_RESULT ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
