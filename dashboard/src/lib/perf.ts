import type { Live } from "../live/context";
import { percentile } from "../live/store";

export interface PerfReport {
  fps: number;
  frames: number;
  longFrames: number;
  maxFrameMs: number;
  updates: number;
  updatesPerSecond: number;
  flushes: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
  renderP50: number | null;
  renderP95: number | null;
  renderP99: number | null;
  symbols: number;
  venues: number;
  ws: string;
}

declare global {
  interface Window {
    /** Measurement hook for the end-to-end tests and for anyone curious (devtools console). */
    arbstreamPerf?: { start(): void; report(): PerfReport };
  }
}

/**
 * Frame rate and update latency, measured in the page: rAF intervals for fps and long frames,
 * and for every quote rendered, (time of the frame that rendered it) - (ingest receipt time).
 */
export function installPerfProbe(live: Live): void {
  let frames = 0;
  let longFrames = 0;
  let maxFrame = 0;
  let startedAt = performance.now();
  let updatesAtStart = live.store.stats.updates;
  let last = performance.now();
  const loop = (t: number) => {
    const dt = t - last;
    last = t;
    frames += 1;
    if (dt > 50) longFrames += 1;
    if (dt > maxFrame) maxFrame = dt;
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  window.arbstreamPerf = {
    start() {
      frames = 0;
      longFrames = 0;
      maxFrame = 0;
      startedAt = performance.now();
      updatesAtStart = live.store.stats.updates;
      live.store.stats.latencies.length = 0;
      live.store.stats.renderLatencies.length = 0;
    },
    report() {
      const seconds = (performance.now() - startedAt) / 1000;
      const lat = live.store.stats.latencies;
      const updates = live.store.stats.updates - updatesAtStart;
      return {
        fps: frames / seconds,
        frames,
        longFrames,
        maxFrameMs: maxFrame,
        updates,
        updatesPerSecond: updates / seconds,
        flushes: live.store.stats.flushes,
        latencyP50: percentile(lat, 50),
        latencyP95: percentile(lat, 95),
        latencyP99: percentile(lat, 99),
        renderP50: percentile(live.store.stats.renderLatencies, 50),
        renderP95: percentile(live.store.stats.renderLatencies, 95),
        renderP99: percentile(live.store.stats.renderLatencies, 99),
        symbols: live.store.symbols().length,
        venues: live.store.venues().length,
        ws: live.status.get().state,
      };
    },
  };
}
