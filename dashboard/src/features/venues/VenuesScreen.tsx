import type { ColumnDef } from "@tanstack/react-table";
import { useEffect, useMemo } from "react";
import { useHealth, useVenuesSnapshot } from "../../api/queries";
import type { HealthOut, VenueOut, WorkerOut } from "../../api/types";
import { DataTable } from "../../components/DataTable";
import { useLive, type VenueLive } from "../../live/context";
import { useNow } from "../../lib/clock";
import { fmtAge, fmtFractionPct } from "../../lib/format";
import { useValue } from "../../lib/valueStore";

const num = { numeric: true };

/** Colour class of a health state as ingest reports it (schemas/market.py HealthState). */
export function stateClass(state: string): "ok" | "warn" | "bad" | "muted" {
  switch (state) {
    case "streaming":
    case "subscribed":
    case "connected":
      return "ok";
    case "stale":
    case "gap":
      return "warn";
    case "disconnected":
    case "error":
      return "bad";
    default:
      return "muted";
  }
}

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`tag ${stateClass(state)}`} data-testid="venue-state" data-state={state}>
      {state}
    </span>
  );
}

/** Colour of a listing source (ingest's `listings` topic): only a live listing is current. */
export function listingClass(source: string): "ok" | "warn" | "muted" {
  if (source === "live") return "ok";
  return source === "cache" ? "warn" : "muted";
}

/** Which listing the venue's connections use and how old it is (age grows with `elapsed`). */
export function ListingCell({ venue, elapsed }: { venue: VenueOut; elapsed: number }) {
  const listing = venue.listing;
  if (listing === null || listing === undefined) return <span className="muted">—</span>;
  const title = [
    `${listing.tracked} of ${listing.instruments} perpetuals tracked`,
    `fetched ${listing.listed_at}`,
    listing.error && `live fetch failed: ${listing.error}`,
  ]
    .filter(Boolean)
    .join("\n");
  return (
    <span className="small" title={title} data-testid="venue-listing" data-source={listing.source}>
      <span className={`tag ${listingClass(listing.source)}`}>{listing.source}</span>{" "}
      <span className="num">{fmtAge(listing.age_s * 1000 + elapsed)}</span>
      {listing.error && <span aria-label="live fetch failed"> ⚠</span>}
    </span>
  );
}

interface VenueRow {
  venue: VenueOut;
  /** ms since the data was built by the API: reported ages grow by this much. */
  elapsed: number;
}

function sumOrNull(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0);
}

function minOrNull(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : Math.min(...present);
}

const columns: ColumnDef<VenueRow, unknown>[] = [
  { id: "venue", header: "Venue", accessorFn: (r) => r.venue.venue },
  { id: "state", header: "State", accessorFn: (r) => r.venue.state, cell: (c) => <StateBadge state={c.row.original.venue.state} /> },
  {
    id: "connections",
    header: "Connections",
    accessorFn: (r) => r.venue.connections.length,
    cell: (c) => (
      <span className="small">
        {c.row.original.venue.connections.map((conn) => (
          <span key={conn.connection} className={`tag ${stateClass(conn.state)}`} title={`${conn.connection}: ${conn.state} ${conn.reason}`}>
            {conn.connection}
          </span>
        ))}
      </span>
    ),
  },
  {
    id: "last_msg",
    header: "Last message",
    meta: num,
    accessorFn: (r) => minOrNull(r.venue.connections.map((c) => c.last_message_age_ms)),
    cell: (c) => {
      const age = minOrNull(c.row.original.venue.connections.map((x) => x.last_message_age_ms));
      return fmtAge(age === null ? null : age + c.row.original.elapsed);
    },
  },
  { id: "reconnects", header: "Reconnects", meta: num, accessorFn: (r) => r.venue.connections.reduce((a, c) => a + c.reconnects, 0) },
  {
    id: "mps",
    header: "Msg/s",
    meta: num,
    accessorFn: (r) => sumOrNull(r.venue.connections.map((c) => c.messages_per_s)),
    cell: (c) => {
      const v = sumOrNull(c.row.original.venue.connections.map((x) => x.messages_per_s));
      return v === null ? "—" : v.toFixed(1);
    },
  },
  {
    id: "eps",
    header: "Events/s",
    meta: num,
    accessorFn: (r) => sumOrNull(r.venue.connections.map((c) => c.events_per_s)),
    cell: (c) => {
      const v = sumOrNull(c.row.original.venue.connections.map((x) => x.events_per_s));
      return v === null ? "—" : v.toFixed(1);
    },
  },
  { id: "malformed", header: "Malformed", meta: num, accessorFn: (r) => r.venue.connections.reduce((a, c) => a + c.malformed_total, 0) },
  // Instruments whose book skipped a sequence number and waited for a snapshot; the socket stayed up.
  { id: "resyncs", header: "Resyncs", meta: num, accessorFn: (r) => r.venue.connections.reduce((a, c) => a + c.resyncs_total, 0) },
  { id: "quotes", header: "Quotes", meta: num, accessorFn: (r) => r.venue.quote_count },
  {
    id: "last_quote",
    header: "Last quote",
    meta: num,
    accessorFn: (r) => r.venue.last_quote_age_ms,
    cell: (c) => fmtAge(c.row.original.venue.last_quote_age_ms === null ? null : c.row.original.venue.last_quote_age_ms + c.row.original.elapsed),
  },
  {
    id: "listing",
    header: "Listing",
    accessorFn: (r) => r.venue.listing?.age_s ?? null,
    cell: (c) => <ListingCell venue={c.row.original.venue} elapsed={c.row.original.elapsed} />,
  },
  { id: "fee", header: "Taker fee", meta: num, accessorFn: (r) => Number(r.venue.taker_fee), cell: (c) => fmtFractionPct(c.row.original.venue.taker_fee, 3) },
  {
    id: "reason",
    header: "Reason",
    accessorFn: (r) => r.venue.connections.map((c) => c.reason).filter(Boolean).join("; "),
    cell: (c) => <span className="small muted">{c.row.original.venue.connections.map((x) => x.reason).filter(Boolean).join("; ")}</span>,
  },
];

