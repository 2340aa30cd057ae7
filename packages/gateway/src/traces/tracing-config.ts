// Whether the gateway sends traces, and where: read from the standard
// OpenTelemetry environment variables (the OTLP exporter specification), so
// that an operator's collector settings work unchanged. Nothing here loads
// the OpenTelemetry SDK: with tracing off it is never imported.
import { GatewayError } from '../errors.ts';

/** Where and how the gateway sends its traces (OTLP over HTTP, as JSON). */
export interface TracingConfig {
  /** The OTLP/HTTP traces endpoint spans are posted to (http: or https:, the path included). */
  endpoint: string;
  /** Headers sent with every export, an API key often: never logged, never in an error. */
  headers: Record<string, string>;
  /** The resource's service.name. */
  serviceName: string;
  /** How long finished spans wait to be sent together, ms. */
  batchDelayMs: number;
}

export const DEFAULT_SERVICE_NAME = 'corral-gateway';
/** The specification's default for OTEL_BSP_SCHEDULE_DELAY. */
export const DEFAULT_BATCH_DELAY_MS = 5_000;

type Env = Record<string, string | undefined>;

/**
 * The tracing `env` asks for, or undefined when it asks for none: no
 * endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is, else
 * OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended to its path),
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Headers are
 * OTEL_EXPORTER_OTLP_HEADERS with OTEL_EXPORTER_OTLP_TRACES_HEADERS over
 * them, name by name; OTEL_SERVICE_NAME, OTEL_BSP_SCHEDULE_DELAY as the
 * specification says. Throws GATEWAY_TRACING_INVALID naming the variable
 * that is not well formed (never its value: it may hold a key), or a
 * protocol other than http/json.
 */
export function tracingFromEnv(env: Env): TracingConfig | undefined {
  if (set(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  if (set(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase() === 'none') return undefined;
  const endpoint = tracesEndpoint(env);
  if (endpoint === undefined) return undefined;
  // The traces protocol, else the signal-less one: only the one that applies to traces must be http/json.
  const protocol = ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'].find((name) => set(env, name) !== undefined);
  if (protocol !== undefined && set(env, protocol) !== 'http/json') throw invalid(`${protocol} must be http/json, or unset: Corral sends traces as OTLP/HTTP JSON (a collector's otlp receiver takes it on its http endpoint, port 4318)`);
  return {
    endpoint,
    headers: { ...headers(env, 'OTEL_EXPORTER_OTLP_HEADERS'), ...headers(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') },
    serviceName: set(env, 'OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    batchDelayMs: batchDelay(set(env, 'OTEL_BSP_SCHEDULE_DELAY')),
  };
}

function batchDelay(text: string | undefined): number {
  if (text === undefined) return DEFAULT_BATCH_DELAY_MS;
  if (!/^\d{1,7}$/.test(text)) throw invalid('OTEL_BSP_SCHEDULE_DELAY must be a whole number of milliseconds, e.g. 5000, or unset');
  return Number(text);
}

function tracesEndpoint(env: Env): string | undefined {
  const traces = set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (traces !== undefined) return httpUrl(traces, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT').href;
  const base = set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base === undefined) return undefined;
  const url = httpUrl(base, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  // The specification's rule for the signal-less endpoint: v1/traces appended to its path, with a slash between.
  url.pathname = `${url.pathname.replace(/\/$/, '')}/v1/traces`;
  return url.href;
}

function httpUrl(text: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`${name} is not a URL: set it to your collector's OTLP/HTTP address, e.g. http://localhost:4318, or unset it`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`${name} must be an http: or https: URL (OTLP over HTTP), e.g. http://localhost:4318`);
  return url;
}

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a header value may hold once percent-decoded: printable ASCII, spaces and tabs (no line breaks). */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/** `name`'s `key=value,key=value` list (values percent-encoded, as the specification says), or nothing when unset. */
function headers(env: Env, name: string): Record<string, string> {
  const text = set(env, name);
  if (text === undefined) return {};
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const at = pair.indexOf('=');
    const key = pair.slice(0, Math.max(0, at)).trim();
    if (at < 0 || !HEADER_NAME.test(key)) throw malformedHeaders(name);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw malformedHeaders(name);
    }
    if (!HEADER_VALUE.test(value)) throw malformedHeaders(name);
    out[key.toLowerCase()] = value;
  }
  return out;
}

function malformedHeaders(name: string): GatewayError {
  return invalid(`${name} must be a list of name=value pairs separated by commas, each value percent-encoded (e.g. api-key=abc%20def), without line breaks: fix or unset it`);
}

/** `name`'s value trimmed, or undefined when unset or empty (the specification takes an empty value as unset). */
function set(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function invalid(message: string): GatewayError {
  return new GatewayError('GATEWAY_TRACING_INVALID', message);
}
