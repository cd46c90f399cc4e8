// Capture for Node over provmark's HTTP API: records are built here (as the Python
// remote client builds them) and POSTed in batches to `provmark serve`, which
// validates, signs, stores and logs them.

import {
  clean,
  digest,
  formatNs,
  inputPart,
  jsonValue,
  MAX_ERROR_CHARS,
  nowNs,
  probeContext,
  RecordIds,
  StreamHasher,
  type Digest,
  type Draft,
  type ModelSpec,
} from './draft.js';
import { contentSha256, type Content } from './hashing.js';
import { Sender, type SenderOptions } from './sender.js';
import { createRequire } from 'node:module';

export type { ModelSpec, Draft } from './draft.js';

export class ProvmarkError extends Error {
  name = 'ProvmarkError';
}

/** A record could not be made (strict policy) or the server refused the token. */
export class CaptureError extends ProvmarkError {
  name = 'CaptureError';
}

export interface ClientOptions extends SenderOptions {
  /** `provmark serve` base URL, e.g. http://127.0.0.1:8000 (default: $PROVMARK_URL). */
  url?: string;
  /** An ingest or developer token (default: $PROVMARK_TOKEN). */
  token?: string;
  /** actor.service / actor.region of every record (default: $PROVMARK_SERVICE / $PROVMARK_REGION). */
  service?: string;
  region?: string;
  /** `strict` (default) throws CaptureError when a record cannot be built; `best_effort` counts and logs. */
  policy?: 'strict' | 'best_effort';
  /** Package versions to state in `context.packages` (node is always there). */
  packages?: Record<string, string>;
  /** Keep a text snapshot of each input (default true; the server redacts it). */
  snapshot?: boolean;
  /**
   * Link records and OpenTelemetry spans both ways: a record made while a span is active
   * names it (`extra.trace_id`/`span_id`) and the span gets `provmark.record_id` and a
   * `provmark.record` event. `true` loads `@opentelemetry/api`; or pass that module.
   */
  otel?: boolean | OtelApi;
}

/** The part of `@opentelemetry/api` used to link records and spans. */
export interface OtelApi {
  trace: { getActiveSpan(): OtelSpan | undefined };
}
interface OtelSpan {
  spanContext(): { traceId: string; spanId: string };
  isRecording(): boolean;
  setAttribute(key: string, value: string): unknown;
  addEvent(name: string, attributes?: Record<string, string>): unknown;
}

export const RECORD_ID_ATTRIBUTE = 'provmark.record_id';

export interface RecordSpec {
  model: ModelSpec | string;
  operation?: string;
  input?: unknown;
  params?: Record<string, unknown>;
  tags?: Record<string, string>;
  parents?: string[];
  extra?: Record<string, unknown>;
  userId?: string;
  mediaType?: string;
  seed?: unknown;
}

/** One generation being recorded; `end()` (or `fail()`) queues its record. */
export class Recording {
  readonly recordId: string;
  readonly startedNs: bigint;
  model: ModelSpec;
  output?: Digest;
  usage: { input_tokens?: number; output_tokens?: number } = {};
  fallback?: { requested_model: string; served_model: string; reason?: string };
  extra: Record<string, unknown>;
  tags: Record<string, string>;
  parents: string[];
  private hasher?: StreamHasher;
  private done = false;
  private readonly span?: OtelSpan;

  constructor(
    private readonly client: ProvmarkClient,
    readonly spec: RecordSpec,
    ids: RecordIds,
  ) {
    this.startedNs = nowNs();
    this.recordId = ids.next(this.startedNs);
    this.model = typeof spec.model === 'string' ? { name: spec.model } : { ...spec.model };
    this.extra = { ...(spec.extra ?? {}) };
    this.tags = { ...(spec.tags ?? {}) };
    this.parents = [...(spec.parents ?? [])];
    const span = client.otel?.trace.getActiveSpan();
    const ctx = span?.spanContext();
    if (span && ctx && /^[0-9a-f]{32}$/.test(ctx.traceId) && !/^0+$/.test(ctx.traceId)) {
      this.span = span;
      this.extra.trace_id ??= ctx.traceId;
      this.extra.span_id ??= ctx.spanId;
    }
  }

  setOutput(output: Content, mediaType?: string): void {
    this.output = digest(output, mediaType ?? this.spec.mediaType);
  }