/** What the workers dropped to stay fresh, summed over workers since they started: ticks conflated
 * (a newer quote of the same instrument was already there) and records skipped (a backlog older than
 * ARBSTREAM_WORKER_SKIP_BEHIND_MS). "" when nothing was dropped. */
export function droppedForFreshness(workers: HealthOut["workers"]): string {
  const sum = (count: (w: WorkerOut) => number) => workers.reduce((total, w) => total + count(w), 0);
  const conflated = sum((w) => w.conflated);
  const skipped = sum((w) => w.skipped_records);
  if (conflated === 0 && skipped === 0) return "";
  return `dropped for freshness: ${conflated.toLocaleString("en-US")} ticks conflated, ${skipped.toLocaleString("en-US")} records skipped`;
}

export function VenuesScreen() {
  const live = useLive();
  const snapshot = useVenuesSnapshot();
  const health = useHealth();
  const venues = useValue(live.venues);
  const now = useNow();

  // REST snapshots refresh ages between the WebSocket's venue_health pushes.
  useEffect(() => {
    const data = snapshot.data;
    if (data === undefined) return;
    const at = snapshot.dataUpdatedAt;
    live.venues.update((current) => {
      const next: Record<string, VenueLive> = { ...current };
      for (const v of data.venues) {
        const held = current[v.venue];
        if (held === undefined || held.receivedAt <= at) next[v.venue] = { data: v, receivedAt: at };
      }
      return next;
    });
  }, [snapshot.data, snapshot.dataUpdatedAt, live.venues]);

  const rows = useMemo(
    () => Object.values(venues).map((v) => ({ venue: v.data, elapsed: Math.max(0, now - v.receivedAt) })),
    [venues, now],
  );
  const h = health.data;

  return (
    <section className="screen" data-testid="venues-screen">
      <div className="toolbar">
        <span>
          API health:{" "}
          <span className={`tag ${h ? (h.status === "ok" ? "ok" : h.status === "starting" ? "muted" : "warn") : "muted"}`} data-testid="api-status">
            {h?.status ?? (health.isError ? "unreachable" : "…")}
          </span>
        </span>
        {h && (
          <span className="small muted num">
            broker {h.broker.reachable ? "reachable" : "UNREACHABLE"} · lag {h.consumer.lag_total ?? "?"} · unhealthy{" "}
            {h.venues_unhealthy.length ? h.venues_unhealthy.join(", ") : "none"}
            {droppedForFreshness(h.workers) && ` · ${droppedForFreshness(h.workers)}`}
            {h.reasons.length > 0 && ` · ${h.reasons.join("; ")}`}
          </span>
        )}
      </div>
      <DataTable
        data={rows}
        columns={columns}
        rowId={(r) => r.venue.venue}
        testId="venues-table"
        empty="No venue reported yet."
        initialSort={[{ id: "venue", desc: false }]}
        rowAttrs={(r) => ({ "data-venue": r.venue.venue, "data-state": r.venue.state })}
        rowClass={(r) => `state-${stateClass(r.venue.state)}`}
      />
    </section>
  );
}
