/** The typed REST client (openapi-fetch over the types generated from the API's OpenAPI). */
import createClient from "openapi-fetch";
import { config } from "../config";
import type { paths } from "./schema";

export const api = createClient<paths>({ baseUrl: config.apiBase });

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`HTTP ${status}: ${detail}`);
  }
}

/** Unwrap an openapi-fetch result: the data, or an ApiError carrying the API's `detail`. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined) return result.data;
  const error = result.error as { detail?: unknown } | undefined;
  const detail = typeof error?.detail === "string" ? error.detail : JSON.stringify(error?.detail ?? error ?? "");
  throw new ApiError(result.response.status, detail);
}
