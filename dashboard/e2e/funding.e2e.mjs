// The Funding screen in Debian's Chromium (playwright-core, no downloaded browser), against an API
// serving a known funding scenario (tests/test_funding_e2e.py starts it; see tests/test_funding_support.py):
// the planted Hyperliquid (1 h) / Bybit (4 h) carry ranks first with its APR and break-even, the table
// shows interval badges, and the coin page draws the settled-APR history per venue.
//
//   E2E_BASE=http://127.0.0.1:8000 node e2e/funding.e2e.mjs
//
// The expectations default to that scenario; tests/test_funding_stack.py points the script at the
// simulator-fed stack with E2E_PAIR (long/short), E2E_APR, E2E_BREAK_EVEN ("" = any "N.N h"),
// E2E_COIN and E2E_HISTORY_VENUES (comma list of venues whose history lines the coin page draws),
// E2E_OPEN_INTEREST (venue=text pairs the table's open-interest cells must show, "—" where the venue
// publishes none).
//
// Prints one line `E2E_RESULT {json}` and exits non-zero on failure.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const BASE = (process.env.E2E_BASE ?? "").replace(/\/$/, "");
if (!BASE) throw new Error("E2E_BASE is required");
const ARTIFACTS = resolve(process.env.E2E_ARTIFACTS ?? "test-artifacts/funding");
const CHROMIUM = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";
const PAIR = process.env.E2E_PAIR ?? "hyperliquid/bybit";
const APR = process.env.E2E_APR ?? "48.18 %";
const BREAK_EVEN = process.env.E2E_BREAK_EVEN ?? "20.0 h";
const COIN = process.env.E2E_COIN ?? "ETH";
const HISTORY_VENUES = (process.env.E2E_HISTORY_VENUES ?? "binance,bybit,hyperliquid").split(",");
const AT_CAP = process.env.E2E_AT_CAP ?? ""; // venues whose rate sits at its cap: the table marks them "at cap"
// The scenario's open interest (tests/test_funding_support.py OPEN_INTEREST): Binance publishes none.
const OPEN_INTEREST = (process.env.E2E_OPEN_INTEREST ?? "binance=—,bybit=30.00M,hyperliquid=12.00M")
  .split(",")
  .filter(Boolean)
  .map((pair) => pair.split("="));
mkdirSync(ARTIFACTS, { recursive: true });

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last && typeof last !== "string") return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} (last: ${last})`);
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "arbstream-funding-e2e-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
  viewport: { width: 1680, height: 1000 },
});
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
const result = {};
try {
  await page.goto(`${BASE}/#/funding`);
  const first = await waitFor("the best pairs", 45_000, async () => {
    const rows = await page.$$eval('[data-testid="best-pairs"] [data-testid="pair-row"]', (els) =>
      els.map((el) => ({
        pair: el.getAttribute("data-pair"),
        apr: el.querySelector('[data-testid="pair-apr"]')?.textContent,
        breakEven: el.querySelector('[data-testid="pair-break-even"]')?.textContent,
      })),
    );
    if (rows.length === 0) return "no pair rows";
    // A live stack's break-even shows "—" while a leg's quote is momentarily too old: wait for one.
    return BREAK_EVEN || /^\d+\.\d h$/.test(rows[0].breakEven ?? "") ? rows : `first row ${JSON.stringify(rows[0])}`;
  });
  result.pairs = first;
  assert(first[0].pair === PAIR, `planted pair first: ${JSON.stringify(first)}`);
  const breakEvenOk = BREAK_EVEN ? first[0].breakEven === BREAK_EVEN : /^\d+\.\d h$/.test(first[0].breakEven ?? "");
  assert(first[0].apr === APR && breakEvenOk, `APR and break-even: ${JSON.stringify(first[0])}`);
  // The funding table is its own query: under load it can render after the best pairs.
  const badges = await waitFor("the funding table's interval badges", 15_000, async () => {
    const texts = await page.$$eval('[data-testid="funding-table"] [data-testid="interval-badge"]', (els) => els.map((e) => e.textContent));
    return ["1h", "4h", "8h"].every((b) => texts.includes(b)) ? texts : `interval badges 1h/4h/8h: ${texts}`;
  });
  result.badges = badges;
  if (AT_CAP) {
    const capped = await page.$$eval('[data-testid="funding-table"] [data-testid="funding-venue-row"]', (rows) =>
      rows.filter((r) => r.querySelector('[data-testid="at-cap-badge"]')).map((r) => r.getAttribute("data-venue")),
    );
    assert(JSON.stringify(capped) === JSON.stringify(AT_CAP.split(",")), `"at cap" on ${AT_CAP} only: ${capped}`);
    result.atCap = capped;
  }
  // Each venue's first row: the first symbol's (the planted one ranks first; later rows may list the venue again).
  const depths = await page.$$eval('[data-testid="funding-table"] [data-testid="funding-venue-row"]', (rows) =>
    Object.fromEntries(rows.reverse().map((r) => [r.getAttribute("data-venue"), r.querySelector('[data-testid="open-interest"]')?.textContent])),
  );
  result.openInterest = depths;
  for (const [venue, text] of OPEN_INTEREST) assert(depths[venue] === text, `open interest of ${venue} is ${text}: ${JSON.stringify(depths)}`);
  await page.screenshot({ path: join(ARTIFACTS, "funding.png") });

  await page.click(`[data-testid="funding-table"] a[href="#/funding/${COIN}"]`);
  const lines = await waitFor("the history chart", 10_000, async () => {
    const venues = await page.$$eval('[data-testid="history-line"]', (els) => els.map((e) => e.getAttribute("data-venue")));
    return venues.length > 0 ? venues : "no history lines";
  });
  result.historyLines = lines;
  assert(JSON.stringify(lines) === JSON.stringify(HISTORY_VENUES), `one line per venue with settlements: ${lines}`);
  await page.screenshot({ path: join(ARTIFACTS, "funding-coin.png") });
  assert(pageErrors.length === 0, `no page errors: ${pageErrors.join(" | ")}`);
  console.log(`E2E_RESULT ${JSON.stringify(result)}`);
} catch (error) {
  await page.screenshot({ path: join(ARTIFACTS, "failure.png") }).catch(() => {});
  console.error(String(error?.stack ?? error));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
