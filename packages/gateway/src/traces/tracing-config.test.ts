// The OpenTelemetry environment variables as the gateway reads them: off
// unless an endpoint is set, the specification's rules for endpoints and
// headers, and a variable that is not well formed refused by name, never
// with its value (it may hold an API key).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_BATCH_DELAY_MS, tracingFromEnv } from './tracing-config.ts';

const SECRET = 'sk-live-0123456789abcdef';

function refusedNaming(name: string) {
  return (error: { code?: string; message?: string }) => error.code === 'GATEWAY_TRACING_INVALID' && error.message!.includes(name) && !error.message!.includes(SECRET);
}

describe('tracingFromEnv', () => {
  describe('when no endpoint is set', () => {
    it('asks for no tracing, whatever else is set', () => {
      assert.equal(tracingFromEnv({}), undefined);
      assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_HEADERS: `api-key=${SECRET}`, OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_ENDPOINT: '' }), undefined);
    });
  });

  describe('when an endpoint is set', () => {
    it('posts to the traces endpoint as it is given', () => {
      assert.deepEqual(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector.example:4318/custom/path' }), { endpoint: 'https://collector.example:4318/custom/path', headers: {}, serviceName: 'corral-gateway', batchDelayMs: DEFAULT_BATCH_DELAY_MS });
    });

    it('appends v1/traces to the path of the signal-less endpoint, with one slash between', () => {
      for (const [base, endpoint] of [
        ['http://localhost:4318', 'http://localhost:4318/v1/traces'],
        ['http://localhost:4318/', 'http://localhost:4318/v1/traces'],
        ['https://otel.example/tenant-1', 'https://otel.example/tenant-1/v1/traces'],
      ]) {
        assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: base })?.endpoint, endpoint);
      }
    });

    it('prefers the traces endpoint to the signal-less one', () => {
      assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/v1/traces' })?.endpoint, 'http://b:4318/v1/traces');
    });

    it('is off all the same with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none', () => {
      assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'TRUE' }), undefined);
      assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' }), undefined);
      assert.ok(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'false' }));
    });

    it('sends the headers percent-decoded, the traces headers over the others name by name', () => {
      const tracing = tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_HEADERS: `Api-Key=${SECRET}, x-team=a%20b`, OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=c,' });
      assert.deepEqual(tracing?.headers, { 'api-key': SECRET, 'x-team': 'c' });
    });

    it('takes the traces protocol over the signal-less one: http/json for traces with grpc for the rest is sent', () => {
      assert.ok(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://a:4318/v1/traces', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }));
    });

    it('names the service OTEL_SERVICE_NAME says, and batches as OTEL_BSP_SCHEDULE_DELAY says', () => {
      const tracing = tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SERVICE_NAME: 'corral-eu', OTEL_BSP_SCHEDULE_DELAY: '200' });
      assert.deepEqual([tracing?.serviceName, tracing?.batchDelayMs], ['corral-eu', 200]);
    });
  });

  describe('when a variable is not well formed', () => {
    it('refuses an endpoint that is not an http(s) URL, naming the variable and not its value', () => {
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `localhost:4318?key=${SECRET}` }), refusedNaming('OTEL_EXPORTER_OTLP_ENDPOINT'));
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `not a url ${SECRET}` }), refusedNaming('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'));
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `ftp://${SECRET}@collector/` }), refusedNaming('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'));
    });

    it('refuses headers that are not name=value pairs, a bad percent-encoding or a line break, naming the variable and not its value', () => {
      for (const headers of [SECRET, `=${SECRET}`, `bad name=${SECRET}`, `key=${SECRET}%E0%A4%A`, `key=${SECRET}%0D%0Ax-injected=1`]) {
        assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_HEADERS: headers }), refusedNaming('OTEL_EXPORTER_OTLP_HEADERS'), headers);
        assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_HEADERS: headers }), refusedNaming('OTEL_EXPORTER_OTLP_TRACES_HEADERS'), headers);
      }
    });

    it('refuses a protocol other than http/json, and a batch delay that is not a number of milliseconds', () => {
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), refusedNaming('OTEL_EXPORTER_OTLP_PROTOCOL'));
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }), refusedNaming('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'));
      assert.throws(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_BSP_SCHEDULE_DELAY: '5s' }), refusedNaming('OTEL_BSP_SCHEDULE_DELAY'));
    });
  });
});
