// A real `provmark serve` (the Python server) for the capture tests, and a small
// OpenAI-compatible HTTP endpoint for the openai SDK and the AI SDK to call.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PYTHON = process.env.PROVMARK_PYTHON ?? 'python3';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export class ProvmarkServer {
  url = '';
  private proc?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'provmark-ts-'));
  private readonly env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PROVMARK_')));
  private output = '';

  private where(): string[] {
    return ['--db', join(this.dir, 'provmark.db'), '--home', join(this.dir, 'home'), '--state', join(this.dir, 'state.db')];
  }

  async start(): Promise<this> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.proc = spawn(PYTHON, ['-m', 'provmark.cli', 'serve', ...this.where(), '--port', String(port), '--log-level', 'warning'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (d) => (this.output += d));
    this.proc.stderr?.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`provmark serve exited ${this.proc.exitCode}: ${this.output}`);
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return this;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`provmark serve not ready: ${this.output}`);
  }

  /** New API tokens, one per role (as `provmark tokens create --role R` makes them, in one process). */
  tokens(...roles: string[]): string[] {
    const code = [
      'import sys',
      'from provmark.server.auth import TokenStore',
      'from provmark.server.state import StateDB',
      'db = StateDB(sys.argv[1])',
      'print("\\n".join(TokenStore(db).create(role, "ts-test")[0] for role in sys.argv[2:]))',
      'db.close()',
    ].join('\n');
    const out = execFileSync(PYTHON, ['-c', code, join(this.dir, 'state.db'), ...roles], { env: this.env, encoding: 'utf8' });
    return out.trim().split('\n');
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc?.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Json = Record<string, any>;

/** OpenAI-compatible answers: `fail-*` models answer 503, `bad-*` 400, `router` answers as `small-model`. */
export async function startModelServer(): Promise<{ url: string; server: Server; requests: Json[] }> {
  const requests: Json[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as Json;
      requests.push({ path: req.url, body });
      const model = String(body.model);
      if (model.startsWith('fail-')) {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"overloaded"}}');
        return;
      }
      if (model.startsWith('bad-')) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad request","type":"invalid_request_error"}}');
        return;
      }
      const served = model === 'router' ? 'small-model' : `${model}-2026-01-01`;
      if (req.url?.endsWith('/embeddings')) {
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          object: 'list', model: served, usage: { prompt_tokens: 2, total_tokens: 2 },
          data: inputs.map((_: unknown, i: number) => ({ object: 'embedding', index: i, embedding: [0.5, -0.25, i] })),
        }));
        return;
      }
      const last = (body.messages ?? []).at(-1);
      const asked = typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content);
      const text = `Reply to: ${asked}`;
      const id = `chatcmpl-${requests.length}`;
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const pieces = [text.slice(0, 5), text.slice(5, 12), text.slice(12)];
        for (const [i, piece] of pieces.entries()) {
          const chunk = { id, object: 'chat.completion.chunk', created: 1, model: served,
            choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: piece } : { content: piece }, finish_reason: null }] };
          res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: served, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        id, object: 'chat.completion', created: 1, model: served, system_fingerprint: 'fp_1',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
      }));
    });
  });
  server.keepAliveTimeout = 120_000; // longer than any pause of a test: no stale pooled sockets
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server, requests };
}
