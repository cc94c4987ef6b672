// Sending the originals: presigned PUTs straight to the object store followed by `complete`,
// or multipart through the API when the server does not presign. Bounded concurrency,
// retries with backoff, and byte-level progress (XMLHttpRequest: fetch reports none for
// uploads).

import {
  ApiError, completeUpload, errorOf, requestUploads, sleep, backoffMs, RETRY,
} from './api.js';

/** Files in flight at once. */
export const CONCURRENCY = 4;
/** Files announced per `POST …/uploads`: tickets are asked for shortly before their use. */
const TICKETS_PER_REQUEST = 50;
/** Headers a page may not set; the browser sends its own. */
const FORBIDDEN = new Set(['content-length', 'host', 'connection', 'expect']);

/**
 * @typedef {object} Item one file of the batch, as the page tracks it
 * @property {File} file
 * @property {string} name the path shown (folder-relative when dropped as a folder)
 * @property {string} type an image/* media type
 * @property {number} sent bytes sent so far
 * @property {'waiting'|'uploading'|'uploaded'|'failed'} state
 * @property {string | null} photoId
 * @property {{ code: string, message: string } | null} error
 */

/**
 * One XMLHttpRequest, resolved with its response text on 2xx, rejected with an ApiError.
 * @param {string} method
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {Blob | FormData} body
 * @param {(loaded: number) => void} onProgress
 * @param {AbortSignal} signal
 */
function send(method, url, headers, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.withCredentials = false;
    for (const [name, value] of Object.entries(headers)) {
      if (!FORBIDDEN.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.responseText);
      else reject(errorOf(xhr.status, xhr.responseText, xhr.getResponseHeader('retry-after')));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network_error', `the upload to ${new URL(url, location.href).host} failed`));
    xhr.ontimeout = xhr.onerror;
    const abort = () => xhr.abort();
    signal.addEventListener('abort', abort, { once: true });
    xhr.onloadend = () => signal.removeEventListener('abort', abort);
    xhr.onabort = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    xhr.send(body);
  });
}

/**
 * `attempt(n)` until it succeeds, fails for good or the attempts are spent; `reset` runs
 * before each retry (the bytes start over).
 */
async function retried(attempt, reset, signal) {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof ApiError) || !e.transient || n >= RETRY.attempts || signal.aborted) throw e;
      reset();
      await sleep(e.retryAfterMs ?? backoffMs(n), signal);
    }
  }
}

/** A fresh Idempotency-Key: the same for every attempt of one multipart upload. */
function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Uploads every item of `items` into batch `batchId`.
 * @param {string} batchId
 * @param {Item[]} items
 * @param {{ onChange: (item: Item) => void, signal: AbortSignal }} hooks
 */
export async function uploadAll(batchId, items, { onChange, signal }) {
  /** @type {boolean | null} null until the server said whether it presigns */
  let presigning = null;
  let next = 0;

  const fail = (item, e) => {
    item.state = 'failed';
    item.error = { code: e.code ?? 'upload_failed', message: e.message };
    onChange(item);
  };

  /** Tickets for `chunk`, or null when the server does not presign; a chunk refused
   *  because of one file is asked again file by file, so each file gets its own answer. */
  async function tickets(chunk) {
    const announce = (it) => ({ filename: it.file.name, size: it.file.size, content_type: it.type });
    try {
      return await requestUploads(batchId, chunk.map(announce), signal);
    } catch (e) {
      if (!(e instanceof ApiError) || chunk.length === 1 || ![413, 422].includes(e.status)) throw e;
      const one = [];
      for (const it of chunk) {
        try {
          const got = await requestUploads(batchId, [announce(it)], signal);
          if (got === null) return null;
          one.push(got[0]);
        } catch (err) {
          if (!(err instanceof ApiError) || ![413, 422].includes(err.status)) throw err;
          fail(it, err);
          one.push(null);
        }
      }
      return one;
    }
  }

  async function presigned(item, ticket) {
    await retried(
      () => send(ticket.method || 'PUT', ticket.url, ticket.headers, item.file, (loaded) => {
        item.sent = loaded;
        onChange(item);
      }, signal),
      () => { item.sent = 0; onChange(item); },
      signal,
    );
    await completeUpload(batchId, ticket.photo_id, signal);
    item.photoId = ticket.photo_id;
  }

  async function multipart(item) {
    const key = idempotencyKey();
    const text = await retried(() => {
      const form = new FormData();
      form.append('file', new File([item.file], item.file.name, { type: item.type }));
      return send('POST', `/v1/batches/${batchId}/photos`, { 'Idempotency-Key': key }, form, (loaded) => {
        item.sent = Math.min(loaded, item.file.size);
        onChange(item);
      }, signal);
    }, () => { item.sent = 0; onChange(item); }, signal);
    item.photoId = JSON.parse(text).photos[0]?.id ?? null;
  }

  async function one(item, ticket) {
    item.state = 'uploading';
    onChange(item);
    try {
      if (ticket) await presigned(item, ticket);
      else await multipart(item);
      item.sent = item.file.size;
      item.state = 'uploaded';
      onChange(item);
    } catch (e) {
      if (signal.aborted) throw e;
      if (e instanceof ApiError && ['batch_not_found', 'batch_closed', 'invalid_session'].includes(e.code)) throw e;
      fail(item, e);
    }
  }

  // The chunks go one after the other, each at CONCURRENCY files at a time; the next
  // chunk's tickets are asked for when the previous chunk's last files are in flight.
  while (next < items.length) {
    const chunk = items.slice(next, next + TICKETS_PER_REQUEST).filter((it) => it.state === 'waiting');
    next += TICKETS_PER_REQUEST;
    if (chunk.length === 0) continue;
    let chunkTickets = null;
    if (presigning !== false) {
      chunkTickets = await tickets(chunk);
      presigning = chunkTickets !== null;
    }
    let cursor = 0;
    const lanes = Array.from({ length: Math.min(CONCURRENCY, chunk.length) }, async () => {
      while (cursor < chunk.length) {
        const i = cursor++;
        const item = chunk[i];
        if (item.state !== 'waiting') continue;
        await one(item, chunkTickets ? chunkTickets[i] : null);
      }
    });
    await Promise.all(lanes);
  }
}
