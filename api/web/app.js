// The page: choose photos, create the session and the batch, upload, follow the batch's
// event stream, then show the gallery. Progress is drawn at most once per frame; the status
// line (aria-live) speaks only at milestones, so screen readers are not flooded.

import * as api from './api.js';
import { fromDrop, fromInput, imageType } from './files.js';
import { humanBytes, render } from './gallery.js';
import { uploadAll } from './upload.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  drop: $('drop'), pickFiles: /** @type {HTMLInputElement} */ ($('pick-files')),
  pickFolder: /** @type {HTMLInputElement} */ ($('pick-folder')), selection: $('selection'),
  clear: $('clear'), form: /** @type {HTMLFormElement} */ ($('options')),
  sizes: /** @type {HTMLInputElement} */ ($('sizes')), format: /** @type {HTMLSelectElement} */ ($('format')),
  quality: /** @type {HTMLInputElement} */ ($('quality')), optionsError: $('options-error'),
  metadata: /** @type {HTMLSelectElement} */ ($('metadata')),
  start: /** @type {HTMLButtonElement} */ ($('start')), progress: $('progress'),
  uploadMeter: /** @type {HTMLProgressElement} */ ($('upload-meter')), uploadText: $('upload-text'),
  processMeter: /** @type {HTMLProgressElement} */ ($('process-meter')), processText: $('process-text'),
  status: $('status'), files: $('files'), del: /** @type {HTMLButtonElement} */ ($('delete')),
  again: $('again'), results: $('results'), zip: /** @type {HTMLAnchorElement} */ ($('zip')),
  gallery: $('gallery'), failed: $('failed'), failures: $('failures'),
};

/** @type {import('./upload.js').Item[]} */
let selection = [];
/** Files set aside before sending: no image, or empty. */
let refused = [];
let sessionReady = null;
/** The running batch: its id, how to stop its uploads and its event stream. */
let run = null;

function say(text) {
  ui.status.textContent = text;
}

function describeSelection() {
  const bytes = selection.reduce((n, it) => n + it.file.size, 0);
  const parts = [];
  if (selection.length) parts.push(`${selection.length} photo${selection.length > 1 ? 's' : ''} (${humanBytes(bytes)}) chosen`);
  if (refused.length) parts.push(`${refused.length} file${refused.length > 1 ? 's' : ''} set aside (not an image, or empty)`);
  if (run) parts.unshift(`${run.items.length} photo${run.items.length > 1 ? 's' : ''} in this batch`);
  ui.selection.textContent = parts.length ? `${parts.join('; ')}.` : 'No photo chosen yet.';
  ui.clear.hidden = selection.length + refused.length === 0 || run !== null;
  ui.start.disabled = selection.length === 0 || run !== null;
}

