// The v1 API as the page uses it: JSON requests with the session cookie, retried on network
// errors, 429 and 5xx with backoff (honouring Retry-After), and errors as ApiError carrying
// the server's stable code.

/** An answer of the API that is not a success, or a request that never got one. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when no answer came
   * @param {string} code the server's error code, or `network_error`
   * @param {string} message
   * @param {number | null} retryAfterMs from Retry-After, when given
   */
  constructor(status, code, message, retryAfterMs = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /** Worth another attempt: no answer, rate limited, or the server failed. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** Attempts of one request before giving up, and the backoff between them. */
export const RETRY = { attempts: 5, baseMs: 500, capMs: 8000 };

/** @param {number} attempt 1-based */
export function backoffMs(attempt) {
  const exp = Math.min(RETRY.capMs, RETRY.baseMs * 2 ** (attempt - 1));
  return exp / 2 + Math.random() * (exp / 2);
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, fails for good, or RETRY.attempts are spent.
 * @template T
 * @param {() => Promise<T>} attempt
 * @param {AbortSignal} [signal]
 * @returns {Promise<T>}
 */
export async function withRetries(attempt, signal) {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof ApiError) || !e.transient || n >= RETRY.attempts || signal?.aborted) throw e;
      await sleep(e.retryAfterMs ?? backoffMs(n), signal);
    }
  }
}

/** @param {string | null} value */
export function retryAfter(value) {
  const secs = Number(value);
  return value && Number.isFinite(secs) ? Math.min(secs, 60) * 1000 : null;
}

/**
 * The ApiError of a non-success answer, from its `{"error":{"code","message"}}` body.
 * @param {number} status
 * @param {string} body
 * @param {string | null} retryAfterHeader
 */
export function errorOf(status, body, retryAfterHeader) {
  let code = `http_${status}`;
  let message = `the server answered ${status}`;
  try {
    const parsed = JSON.parse(body);
    if (parsed?.error?.code) {
      code = parsed.error.code;
      message = parsed.error.message ?? message;
    }
  } catch { /* not JSON: an S3 or proxy error page */ }
  return new ApiError(status, code, message, retryAfter(retryAfterHeader));
}

/**
 * One request to the API, retried; resolves to the parsed JSON (or null for 204).
 * @param {string} method
 * @param {string} path
 * @param {{ json?: unknown, signal?: AbortSignal }} [options]
 */
export function call(method, path, { json, signal } = {}) {
  return withRetries(async () => {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: 'same-origin',
        headers: json === undefined ? {} : { 'content-type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json),
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(0, 'network_error', `no answer from the server (${e.message})`);
    }
    const text = await response.text();
    if (!response.ok) throw errorOf(response.status, text, response.headers.get('retry-after'));
    return text ? JSON.parse(text) : null;
  }, signal);
}

/** `POST /v1/sessions`: the answer sets the session cookie every later call sends. */
export const createSession = () => call('POST', '/v1/sessions');

/** @param {{ sizes: number[], format: string, quality: number, metadata: string }} options */
export const createBatch = (options) => call('POST', '/v1/batches', { json: options });

/** @param {string} id */
export const closeBatch = (id) => call('POST', `/v1/batches/${id}/close`);

/** @param {string} id */
export const getBatch = (id) => call('GET', `/v1/batches/${id}`);

/** @param {string} id */
export const deleteBatch = (id) => call('DELETE', `/v1/batches/${id}`);

/**
 * `POST …/uploads`: presigned upload tickets, in the order of `files`; null when the server
 * does not presign (the caller sends multipart through the API instead).
 * @param {string} id
 * @param {{ filename: string, size: number, content_type: string }[]} files
 * @param {AbortSignal} [signal]
 */
export async function requestUploads(id, files, signal) {
  try {
    const created = await call('POST', `/v1/batches/${id}/uploads`, { json: { files }, signal });
    if (created.uploads.length !== files.length) {
      throw new ApiError(0, 'protocol_error', `asked for ${files.length} upload URLs, got ${created.uploads.length}`);
    }
    return created.uploads;
  } catch (e) {
    if (e instanceof ApiError && [404, 405, 501].includes(e.status) && e.code !== 'batch_not_found') return null;
    throw e;
  }
}

/**
 * `POST …/photos/{photo}/complete`, once the presigned upload is stored.
 * @param {string} id
 * @param {string} photoId
 * @param {AbortSignal} [signal]
 */
export const completeUpload = (id, photoId, signal) =>
  call('POST', `/v1/batches/${id}/photos/${photoId}/complete`, { signal });

/**
 * Every photo of a batch, following the cursor.
 * @param {string} id
 */
export async function listPhotos(id) {
  const photos = [];
  let cursor = null;
  for (;;) {
    const query = cursor ? `limit=1000&cursor=${encodeURIComponent(cursor)}` : 'limit=1000';
    const page = await call('GET', `/v1/batches/${id}/photos?${query}`);
    photos.push(...page.photos);
    if (!page.next_cursor || page.next_cursor === cursor) return photos;
    cursor = page.next_cursor;
  }
}
