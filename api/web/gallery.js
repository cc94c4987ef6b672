// The results: each photo's smallest rendition with its dimensions and a link to every
// size, and the photos that failed with their code and a sentence a person can act on.

/** Photo failure codes (shared/src/codes.rs FailureCode) and upload refusals, in words. */
const MESSAGES = {
  unsupported_format: 'This file is not a JPEG, PNG, WebP, GIF, HEIC or AVIF image.',
  corrupt_image: 'The image data is damaged and cannot be read.',
  too_many_pixels: 'The image has more pixels than the server accepts.',
  too_large: 'The file is larger than the server accepts.',
  invalid_options: 'The chosen sizes or format cannot be applied to this image.',
  invalid_job: 'The server lost track of this photo.',
  source_missing: 'The uploaded file was no longer in storage.',
  storage_error: 'The server could not store the result. Try again later.',
  internal_error: 'An unexpected error happened on the server.',
  retries_exhausted: 'The server kept failing on this photo. Try again later.',
  enqueue_failed: 'The photo was stored but could not be queued for resizing.',
  worker_crashed: 'Resizing this photo crashed the server every time it was tried.',
  file_too_large: 'The file is larger than the server accepts.',
  empty_file: 'The file is empty.',
  invalid_files: 'The server refused this file.',
  not_an_image: 'This file is not an image; it was not sent.',
  network_error: 'The upload failed: the network connection broke, even after retries.',
  too_many_photos: 'The batch already holds as many photos as the server allows.',
};

/** @param {string} code @param {string} [fallback] */
export function describe(code, fallback) {
  return MESSAGES[code] ?? fallback ?? `Failed (${code}).`;
}

/** @param {number} bytes */
export function humanBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

/**
 * One gallery tile: the smallest rendition as an image, its size, links to every size.
 * @param {import('./api.js').PhotoView} photo
 */
function tile(photo) {
  const outputs = [...photo.outputs].sort((a, b) => a.size - b.size);
  const smallest = outputs[0];
  const img = el('img', {
    src: smallest.url,
    alt: photo.filename,
    width: smallest.width,
    height: smallest.height,
    loading: 'lazy',
    decoding: 'async',
  });
  const dims = photo.width && photo.height ? `${photo.width} × ${photo.height} original` : '';
  const links = el('ul', { className: 'sizes' });
  for (const o of outputs.slice().reverse()) {
    const a = el('a', { href: o.url, download: '' }, `${o.size}p`);
    a.setAttribute('aria-label', `${photo.filename} at ${o.size}p, ${o.width} × ${o.height}, ${humanBytes(o.bytes)}`);
    links.append(el('li', {}, a, el('span', { className: 'muted' }, `${o.width} × ${o.height} · ${humanBytes(o.bytes)}`)));
  }
  const caption = el('figcaption', {},
    el('span', { className: 'name' }, photo.filename),
    el('span', { className: 'muted dims' }, dims),
    ...(photo.warnings ?? []).map(warning),
    links);
  return el('li', { className: 'tile' }, el('figure', {}, img, caption));
}

/** What a photo done carries as a warning, by code (the API's `x-photo-warnings`). */
const WARNINGS = {
  truncated: 'The original ends early: its missing part is grey. Upload the whole file again.',
};

/** One warning on a tile: its code and a sentence. @param {string} code */
function warning(code) {
  return el('p', { className: 'warning' },
    el('code', {}, code), ' — ',
    WARNINGS[code] ?? 'The server flagged this photo.');
}

/**
 * One failed photo: its name, code and a sentence.
 * @param {string} name
 * @param {string} code
 * @param {string} [message]
 */
export function failure(name, code, message) {
  return el('li', {},
    el('span', { className: 'name' }, name), ': ',
    el('code', {}, code), ' — ',
    describe(code, message));
}

/**
 * Fills the gallery and the failure list.
 * @param {{ gallery: HTMLElement, failed: HTMLElement, failures: HTMLElement }} at
 * @param {any[]} photos the batch's PhotoView list
 * @param {{ name: string, code: string, message: string }[]} refused files the server never took
 */
export function render(at, photos, refused) {
  const byName = (a, b) => a.filename.localeCompare(b.filename, undefined, { numeric: true });
  const done = photos.filter((p) => p.state === 'done' && p.outputs.length > 0).sort(byName);
  const failed = photos.filter((p) => p.state === 'failed');
  at.gallery.replaceChildren(...done.map(tile));
  at.failed.replaceChildren(
    ...failed.map((p) => failure(p.filename, p.error ?? 'internal_error')),
    ...refused.map((r) => failure(r.name, r.code, r.message)),
  );
  at.failures.hidden = failed.length + refused.length === 0;
  return { done: done.length, failed: failed.length + refused.length };
}