/** @param {{ file: File, name: string }[]} found */
function add(found) {
  const seen = new Set(selection.map((it) => `${it.name}|${it.file.size}|${it.file.lastModified}`));
  for (const { file, name } of found) {
    const key = `${name}|${file.size}|${file.lastModified}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const type = imageType(file);
    if (!type) refused.push({ name, code: 'not_an_image', message: '' });
    else if (file.size === 0) refused.push({ name, code: 'empty_file', message: '' });
    else selection.push({ file, name, type, sent: 0, state: 'waiting', photoId: null, error: null });
  }
  describeSelection();
}

/** The options as the API takes them, or an error sentence. */
function readOptions() {
  const sizes = ui.sizes.value.split(/[\s,;]+/).filter(Boolean).map(Number);
  if (sizes.length === 0 || sizes.length > 8 || sizes.some((s) => !Number.isInteger(s) || s < 16 || s > 8192)) {
    return { error: 'Sizes: give 1 to 8 whole numbers from 16 to 8192, separated by commas.', field: ui.sizes };
  }
  if (new Set(sizes).size !== sizes.length) return { error: 'Sizes: each size only once.', field: ui.sizes };
  const quality = Number(ui.quality.value);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    return { error: 'Quality: a whole number from 1 to 100.', field: ui.quality };
  }
  return { options: { sizes, format: ui.format.value, quality, metadata: ui.metadata.value } };
}

// --- progress -------------------------------------------------------------------------------

let drawPending = false;
const rows = new Map();
let counts = { total: 0, done: 0, failed: 0 };
let spoken = { upload: -1, process: -1 };

function fileRow(item) {
  const li = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = item.name;
  const meter = document.createElement('progress');
  meter.max = item.file.size;
  meter.value = 0;
  meter.setAttribute('aria-label', `${item.name} uploaded`);
  const state = document.createElement('span');
  state.className = 'state';
  li.append(name, meter, state);
  ui.files.append(li);
  rows.set(item, { meter, state });
}

function draw() {
  drawPending = false;
  if (!run) return;
  const items = run.items;
  const total = items.reduce((n, it) => n + it.file.size, 0) || 1;
  const sent = items.reduce((n, it) => n + (it.state === 'failed' ? it.file.size : it.sent), 0);
  const share = Math.min(1, sent / total);
  ui.uploadMeter.value = share;
  ui.uploadText.textContent = `${Math.floor(share * 100)} %`;
  const expected = Math.max(counts.total, items.filter((it) => it.state !== 'failed').length);
  const finished = counts.done + counts.failed;
  ui.processMeter.max = expected || 1;
  ui.processMeter.value = finished;
  ui.processText.textContent = `${finished} of ${expected}${counts.failed ? ` (${counts.failed} failed)` : ''}`;
  for (const item of items) {
    const row = rows.get(item);
    row.meter.value = item.sent;
    row.state.textContent = item.state === 'failed' ? `failed: ${item.error.code}` : item.state;
  }
  // Spoken every quarter, so a screen reader hears progress without a flood.
  const upQuarter = Math.floor(share * 4);
  if (upQuarter > spoken.upload && upQuarter < 4) {
    spoken.upload = upQuarter;
    say(`Uploading: ${upQuarter * 25} % sent.`);
  }
  const procQuarter = expected ? Math.floor((finished / expected) * 4) : 0;
  if (share >= 1 && procQuarter > spoken.process && procQuarter < 4) {
    spoken.process = procQuarter;
    say(`Resizing: ${finished} of ${expected} photos finished.`);
  }
}

function redraw() {
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(draw);
  }
}

// --- the batch ------------------------------------------------------------------------------

/** Follows the batch's event stream (polling if the stream cannot be opened) until it completes. */
function follow(batchId, signal) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(`/v1/batches/${batchId}/events`);
    let poller = null;
    const stop = () => { source.close(); clearInterval(poller); };
    signal.addEventListener('abort', () => { stop(); reject(signal.reason); }, { once: true });
    const update = (batch) => {
      counts = { total: batch.total, done: batch.done, failed: batch.failed };
      redraw();
      if (batch.state === 'completed') { stop(); resolve(batch); }
    };
    source.addEventListener('progress', (e) => update(JSON.parse(e.data)));
    source.addEventListener('completed', (e) => update(JSON.parse(e.data)));
    source.addEventListener('error', (e) => {
      if (e.data) { // the server's own `error` event: the batch is gone
        stop();
        const body = JSON.parse(e.data);
        reject(new api.ApiError(404, body.error.code, body.error.message));
      } else if (source.readyState === EventSource.CLOSED && poller === null) {
        // Refused outright (not a passing break, which EventSource retries itself): poll.
        poller = setInterval(() => api.getBatch(batchId).then(update, (err) => { stop(); reject(err); }), 1000);
      }
    });
  });
}

async function start(options) {
  const controller = new AbortController();
  const items = selection;
  selection = [];
  const current = { id: null, items, controller, deleted: false };
  run = current;
  counts = { total: 0, done: 0, failed: 0 };
  spoken = { upload: -1, process: -1 };
  rows.clear();
  ui.files.replaceChildren();
  items.forEach(fileRow);
  describeSelection();
  ui.progress.hidden = false;
  ui.results.hidden = true;
  ui.del.hidden = true;
  ui.again.hidden = true;
  ui.form.inert = true;
  say(`Starting: ${items.length} photos.`);
  redraw();
  try {
    sessionReady ??= api.createSession();
    await sessionReady;
    const batch = await api.createBatch(options);
    current.id = batch.id;
    ui.del.hidden = false;
    const completed = follow(batch.id, controller.signal);
    completed.catch(() => {}); // observed below; no unhandled rejection meanwhile
    await uploadAll(batch.id, items, { onChange: redraw, signal: controller.signal });
    ui.uploadMeter.value = 1;
    say('Everything is sent; resizing.');
    await api.closeBatch(batch.id);
    await completed;
    const photos = await api.listPhotos(batch.id);
    const clientFailures = [
      ...refused,
      ...items.filter((it) => it.state === 'failed').map((it) => ({ name: it.name, ...it.error })),
    ];
    const shown = render(ui, photos, clientFailures);
    ui.zip.href = `/v1/batches/${batch.id}/archive`;
    ui.zip.hidden = shown.done === 0;
    ui.results.hidden = false;
    draw();
    say(`Done: ${shown.done} photo${shown.done === 1 ? '' : 's'} resized${shown.failed ? `, ${shown.failed} failed` : ''}.`);
    refused = [];
  } catch (e) {
    if (current.deleted) return;
    if (e instanceof api.ApiError && e.code === 'invalid_session') sessionReady = null;
    say(`Stopped: ${e.message}${e.code ? ` (${e.code})` : ''}.`);
    // Ends the event stream and any upload still in flight.
    controller.abort(new DOMException('stopped', 'AbortError'));
  } finally {
    if (!current.deleted) ui.again.hidden = false;
  }
}

function reset() {
  run = null;
  ui.progress.hidden = true;
  ui.results.hidden = true;
  ui.form.inert = false;
  ui.gallery.replaceChildren();
  ui.failed.replaceChildren();
  describeSelection();
}

async function remove() {
  if (!run?.id) return;
  const { id, controller } = run;
  run.deleted = true;
  controller.abort(new DOMException('the batch was deleted', 'AbortError'));
  ui.del.disabled = true;
  try {
    await api.deleteBatch(id);
    reset();
    say('The batch and its photos are deleted.');
    ui.pickFiles.focus();
  } catch (e) {
    say(`Could not delete the batch: ${e.message}.`);
    ui.again.hidden = false;
  } finally {
    ui.del.disabled = false;
  }
}

// --- wiring ---------------------------------------------------------------------------------

// A file dropped anywhere on the page is taken, never opened by the browser instead.
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
document.addEventListener('dragleave', (e) => {
  if (e.relatedTarget === null) ui.drop.classList.remove('over');
});
document.addEventListener('drop', async (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  if (run || !e.dataTransfer) return;
  add(await fromDrop(e.dataTransfer));
});
for (const input of [ui.pickFiles, ui.pickFolder]) {
  input.addEventListener('change', () => {
    add(fromInput(input));
    input.value = '';
  });
}
ui.clear.addEventListener('click', () => {
  selection = [];
  refused = [];
  describeSelection();
});
ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const read = readOptions();
  if (read.error) {
    ui.optionsError.textContent = read.error;
    read.field.setAttribute('aria-invalid', 'true');
    read.field.focus();
    return;
  }
  ui.optionsError.textContent = '';
  ui.sizes.removeAttribute('aria-invalid');
  ui.quality.removeAttribute('aria-invalid');
  start(read.options);
});
ui.del.addEventListener('click', remove);
ui.again.addEventListener('click', () => {
  reset();
  say('');
  ui.pickFiles.focus();
});
describeSelection();
