// Records every call of an `openai` Node SDK client (v4-v6): chat completions (plain and
// streamed), completions and embeddings, with the rules of the Python wrapper
// (provmark.integrations.openai): model, input messages, parameters, output text,
// usage, response id, served model and fallbacks, which are never silent.

import { createHash } from 'node:crypto';
import { jcs } from './encoding.js';
import { jsonValue, sameModel, type ModelSpec } from './draft.js';
import type { ProvmarkClient, Recording } from './client.js';

export interface OpenAIOptions {
  /** `model.provider` (default: `openai` for api.openai.com, else the endpoint's host:port). */
  provider?: string;
  modelVersion?: string;
  tags?: Record<string, string>;
  /** Models to try, in order, when the requested one fails with a connection error, 429 or 5xx. */
  fallbackModels?: string[];
  /** The end user, as `actor.user_id` of every record (or per call: a function). */
  userId?: string | (() => string | undefined);
}

const SKIP = new Set([
  'messages', 'prompt', 'input', 'model', 'stream', 'stream_options', 'user', 'safety_identifier',
  'metadata', 'prompt_cache_key',
]);
const HASHED = new Set(['tools', 'functions', 'response_format', 'logit_bias', 'prediction', 'json_schema']);

type Body = Record<string, unknown>;
type Create = (body: Body, options?: unknown) => Promise<unknown>;
interface Resource {
  create: Create;
}
interface Endpoint {
  path: string[];
  operation: string;
  inputKey: string;
}

const ENDPOINTS: Endpoint[] = [
  { path: ['chat', 'completions'], operation: 'chat', inputKey: 'messages' },
  { path: ['completions'], operation: 'text_completion', inputKey: 'prompt' },
  { path: ['embeddings'], operation: 'embeddings', inputKey: 'input' },
];
const MARK = Symbol.for('provmark.instrumented');

/** Request parameters fit for a record: JSON values; bulky ones (tools, schemas) as a SHA-256. */
export function cleanParams(body: Body): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(body)) {
    if (SKIP.has(key) || raw === undefined || raw === null) continue;
    const value = jsonValue(raw);
    if (value === undefined) continue;
    if (HASHED.has(key)) params[`${key}_sha256`] = createHash('sha256').update(jcs(value)).digest('hex');
    else params[key] = value;
  }
  return params;
}

function providerOf(client: { baseURL?: string }): string {
  try {
    const url = new URL(client.baseURL ?? 'https://api.openai.com/v1');
    return url.hostname === 'api.openai.com' ? 'openai' : url.host;
  } catch {
    return 'openai';
  }
}

function retryable(err: unknown): boolean {
  const e = err as { status?: number; name?: string; constructor?: { name?: string } };
  const name = e?.constructor?.name ?? e?.name ?? '';
  if (/APIConnection(Timeout)?Error/.test(name)) return true;
  return typeof e?.status === 'number' && (e.status === 429 || e.status >= 500);
}

interface ChatChoice {
  message?: { content?: unknown; tool_calls?: unknown[] } & Record<string, unknown>;
  text?: string;
}

/** The output of a reply: the text of a single text answer, else the JSON of the answers. */
export function replyOutput(operation: string, response: Record<string, unknown>): unknown {
  if (operation === 'embeddings') {
    return ((response.data as Array<{ embedding: unknown }>) ?? []).map((d) => d.embedding);
  }
  const choices = (response.choices as ChatChoice[]) ?? [];
  if (operation === 'text_completion') {
    return choices.length === 1 ? choices[0].text ?? '' : choices.map((c) => c.text ?? '');
  }
  const only = choices.length === 1 ? choices[0].message : undefined;
  if (only && typeof only.content === 'string' && !only.tool_calls?.length) return only.content;
  return choices.map((c) => jsonValue(c.message) ?? null);
}

class Instrumentation {
  lastRecordId?: string;
  private readonly provider: string;
  private readonly endpoint?: string;

  constructor(
    private readonly pm: ProvmarkClient,
    client: { baseURL?: string },
    private readonly options: OpenAIOptions,
  ) {
    this.provider = options.provider ?? providerOf(client);
    this.endpoint = client.baseURL;
  }

  model(name: string): ModelSpec {
    return { name, provider: this.provider, ...(this.options.modelVersion ? { version: this.options.modelVersion } : {}) };
  }

  wrap(resource: Resource, endpoint: Endpoint): void {
    const original = resource.create.bind(resource);
    const self = this;
    resource.create = function create(body: Body, options?: unknown) {
      return self.call(original, endpoint, body, options);
    };
  }

  private async call(original: Create, endpoint: Endpoint, body: Body, options: unknown): Promise<unknown> {
    const requested = typeof body.model === 'string' && body.model ? body.model : 'unknown';
    const user = typeof this.options.userId === 'function' ? this.options.userId() : this.options.userId;
    const rec = this.pm.record({
      model: this.model(requested),
      operation: endpoint.operation,
      input: jsonValue(body[endpoint.inputKey]),
      params: cleanParams(body),
      tags: this.options.tags,
      userId: user,
      extra: this.endpoint ? { endpoint: this.endpoint } : {},
    });
    const models = [requested, ...(this.options.fallbackModels ?? [])];
    const failures: string[] = [];
    for (let i = 0; i < models.length; i += 1) {
      let result: unknown;
      try {
        result = await original(i === 0 ? body : { ...body, model: models[i] }, options);
      } catch (err) {
        if (i === models.length - 1 || !retryable(err)) {
          this.lastRecordId = rec.fail(err);
          throw err;
        }
        failures.push(`${models[i]}: ${(err as Error).constructor?.name ?? 'Error'}`);
        continue;
      }
      if (body.stream === true && isAsyncIterable(result)) return this.stream(rec, endpoint, result, requested, models[i], failures);
      this.settle(rec, endpoint, result as Record<string, unknown>, requested, models[i], failures);
      return result;
    }
    throw new Error('unreachable');
  }

