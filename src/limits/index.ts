export { type ClassifyOptions, classifyOutcome } from './classify.js';
export {
  type HeadersInput,
  type HeaderValue,
  parseDurationString,
  parseRateLimitHeaders,
  parseRetryAfter,
  readHeader,
} from './headers.js';
export type { LimitScope, Outcome, OutcomeKind, RateLimitInfo } from './outcome.js';