  /** A streamed output, piece by piece (all strings or all bytes). */
  addChunk(chunk: string | Uint8Array): void {
    (this.hasher ??= new StreamHasher()).update(chunk);
  }

  setUsage(usage: { inputTokens?: number; outputTokens?: number }): void {
    if (Number.isInteger(usage.inputTokens)) this.usage.input_tokens = usage.inputTokens;
    if (Number.isInteger(usage.outputTokens)) this.usage.output_tokens = usage.outputTokens;
  }

  setFallback(requested: string, served: string, reason?: string): void {
    this.fallback = clean({ requested_model: requested, served_model: served, reason }) as Recording['fallback'];
  }

  /** The record names `model` (the model that answered, after a fallback). */
  answeredBy(model: ModelSpec): void {
    this.model = model;
  }

  /** Queue the record of a generation that succeeded; returns its id. */
  end(): string {
    if (this.hasher) this.output = this.hasher.digest();
    if (!this.output) return this.fail(new CaptureError('no output was set on the recording'));
    return this.finish();
  }

  /** Queue the record of a generation that failed with `error`; returns its id. */
  fail(error: unknown): string {
    const err = error instanceof Error ? error : new Error(String(error));
    return this.finish({ type: err.constructor?.name || err.name || 'Error', message: err.message.slice(0, MAX_ERROR_CHARS) });
  }

  private finish(error?: { type: string; message: string }): string {
    if (this.done) throw new CaptureError(`record ${this.recordId} was already ended`);
    this.done = true;
    const id = this.client.emit(this.draft(error));
    if (id && this.span?.isRecording()) {
      this.span.setAttribute(RECORD_ID_ATTRIBUTE, id);
      this.span.addEvent('provmark.record', { [RECORD_ID_ATTRIBUTE]: id });
    }
    return id;
  }

  private draft(error?: { type: string; message: string }): Draft {
    const spec = this.spec;
    const now = nowNs();
    const draft: Draft = {
      record_id: this.recordId,
      schema_version: '1',
      started_at: formatNs(this.startedNs),
      generated_at: formatNs(now),
      operation: spec.operation ?? 'text_completion',
      status: error ? 'error' : 'ok',
      model: clean({ ...this.model }),
      context: this.client.context,
    };
    const params = spec.params ? (jsonValue(spec.params) as Record<string, unknown>) : undefined;
    if (params && Object.keys(params).length) draft.params = params;
    const inp = inputPart(spec.input, spec.seed ?? params?.seed, this.client.snapshot);
    if (Object.keys(inp).length) draft.input = inp;
    if (error) draft.error = error;
    else if (this.output) draft.output = this.output;
    const actor = clean({ ...this.client.actor, user_id: spec.userId });
    if (Object.keys(actor).length) draft.actor = actor;
    if (this.parents.length) draft.parents = this.parents;
    if (Object.keys(this.tags).length) draft.tags = this.tags;
    const extra = jsonValue(this.extra) as Record<string, unknown> | undefined;
    if (extra && Object.keys(extra).length) draft.extra = extra;
    draft.usage = { latency_ms: Math.round(Number(now - this.startedNs) / 1000) / 1000, ...this.usage };
    if (this.fallback) draft.fallback = this.fallback;
    return draft;
  }
}

/**
 * `new ProvmarkClient({url, token})`: capture records for `provmark serve`.
 *
 *     const out = await pm.capture({model: 'acme/summarizer', input: text}, () => summarize(text));
 *     await pm.close();            // sends what is queued (also done before the process exits)
 */
export class ProvmarkClient {
  readonly url: string;
  readonly policy: 'strict' | 'best_effort';
  readonly snapshot: boolean;
  readonly actor: Record<string, string | undefined>;
  readonly context: Record<string, unknown>;
  readonly otel?: OtelApi;
  captureFailures = 0;
  private readonly ids = new RecordIds();
  private readonly headers: Record<string, string>;
  private readonly sender: Sender;
  private exitFlushed = false;
  private readonly onBeforeExit = () => {
    if (this.exitFlushed || !this.sender.pending) return;
    this.exitFlushed = true; // once: a server that stays down must not hold the process forever
    void this.sender.flush().catch((err: Error) => console.error(`provmark: records not sent before exit: ${err.message}`));
  };

