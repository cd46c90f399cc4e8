// The background sender: batches drafts to POST /v1/records, retries with backoff
// while the server is down or busy (5xx, 429, network), drops only records the server
// refuses as invalid (422 naming `[i]`), and never sends a record twice in a way that
// could duplicate it (record ids are idempotency keys on the server).

import type { Draft } from './draft.js';

export interface SenderOptions {
  /** Records per POST (default 512). */
  batchSize?: number;
  /** Longest a record waits before its batch is sent (default 200 ms). */
  flushIntervalMs?: number;
  /** Records held in memory at most; beyond it a capture fails by the policy (default 100000). */
  maxQueue?: number;
  /** Longest pause between retries (default 30 s). */
  retryMaxMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

interface Waiter {
  upTo: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Sender {
  readonly rejected: Array<[string, string]> = [];
  lastError?: string;
  private queue: Draft[] = [];
  private submitted = 0; // records ever queued
  private settled = 0; // records stored or rejected
  private inFlight = false;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private authError?: Error;
  private waiters: Waiter[] = [];
  private stopped = false;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueue: number;
  private readonly retryMaxMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    private readonly endpoint: string,
    private readonly headers: Record<string, string>,
    options: SenderOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 512;
    this.flushIntervalMs = options.flushIntervalMs ?? 200;
    this.maxQueue = options.maxQueue ?? 100_000;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  get pending(): number {
    return this.submitted - this.settled;
  }

  submit(draft: Draft): void {
    if (this.stopped) throw new Error('the client is closed');
    if (this.queue.length >= this.maxQueue) throw new Error(`${this.maxQueue} records wait for the server (${this.lastError ?? 'sending'})`);
    this.queue.push(draft);
    this.submitted += 1;
    if (this.queue.length >= this.batchSize) this.schedule(0);
    else this.schedule(this.flushIntervalMs);
  }

  private schedule(delayMs: number): void {
    if (this.inFlight || this.stopped) return;
    if (this.timer && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sendOne();
    }, delayMs);
    // a pending flush() or close() keeps the process alive; a lone timer does not
    if (!this.waiters.length) this.timer.unref();
  }

  private async sendOne(): Promise<void> {
    if (this.inFlight || !this.queue.length) return;
    this.inFlight = true;
    const batch = this.queue.slice(0, this.batchSize);
    let retryIn: number | undefined;
    try {
      const r = await this.fetchFn(this.endpoint, {
        method: 'POST',
        headers: { ...this.headers, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      });
      const text = await r.text();
      if (r.ok) {
        this.done(batch.length);
      } else if (r.status === 422) {
        this.dropInvalid(batch, text);
      } else if (r.status === 401 || r.status === 403) {
        this.authError = new Error(`the server refused the token (${r.status}): ${problemDetail(text)}`);
        this.lastError = this.authError.message;
        this.rejectWaiters(this.authError);
        retryIn = this.backoff();
      } else {
        this.lastError = `${r.status}: ${problemDetail(text)}`;
        retryIn = this.backoff();
      }
    } catch (err) {
      this.lastError = `${this.endpoint} unreachable: ${(err as Error).message}`;
      retryIn = this.backoff();
    } finally {
      this.inFlight = false;
    }
    if (this.queue.length) this.schedule(retryIn ?? 0);
  }

  private backoff(): number {
    this.failures += 1;
    return Math.min(100 * 2 ** Math.min(this.failures, 16), this.retryMaxMs);
  }

  private done(count: number): void {
    this.queue.splice(0, count);
    this.settled += count;
    this.failures = 0;
    this.authError = undefined;
    this.lastError = undefined;
    this.wake();
  }

  /** 422: every `[i].field` error names a record to drop; the rest is sent again. */
  private dropInvalid(batch: Draft[], text: string): void {
    const bad = new Map<number, string>();
    try {
      const problem = JSON.parse(text) as { errors?: Array<{ field?: string; reason?: string }> };
      for (const e of problem.errors ?? []) {
        const m = /^\[(\d+)\]/.exec(e.field ?? '');
        if (m && Number(m[1]) < batch.length) bad.set(Number(m[1]), `${e.field}: ${e.reason ?? 'invalid'}`);
      }
    } catch {
      // not a problem document: treated below
    }
    if (!bad.size) bad.set(0, `refused as invalid: ${problemDetail(text)}`); // never loop forever
    const kept = batch.filter((_, i) => !bad.has(i));
    for (const [i, reason] of bad) {
      this.rejected.push([String(batch[i].record_id), reason]);
      console.error(`provmark: record ${String(batch[i].record_id)} refused by the server: ${reason}`);
    }
    this.queue.splice(0, batch.length, ...kept);
    this.settled += bad.size;
    this.wake();
  }

  private wake(): void {
    const reached = this.waiters.filter((w) => this.settled >= w.upTo);
    this.waiters = this.waiters.filter((w) => this.settled < w.upTo);
    for (const w of reached) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  private rejectWaiters(err: Error): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  flush(timeoutMs = 60_000): Promise<void> {
    if (this.settled >= this.submitted) return Promise.resolve();
    if (this.authError) return Promise.reject(this.authError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`${this.pending} records not stored after ${timeoutMs} ms (${this.lastError ?? 'still sending'})`));
      }, timeoutMs);
      this.waiters.push({ upTo: this.submitted, resolve, reject, timer });
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.schedule(0);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

function problemDetail(text: string): string {
  try {
    const p = JSON.parse(text) as { detail?: string; title?: string };
    return p.detail ?? p.title ?? text.slice(0, 200);
  } catch {
    return text.slice(0, 200);
  }
}
