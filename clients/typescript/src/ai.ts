// Records every call of a Vercel AI SDK language model (`ai` v6, LanguageModelV3):
// a middleware for `wrapLanguageModel`, so `generateText`, `streamText`,
// `generateObject`... through the wrapped model each make one record.

import { jsonValue, sameModel } from './draft.js';
import type { ProvmarkClient, Recording } from './client.js';

export interface AIOptions {
  tags?: Record<string, string>;
  modelVersion?: string;
  /** The end user, as `actor.user_id` (or per call: a function). */
  userId?: string | (() => string | undefined);
}

// The parts of the AI SDK's LanguageModelV3 types used here (kept structural so this
// module compiles without the `ai` package installed).
interface ModelLike {
  provider: string;
  modelId: string;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any; // the AI SDK's own part and option types, unknown here
type Params = Loose;
type Usage = { inputTokens?: number | { total?: number }; outputTokens?: number | { total?: number } };
interface GenerateResult {
  content: Loose[];
  usage?: Usage;
  response?: { id?: string; modelId?: string };
  finishReason?: unknown;
}
interface StreamResult {
  stream: ReadableStream<Loose>;
}
interface WrapArgs {
  doGenerate: () => PromiseLike<Loose>;
  doStream: () => PromiseLike<Loose>;
  params: Params;
  model: ModelLike;
}

const PARAMS: Record<string, string> = {
  temperature: 'temperature',
  maxOutputTokens: 'max_tokens',
  topP: 'top_p',
  topK: 'top_k',
  seed: 'seed',
  stopSequences: 'stop',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
};

const total = (v: number | { total?: number } | undefined) => (typeof v === 'number' ? v : v?.total);

/** A `LanguageModelV3Middleware` recording each call: pass it to `wrapLanguageModel`. */
export function provmarkMiddleware(pm: ProvmarkClient, options: AIOptions = {}) {
  const start = (model: ModelLike, params: Params): Recording => {
    const recorded: Record<string, unknown> = {};
    for (const [key, name] of Object.entries(PARAMS)) if (params[key] !== undefined) recorded[name] = params[key];
    if (params.responseFormat) recorded.response_format = (params.responseFormat as { type?: string }).type;
    if (Array.isArray(params.tools) && params.tools.length) recorded.tools = (params.tools as Array<{ name?: string }>).map((t) => t.name);
    return pm.record({
      model: { name: model.modelId, provider: model.provider, ...(options.modelVersion ? { version: options.modelVersion } : {}) },
      operation: 'chat',
      input: jsonValue(params.prompt),
      params: recorded,
      tags: options.tags,
      userId: typeof options.userId === 'function' ? options.userId() : options.userId,
    });
  };
  const describe = (rec: Recording, model: ModelLike, response: { id?: string; modelId?: string } | undefined, usage: Usage | undefined) => {
    if (response?.id) rec.extra.response_id = response.id;
    const served = response?.modelId;
    if (served) {
      rec.extra.served_model = served;
      if (!sameModel(model.modelId, served)) {
        rec.setFallback(model.modelId, served, 'the endpoint answered with another model');
        rec.answeredBy({ ...rec.model, name: served });
      }
    }
    if (usage) rec.setUsage({ inputTokens: total(usage.inputTokens), outputTokens: total(usage.outputTokens) });
  };

  return {
    specificationVersion: 'v3' as const,

    async wrapGenerate({ doGenerate, params, model }: WrapArgs): Promise<Loose> {
      const rec = start(model, params);
      let result: GenerateResult;
      try {
        result = await doGenerate();
      } catch (err) {
        rec.fail(err);
        throw err;
      }
      try {
        describe(rec, model, result.response, result.usage);
        const texts = result.content.filter((p: { type: string }) => p.type === 'text');
        const onlyText = texts.length === result.content.length && texts.length > 0;
        rec.setOutput(onlyText ? texts.map((p: { text?: string }) => p.text ?? '').join('') : jsonValue(result.content));
        if (result.finishReason !== undefined) rec.extra.finish_reason = jsonValue(result.finishReason);
      } catch (err) {
        pm.failure('reading the model result', err);
        return result;
      }
      rec.end();
      return result;
    },

    async wrapStream({ doStream, params, model }: WrapArgs): Promise<Loose> {
      const rec = start(model, params);
      let result: StreamResult;
      try {
        result = await doStream();
      } catch (err) {
        rec.fail(err);
        throw err;
      }
      let response: { id?: string; modelId?: string } | undefined;
      let usage: Usage | undefined;
      let ended = false;
      const toolCalls: string[] = [];
      rec.addChunk('');
      const recorder = new TransformStream<Loose, Loose>({
        transform(part, controller) {
          if (part.type === 'text-delta' && typeof part.delta === 'string') rec.addChunk(part.delta);
          else if (part.type === 'response-metadata') response = { ...response, ...(part as { id?: string; modelId?: string }) };
          else if (part.type === 'tool-call' && typeof part.toolName === 'string') toolCalls.push(part.toolName);
          else if (part.type === 'finish') usage = part.usage as Usage;
          else if (part.type === 'error' && !ended) {
            ended = true;
            rec.fail(part.error instanceof Error ? part.error : new Error(String(part.error)));
          }
          controller.enqueue(part);
        },
        flush() {
          if (ended) return;
          ended = true;
          describe(rec, model, response, usage);
          if (toolCalls.length) rec.extra.tool_calls = toolCalls;
          rec.end();
        },
        cancel() {
          if (ended) return;
          ended = true;
          const early = new Error('the stream was closed before its end');
          early.name = 'StreamClosedEarly';
          rec.fail(early);
        },
      } as Transformer<Loose, Loose>);
      return { ...result, stream: result.stream.pipeThrough(recorder) };
    },
  };
}

/**
 * An `EmbeddingModelV3Middleware` for `wrapEmbeddingModel`: each `embed`/`embedMany`
 * batch the model computes is one record (`embeddings`; input the values, output the
 * vectors as JSON, so `pm.verify(vectors)` finds it).
 */
export function provmarkEmbeddingMiddleware(pm: ProvmarkClient, options: AIOptions = {}) {
  return {
    specificationVersion: 'v3' as const,

    async wrapEmbed({ doEmbed, params, model }: { doEmbed: () => PromiseLike<Loose>; params: Loose; model: ModelLike }): Promise<Loose> {
      const rec = pm.record({
        model: { name: model.modelId, provider: model.provider, ...(options.modelVersion ? { version: options.modelVersion } : {}) },
        operation: 'embeddings',
        input: jsonValue(params.values),
        tags: options.tags,
        userId: typeof options.userId === 'function' ? options.userId() : options.userId,
      });
      let result: Loose;
      try {
        result = await doEmbed();
      } catch (err) {
        rec.fail(err);
        throw err;
      }
      try {
        rec.setOutput(jsonValue(result.embeddings));
        if (typeof result.usage?.tokens === 'number') rec.setUsage({ inputTokens: result.usage.tokens });
      } catch (err) {
        pm.failure('reading the embeddings', err);
        return result;
      }
      rec.end();
      return result;
    },
  };
}
