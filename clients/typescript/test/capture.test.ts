// Capture from Node into a real `provmark serve`: the openai SDK and the Vercel AI SDK
// calling an OpenAI-compatible endpoint, each call recorded, signed by the server, then
// verified online and offline (bundle) with this package.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { embedMany, generateText, streamText, wrapEmbeddingModel, wrapLanguageModel } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ProvmarkClient } from '../src/client.js';
import { contentSha256 } from '../src/hashing.js';
import { instrumentOpenAI, instrumentation } from '../src/openai.js';
import { provmarkEmbeddingMiddleware, provmarkMiddleware } from '../src/ai.js';
import { verifyBundle } from '../src/verify.js';
import { ProvmarkServer, startModelServer } from './server.js';
import * as otelApi from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

let server: ProvmarkServer;
let models: Awaited<ReturnType<typeof startModelServer>>;
let pm: ProvmarkClient;
let auditor: ProvmarkClient;
let auditorToken: string;
let spareTokens: string[];

before(async () => {
  server = await new ProvmarkServer().start();
  models = await startModelServer();
  // made here, not inside tests: a blocking child process lets keep-alive sockets go stale
  const [developer, auditorOne, ...spare] = server.tokens('developer', 'auditor', 'developer', 'developer');
  auditorToken = auditorOne;
  spareTokens = spare;
  pm = new ProvmarkClient({ url: server.url, token: developer, service: 'ts-tests', flushIntervalMs: 20 });
  auditor = new ProvmarkClient({ url: server.url, token: auditorToken });
});

after(async () => {
  await pm?.close();
  await auditor?.close();
  models?.server.close();
  await server?.stop();
});