  private describe(rec: Recording, response: Record<string, unknown>, requested: string, used: string, failures: string[]): void {
    const served = typeof response.model === 'string' && response.model ? response.model : used;
    rec.extra.served_model = served;
    if (typeof response.id === 'string') rec.extra.response_id = response.id;
    if (typeof response.system_fingerprint === 'string') rec.extra.system_fingerprint = response.system_fingerprint;
    const usage = response.usage as { prompt_tokens?: number; completion_tokens?: number } | undefined;
    if (usage) rec.setUsage({ inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens });
    if (failures.length) rec.setFallback(requested, served, `retried after ${failures.join('; ')}`);
    else if (!sameModel(requested, served)) rec.setFallback(requested, served, 'the endpoint answered with another model');
    if (rec.fallback) rec.answeredBy(this.model(sameModel(used, served) ? used : served));
  }

  private settle(rec: Recording, endpoint: Endpoint, response: Record<string, unknown>, requested: string, used: string, failures: string[]): void {
    try {
      this.describe(rec, response, requested, used, failures);
      rec.setOutput(replyOutput(endpoint.operation, response));
    } catch (err) {
      this.pm.failure('reading the reply', err);
      return;
    }
    this.lastRecordId = rec.end();
  }

  /** A stream that hashes the text of choice 0 as it passes; the record is made at its end. */
  private stream(rec: Recording, endpoint: Endpoint, stream: AsyncIterable<unknown>, requested: string, used: string, failures: string[]): unknown {
    const self = this;
    let chunks = 0;
    let last: Record<string, unknown> = {};
    const iterate = async function* () {
      let finished = false;
      let failed = false;
      try {
        for await (const chunk of stream) {
          chunks += 1;
          const c = chunk as Record<string, unknown>;
          last = { ...last, ...c };
          const choice = ((c.choices as Array<{ delta?: { content?: string }; text?: string; index?: number }>) ?? []).find((x) => (x.index ?? 0) === 0);
          const piece = endpoint.operation === 'chat' ? choice?.delta?.content : choice?.text;
          if (typeof piece === 'string' && piece) rec.addChunk(piece);
          yield chunk;
        }
        finished = true;
      } catch (err) {
        failed = true;
        self.lastRecordId = rec.fail(err);
        throw err;
      } finally {
        if (finished) {
          rec.extra.stream_chunks = chunks;
          rec.addChunk('');
          try {
            self.describe(rec, last, requested, used, failures);
          } catch (err) {
            self.pm.failure('reading the stream', err);
          }
          self.lastRecordId = rec.end();
        } else if (!failed) {
          self.lastRecordId = rec.fail(new StreamClosedEarly('the stream was closed before its end'));
        }
      }
    };
    return new Proxy(stream as object, {
      get(target, prop, receiver) {
        if (prop === Symbol.asyncIterator) return () => iterate();
        return Reflect.get(target, prop, receiver);
      },
    });
  }
}

/** The error type of the record of a stream its reader left before the end. */
export class StreamClosedEarly extends Error {
  name = 'StreamClosedEarly';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown })?.[Symbol.asyncIterator] === 'function';
}

/**
 * Record every call of `client` (an `OpenAI` instance). Returns the same client; the
 * record id of the last call is `instrumentation(client).lastRecordId`.
 *
 * Streams (`stream: true`) are recorded when iterated to their end (`for await`); a
 * stream left early is an error record `StreamClosedEarly`. Not instrumented:
 * `.withResponse()`/`.asResponse()` on the returned promise, and the Responses API.
 */
export function instrumentOpenAI<T extends object>(client: T, pm: ProvmarkClient, options: OpenAIOptions = {}): T {
  const c = client as T & { [MARK]?: Instrumentation; baseURL?: string };
  if (c[MARK]) return client;
  const inst = new Instrumentation(pm, c, options);
  let found = 0;
  for (const endpoint of ENDPOINTS) {
    let node: unknown = c;
    for (const key of endpoint.path) node = (node as Record<string, unknown> | undefined)?.[key];
    if (node && typeof (node as Resource).create === 'function') {
      inst.wrap(node as Resource, endpoint);
      found += 1;
    }
  }
  if (!found) throw new TypeError('not an OpenAI client: no chat.completions.create, completions.create or embeddings.create');
  Object.defineProperty(c, MARK, { value: inst, enumerable: false });
  return client;
}

/** The instrumentation of a client made by `instrumentOpenAI` (`lastRecordId`). */
export function instrumentation(client: object): { lastRecordId?: string } {
  const inst = (client as { [MARK]?: Instrumentation })[MARK];
  if (!inst) throw new TypeError('this client is not instrumented by provmark');
  return inst;
}
