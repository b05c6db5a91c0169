/** Short names for the generated OpenAPI schema types (see schema.d.ts, `npm run gen:api`). */
import type { components } from "./schema";

type S = components["schemas"];

export type PriceEntry = S["PriceEntry"];
export type PricesOut = S["PricesOut"];
export type SymbolPricesOut = S["SymbolPricesOut"];
export type SummaryOut = S["SummaryOut"];
export type ArbitrageRow = S["ArbitrageRow"];
export type SymbolSpreadRow = S["SymbolSpreadRow"];
export type SpreadsOut = S["SpreadsOut"];
export type SpreadOut = S["SpreadOut"];
export type SpreadHistoryOut = S["SpreadHistoryOut"];
export type AlertStatusOut = S["AlertStatusOut"];
export type OpportunityOut = S["OpportunityOut"];
export type OpenEpisodeOut = S["OpenEpisodeOut"];
export type OpportunitiesOut = S["OpportunitiesOut"];
export type EpisodeClosedOut = S["EpisodeClosedOut"];
export type EpisodesOut = S["EpisodesOut"];
export type VenueOut = S["VenueOut"];
export type VenuesOut = S["VenuesOut"];
export type HealthOut = S["HealthOut"];
export type WorkerOut = S["WorkerOut"];
export type InfoOut = S["InfoOut"];