  constructor(options: ClientOptions = {}) {
    const url = options.url ?? process.env.PROVMARK_URL;
    if (!url || !/^https?:\/\//.test(url)) throw new ProvmarkError('give url: the http(s):// address of provmark serve (or set PROVMARK_URL)');
    this.url = url.replace(/\/+$/, '');
    const token = options.token ?? process.env.PROVMARK_TOKEN;
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
    this.policy = options.policy ?? 'strict';
    this.snapshot = options.snapshot ?? true;
    this.actor = clean({ service: options.service ?? process.env.PROVMARK_SERVICE, region: options.region ?? process.env.PROVMARK_REGION });
    this.context = probeContext({ '@provmark/client': '0.1.0', ...(options.packages ?? {}) });
    this.sender = new Sender(`${this.url}/v1/records`, this.headers, options);
    if (options.otel === true) {
      try {
        this.otel = createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
      } catch {
        throw new ProvmarkError('otel: true needs the @opentelemetry/api package: npm install @opentelemetry/api');
      }
    } else if (options.otel) {
      this.otel = options.otel;
    }
    process.on('beforeExit', this.onBeforeExit);
  }

  /** Start recording one generation (end it with `rec.end()` or `rec.fail(err)`). */
  record(spec: RecordSpec): Recording {
    return new Recording(this, spec, this.ids);
  }

  /** Run `fn` and record its result as the output (a thrown error makes an error record, then is re-thrown). */
  async capture<T extends Content>(spec: RecordSpec, fn: () => T | Promise<T>): Promise<T> {
    const rec = this.record(spec);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      rec.fail(err);
      throw err;
    }
    try {
      rec.setOutput(result);
    } catch (err) {
      this.failure(`hashing the output of ${rec.recordId}`, err);
      return result;
    }
    rec.end();
    return result;
  }

  /** Queue a draft for sending; returns its record id (used by `Recording`). */
  emit(draft: Draft): string {
    try {
      this.sender.submit(draft);
    } catch (err) {
      this.failure(`queueing record ${String(draft.record_id)}`, err);
      return '';
    }
    return String(draft.record_id);
  }

  failure(what: string, err: unknown): void {
    this.captureFailures += 1;
    const detail = `provenance not captured: ${what}: ${err instanceof Error ? err.message : String(err)}`;
    if (this.policy === 'strict') throw new CaptureError(detail);
    console.error(`provmark (best_effort): ${detail}`);
  }

  /** Records the server refused as invalid: [record id, reason]. */
  get rejected(): Array<[string, string]> {
    return this.sender.rejected;
  }

  /** Records not yet stored by the server. */
  get pending(): number {
    return this.sender.pending;
  }

  /** Resolve once the server stored every record queued so far (rejects on a refused token or timeout). */
  flush(timeoutMs = 60_000): Promise<void> {
    return this.sender.flush(timeoutMs);
  }

  /** Flush, then stop the background sender. */
  async close(timeoutMs = 60_000): Promise<void> {
    process.off('beforeExit', this.onBeforeExit);
    try {
      await this.sender.flush(timeoutMs);
    } finally {
      this.sender.stop();
    }
  }

  /** fetch, once more after a network error (these reads are idempotent; a pooled
   * keep-alive socket the server has just closed fails the first try). */
  private async fetchTwice(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch {
      return fetch(url, init);
    }
  }

  private async get(path: string): Promise<unknown> {
    const r = await this.fetchTwice(`${this.url}${path}`, { headers: this.headers });
    if (!r.ok) throw new ProvmarkError(`GET ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  /** Ask the server to verify content (only its SHA-256 is sent): its answer, checks included. */
  async verify(content: Content, recordId?: string): Promise<Record<string, unknown>> {
    await this.flush();
    const body = clean({ sha256: await contentSha256(content), record_id: recordId });
    const r = await this.fetchTwice(`${this.url}/v1/verify`, {
      method: 'POST',
      headers: { ...this.headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok && r.status !== 422) throw new ProvmarkError(`POST /v1/verify: ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, unknown>;
  }

  /** The offline bundle of a record (needs an auditor token), for `verifyBundle`. */
  bundle(recordId: string): Promise<unknown> {
    return this.get(`/v1/records/${encodeURIComponent(recordId)}/bundle`);
  }

  /** The server's published keys: `{keys, log_key, origin}` (`/.well-known/provmark/keys`), to pin. */
  keys(): Promise<unknown> {
    return this.get('/.well-known/provmark/keys');
  }
}