async function record(id: string): Promise<any> {
  await pm.flush();
  const r = await fetch(`${server.url}/v1/records/${id}`, { headers: { authorization: `Bearer ${auditorToken}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

async function verifiedOffline(id: string, content: unknown): Promise<void> {
  const bundle = await auditor.bundle(id);
  const keys = (await auditor.keys()) as { keys: any[]; log_key: string };
  const v = await verifyBundle(bundle, { content, keys: keys.keys, logKey: keys.log_key });
  assert.deepEqual(v.notChecked, []);
  assert.equal(v.recordId, id);
  assert.equal(v.pinned, true);
}

test('openai chat completions are recorded and verify online and offline', async () => {
  const client = instrumentOpenAI(new OpenAI({ baseURL: models.url, apiKey: 'test', maxRetries: 0 }), pm, { userId: 'alice' });
  const reply = await client.chat.completions.create({
    model: 'acme-chat', messages: [{ role: 'user', content: 'Name a colour' }], temperature: 0.2, max_tokens: 20, seed: 7,
    user: 'not-signed', tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
  });
  const text = reply.choices[0].message.content as string;
  assert.equal(text, 'Reply to: Name a colour');
  const id = instrumentation(client).lastRecordId as string;
  const answer = await pm.verify(text);
  assert.equal(answer.verified, true, JSON.stringify(answer));
  assert.equal(answer.record_id, id);
  const r = await record(id);
  assert.equal(r.model.name, 'acme-chat');
  assert.equal(r.model.provider, new URL(models.url).host);
  assert.equal(r.operation, 'chat');
  assert.equal(r.params.temperature, 0.2);
  assert.equal(r.params.seed, 7);
  assert.ok(r.params.tools_sha256 && !('user' in r.params));
  assert.equal(r.input.seed, '7');
  assert.ok(r.input.snapshot.includes('Name a colour'));
  assert.deepEqual([r.usage.input_tokens, r.usage.output_tokens], [7, 3]);
  assert.equal(r.extra.served_model, 'acme-chat-2026-01-01');
  assert.equal(r.fallback ?? null, null, 'a pinned snapshot of the requested model is no fallback');
  assert.equal(r.actor.service, 'ts-tests');
  assert.equal(r.context.packages.node, process.versions.node);
  await verifiedOffline(id, text);
});

test('fallbacks are never silent; failed calls are error records', async () => {
  const client = instrumentOpenAI(new OpenAI({ baseURL: models.url, apiKey: 'test', maxRetries: 0 }), pm, { fallbackModels: ['small-model'] });
  const reply = await client.chat.completions.create({ model: 'fail-big', messages: [{ role: 'user', content: 'hi' }] });
  const r = await record(instrumentation(client).lastRecordId as string);
  assert.equal(r.model.name, 'small-model', 'the record names the model that answered');
  assert.equal(r.fallback.requested_model, 'fail-big');
  assert.match(r.fallback.reason, /retried after fail-big: InternalServerError/);
  assert.equal((await pm.verify(reply.choices[0].message.content as string)).verified, true);

  await assert.rejects(client.chat.completions.create({ model: 'bad-model', messages: [{ role: 'user', content: 'x' }] }), /400/);
  await pm.flush();
  const failed = await record(instrumentation(client).lastRecordId as string);
  assert.equal(failed.status, 'error');
  assert.equal(failed.error.type, 'BadRequestError');
});

test('openai streams and embeddings', async () => {
  const client = instrumentOpenAI(new OpenAI({ baseURL: models.url, apiKey: 'test', maxRetries: 0 }), pm);
  const stream = await client.chat.completions.create({ model: 'acme-chat', messages: [{ role: 'user', content: 'Stream it' }], stream: true, stream_options: { include_usage: true } });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Reply to: Stream it');
  const answer = await pm.verify(text);
  assert.equal(answer.verified, true, JSON.stringify(answer));
  const r = await record(instrumentation(client).lastRecordId as string);
  assert.equal(r.extra.stream_chunks, 4);
  assert.deepEqual([r.usage.input_tokens, r.usage.output_tokens], [7, 3]);

  const early = await client.chat.completions.create({ model: 'acme-chat', messages: [{ role: 'user', content: 'x' }], stream: true });
  for await (const _ of early) break;
  await pm.flush();
  assert.equal((await record(instrumentation(client).lastRecordId as string)).error.type, 'StreamClosedEarly');

  const emb = await client.embeddings.create({ model: 'acme-embed', input: ['a', 'b'] });
  const vectors = emb.data.map((d) => d.embedding);
  const e = await pm.verify(vectors);
  assert.equal(e.verified, true, JSON.stringify(e));
  assert.equal((await record(e.record_id as string)).operation, 'embeddings');
});

test('Vercel AI SDK: generateText and streamText through the middleware', async () => {
  const provider = createOpenAICompatible({ name: 'local', baseURL: models.url, apiKey: 'test' });
  const model = wrapLanguageModel({ model: provider.chatModel('router'), middleware: provmarkMiddleware(pm, { tags: { app: 'ts' } }) });
  const { text } = await generateText({ model, prompt: 'Hello there', temperature: 0.3, maxOutputTokens: 40, maxRetries: 0 });
  const answer = await pm.verify(text);
  assert.equal(answer.verified, true, JSON.stringify(answer));
  const r = await record(answer.record_id as string);
  assert.equal(r.model.provider, 'local.chat');
  assert.equal(r.model.name, 'small-model', 'the router answered with another model');
  assert.equal(r.fallback.requested_model, 'router');
  assert.deepEqual(r.params, { temperature: 0.3, max_tokens: 40 });
  assert.equal(r.tags.app, 'ts');
  assert.ok(r.input.snapshot.includes('Hello there'));
  await verifiedOffline(r.record_id, text);

  const streamed = streamText({ model: wrapLanguageModel({ model: provider.chatModel('acme-chat'), middleware: provmarkMiddleware(pm) }), prompt: 'Stream please', maxRetries: 0 });
  const full = await streamed.text;
  assert.equal(full, 'Reply to: Stream please');
  const s = await pm.verify(full);
  assert.equal(s.verified, true, JSON.stringify(s));
  assert.equal((await record(s.record_id as string)).fallback ?? null, null);

  const embedder = wrapEmbeddingModel({ model: provider.embeddingModel('acme-embed'), middleware: provmarkEmbeddingMiddleware(pm) });
  const { embeddings } = await embedMany({ model: embedder, values: ['one', 'two'], maxRetries: 0 });
  const e = await pm.verify(embeddings);
  assert.equal(e.verified, true, JSON.stringify(e));
  const er = await record(e.record_id as string);
  assert.equal(er.operation, 'embeddings');
  assert.equal(er.model.name, 'acme-embed');
});

test('capture() records any function; invalid records are dropped one by one, the rest stored', async () => {
  const out = await pm.capture({ model: { name: 'acme/summarizer', version: '3.2' }, input: 'article', params: { temperature: 0.1 } }, async () => 'a summary');
  const bad = pm.record({ model: 'acme/summarizer', operation: 'NOT VALID' });
  bad.setOutput('x');
  const badId = bad.end();
  const good = pm.record({ model: 'acme/summarizer' });
  good.setOutput(new Uint8Array([1, 2, 3]));
  good.end();
  await pm.flush();
  assert.deepEqual(pm.rejected.map(([id]) => id), [badId]);
  assert.equal((await pm.verify(out)).verified, true);
  assert.equal((await pm.verify(new Uint8Array([1, 2, 3]))).verified, true);
  assert.equal((await pm.verify('never made')).verified, false);
  await assert.rejects(pm.capture({ model: 'm' }, () => { throw new TypeError('boom'); }), /boom/);
  await pm.flush();
  assert.equal(pm.pending, 0);
  assert.equal(await contentSha256('a summary'), (await pm.verify(out)).content_sha256);
});

test('a server that is down or busy delays records, loses and duplicates none', async () => {
  const token = spareTokens[0];
  let calls = 0;
  const flaky: typeof fetch = async (input, init) => {
    calls += 1;
    if (calls === 1) throw new TypeError('fetch failed: connect ECONNREFUSED');
    if (calls === 2) return new Response('{"title":"busy"}', { status: 503, headers: { 'content-type': 'application/problem+json' } });
    return fetch(input, init);
  };
  const client = new ProvmarkClient({ url: server.url, token, fetch: flaky, flushIntervalMs: 5, retryMaxMs: 50 });
  const ids = [];
  for (let i = 0; i < 5; i += 1) {
    const rec = client.record({ model: 'acme/flaky' });
    rec.setOutput(`flaky output ${i}`);
    ids.push(rec.end());
  }
  await client.flush(20_000);
  assert.ok(calls >= 3, `only ${calls} requests`);
  assert.equal(client.pending, 0);
  for (let i = 0; i < 5; i += 1) assert.equal((await pm.verify(`flaky output ${i}`)).record_id, ids[i]);
  await client.close();

  const refused = new ProvmarkClient({ url: server.url, token: 'not-a-token', flushIntervalMs: 5, retryMaxMs: 50 });
  const rec = refused.record({ model: 'acme/flaky' });
  rec.setOutput('kept');
  rec.end();
  await assert.rejects(refused.flush(5_000), /refused the token \(401\)/);
  assert.equal(refused.pending, 1, 'a refused token keeps the record');
  await assert.rejects(refused.close(1_000), /refused the token/);
});

test('OpenTelemetry: a record made in an active span names it, and the span names the record', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  otelApi.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otelApi.trace.setGlobalTracerProvider(provider);
  const token = spareTokens[1];
  const traced = new ProvmarkClient({ url: server.url, token, otel: true, flushIntervalMs: 5 });
  const client = instrumentOpenAI(new OpenAI({ baseURL: models.url, apiKey: 'test', maxRetries: 0 }), traced);
  const tracer = otelApi.trace.getTracer('app');
  const text = await tracer.startActiveSpan('answer question', async (span) => {
    const reply = await client.chat.completions.create({ model: 'acme-chat', messages: [{ role: 'user', content: 'traced' }] });
    span.end();
    return reply.choices[0].message.content as string;
  });
  await traced.close();
  const [span] = exporter.getFinishedSpans();
  const id = instrumentation(client).lastRecordId as string;
  assert.equal(span.attributes['provmark.record_id'], id);
  assert.deepEqual(span.events.map((e) => e.name), ['provmark.record']);
  const r = await record(id);
  assert.equal(r.extra.trace_id, span.spanContext().traceId);
  assert.equal(r.extra.span_id, span.spanContext().spanId);
  assert.equal((await pm.verify(text)).record_id, id);
  otelApi.trace.disable();
  otelApi.context.disable();
});
