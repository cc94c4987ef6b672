// Drives Tirage's web page in Debian's headless Chromium, as a person would: drop (or pick)
// 20 real photos and one corrupt file, start, watch progress reach the end, check the
// gallery's images load, the corrupt file is listed with its code, the ZIP holds every
// rendition at the right size, and the batch is deleted; axe-core finds no serious or
// critical violation. Run by cli/tests/browser.rs (standalone) and
// tests/tests/browser_cluster.rs (the local cluster through nginx).
//
//   node tests/browser/page.mjs --base URL --photos DIR [--photos DIR...] [--pick]
//                               [--shots DIR] [--count 20] [--timeout-secs 300] [--bench]
//
// --photos: folders of real photos (JPEG, PNG, WebP), taken in name order, repeated under
// new names if there are fewer than --count. --pick: the file picker instead of a drop.
// --shots: save docs-sized screenshots (mid-batch, gallery, phone) there.
// --bench: no corrupt file and no checks past the gallery; prints the seconds from the drop
// to the gallery (bench/page.sh).
// Exit 0 when every check passes; otherwise the failed check on stderr and exit 1.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, copyFileSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, extname, basename } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

import { imageSize, readZip } from './zip.mjs';

const CHROMIUM = process.env.TIRAGE_CHROMIUM ?? '/usr/bin/chromium';
const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    photos: { type: 'string', multiple: true },
    pick: { type: 'boolean', default: false },
    shots: { type: 'string' },
    count: { type: 'string', default: '20' },
    'timeout-secs': { type: 'string', default: '300' },
    bench: { type: 'boolean', default: false },
  },
});
assert.ok(args.base, '--base URL is required');
assert.ok(args.photos?.length, '--photos DIR is required');
const base = args.base.replace(/\/$/, '');
const count = Number(args.count);
const timeout = Number(args['timeout-secs']) * 1000;
const log = (...m) => console.error('[page]', ...m);

/** `count` photos under distinct names, plus `cut.jpg` (a JPEG cut short) and `broken.jpg`, in a fresh folder. */
function stagePhotos() {
  const sources = args.photos.flatMap((dir) => readdirSync(dir)
    .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
    .sort()
    .map((f) => join(dir, f)));
  assert.ok(sources.length > 0, `no photos in ${args.photos.join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'tirage-page-'));
  const files = [];
  for (let i = 0; i < count; i++) {
    const src = sources[i % sources.length];
    const name = `p${String(i + 1).padStart(2, '0')}-${basename(src, extname(src)).toLowerCase()}${extname(src).toLowerCase()}`;
    copyFileSync(src, join(dir, name));
    files.push(join(dir, name));
  }
  if (args.bench) return { dir, files };
  // The first JPEG, cut short: rendered, with the warning `truncated` on its tile.
  const jpeg = readFileSync(sources.find((f) => /\.jpe?g$/i.test(f)) ?? assert.fail('no JPEG among the photos'));
  writeFileSync(join(dir, 'cut.jpg'), jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
  files.push(join(dir, 'cut.jpg'));
  // A JPEG header, then noise: no decoder can make an image of it.
  const broken = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0'), Buffer.alloc(4000, 0x5a)]);
  writeFileSync(join(dir, 'broken.jpg'), broken);
  files.push(join(dir, 'broken.jpg'));
  return { dir, files };
}

async function axeScan(page, what) {
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const described = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
  assert.deepEqual(described, [], `axe-core on the ${what}: serious or critical violations`);
  log(`axe-core on the ${what}: ${result.violations.length} minor/moderate, 0 serious/critical`);
}

async function main() {
  const staged = stagePhotos();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const hosts = new Set();
  page.on('request', (r) => hosts.add(new URL(r.url()).hostname));

  try {
    // The page and its headers.
    const response = await page.goto(`${base}/`);
    assert.equal(response.status(), 200, 'GET / answers 200');
    const headers = response.headers();
    assert.equal(headers['cache-control'], 'no-cache');
    const csp = headers['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const script = await page.locator('script[type=module]').getAttribute('src');
    assert.match(script, /^\/assets\/[0-9a-f]{16}\/app\.js$/, 'the script is under a versioned path');
    const asset = await context.request.get(`${base}${script}`);
    assert.equal(asset.headers()['cache-control'], 'public, max-age=31536000, immutable');
    await axeScan(page, 'empty page');

    // Drop the photos (or pick them), then start with the keyboard.
    if (args.pick) {
      await page.setInputFiles('#pick-files', staged.files);
    } else {
      // The test's own file input (never part of the page) holds the files for a drop.
      const holder = await page.evaluateHandle(() => {
        const input = document.createElement('input');
        input.type = 'file';
        input.multiple = true;
        return input;
      });
      await holder.asElement().setInputFiles(staged.files);
      await page.evaluate((input) => {
        const data = new DataTransfer();
        for (const f of input.files) data.items.add(f);
        const target = document.getElementById('drop');
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
      }, holder);
    }
    const chosen = args.bench ? count : count + 2;
    await page.locator('#selection', { hasText: `${chosen} photos` }).waitFor({ timeout: 60_000 });
    await page.locator('#start').focus();
    const started = Date.now();
    await page.keyboard.press('Enter');

    // Progress: both meters move and reach their end.
    await page.locator('#progress').waitFor({ state: 'visible' });
    let midShot = false;
    let sawMidUpload = false;
    for (;;) {
      const state = await page.evaluate(() => ({
        upload: document.getElementById('upload-meter').value,
        processed: document.getElementById('process-meter').value,
        expected: document.getElementById('process-meter').max,
        done: !document.getElementById('results').hidden,
        status: document.getElementById('status').textContent,
      }));
      if (state.upload > 0 && state.upload < 1) sawMidUpload = true;
      if (args.shots && !midShot && state.upload > 0.3 && state.processed >= 1 && state.processed < state.expected - 2) {
        await page.screenshot({ path: join(args.shots, 'page-progress.png'), fullPage: true });
        midShot = true;
      }
      if (state.done) break;
      assert.ok(!state.status.startsWith('Stopped'), `the page stopped: ${state.status}`);
      assert.ok(Date.now() - started < timeout, `no gallery after ${timeout / 1000} s: ${JSON.stringify(state)}`);
      await page.waitForTimeout(100);
    }
    const seconds = (Date.now() - started) / 1000;
    log(`drop to gallery: ${seconds.toFixed(1)} s (mid-upload progress seen: ${sawMidUpload})`);
    if (args.bench) {
      assert.equal(await page.locator('#gallery img').count(), count, `the gallery shows ${count} images`);
      console.log(JSON.stringify({ ok: true, photos: count, seconds }));
      return;
    }
    assert.equal(await page.locator('#upload-meter').evaluate((m) => m.value), 1);
    const done = count + 1; // and cut.jpg
    assert.equal(await page.locator('#process-text').textContent(), `${done + 1} of ${done + 1} (1 failed)`);
    assert.equal(await page.locator('#status').getAttribute('aria-live'), 'polite');
    assert.equal(await page.locator('#status').textContent(), `Done: ${done} photos resized, 1 failed.`);

    // The gallery: every image is its smallest rendition's API URL, and loads.
    const batchId = (await page.locator('#zip').getAttribute('href')).split('/')[3];
    const listed = await page.evaluate(async (id) => (await fetch(`/v1/batches/${id}/photos?limit=1000`)).json(), batchId);
    const images = page.locator('#gallery img');
    assert.equal(await images.count(), done, `the gallery shows ${done} images`);
    for (let i = 0; i < done; i++) {
      const img = images.nth(i);
      await img.scrollIntoViewIfNeeded();
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 20_000 });
      const src = await img.getAttribute('src');
      const photo = listed.photos.find((p) => src.startsWith(`/v1/batches/${batchId}/photos/${p.id}/`));
      assert.ok(photo, `${src} is a photo of the batch`);
      const smallest = [...photo.outputs].sort((a, b) => a.size - b.size)[0];
      assert.equal(src, smallest.url, `${photo.filename}: the smallest rendition is shown`);
      const natural = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
      assert.deepEqual(natural, [smallest.width, smallest.height], `${photo.filename}: loaded at its size`);
    }
    assert.equal(await page.locator('#gallery .sizes a').count(), done * 3, 'a link to every size');
    // The cut photo says so on its tile, with the warning's code; no other tile does.
    const warnings = page.locator('#gallery .warning');
    assert.equal(await warnings.count(), 1, 'one warning');
    assert.equal(await warnings.locator('code').textContent(), 'truncated');
    assert.match(await page.locator('#gallery .tile', { has: page.locator('.warning') }).textContent(), /cut\.jpg/);

    // The corrupt file, with its code.
    const failed = page.locator('#failed li');
    assert.equal(await failed.count(), 1);
    const failedText = await failed.textContent();
    assert.match(failedText, /broken\.jpg/);
    assert.match(failedText, /corrupt_image|unsupported_format/);
    assert.match(await failed.locator('code').textContent(), /^(corrupt_image|unsupported_format)$/);
    await axeScan(page, 'gallery');
    if (args.shots) {
      await page.evaluate(() => document.getElementById('results').scrollIntoView());
      await page.screenshot({ path: join(args.shots, 'page-gallery.png') });
    }

    // The ZIP: 3 renditions of each photo, each at the size the API lists.
    const zipLink = page.getByRole('link', { name: /ZIP/ });
    const [download] = await Promise.all([page.waitForEvent('download'), zipLink.click()]);
    const zipPath = join(staged.dir, 'batch.zip');
    await download.saveAs(zipPath);
    const failure = await download.failure();
    assert.equal(failure, null, `the ZIP download failed: ${failure}`);
    const entries = readZip(readFileSync(zipPath));
    assert.equal(entries.length, done * 3, `the ZIP holds ${done * 3} entries`);
    for (const entry of entries) {
      const m = entry.name.match(/^(.+)_(\d+)\.jpg$/);
      assert.ok(m, `${entry.name} is <stem>_<size>.jpg`);
      const photo = listed.photos.find((p) => p.filename.replace(/\.[^.]+$/, '') === m[1]);
      assert.ok(photo, `${entry.name} names a photo of the batch`);
      const output = photo.outputs.find((o) => o.size === Number(m[2]));
      assert.ok(output, `${entry.name}: a size of the batch`);
      assert.deepEqual(imageSize(entry.data), { width: output.width, height: output.height }, `${entry.name}: dimensions`);
      assert.equal(Math.min(output.width, output.height), Math.min(output.size, photo.width, photo.height), `${entry.name}: short side`);
    }

    // A phone-sized viewport: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone's viewport`);
    if (args.shots) await page.screenshot({ path: join(args.shots, 'page-phone.png') });
    await page.setViewportSize({ width: 1200, height: 900 });

    // Delete, with the keyboard; the batch is gone.
    await page.locator('#delete').focus();
    await page.keyboard.press('Enter');
    await page.locator('#status', { hasText: 'deleted' }).waitFor({ timeout: 30_000 });
    // Asked with the page's cookie, outside the page (whose console would log the 404).
    const after = (await context.request.get(`${base}/v1/batches/${batchId}`)).status();
    assert.equal(after, 404, 'the deleted batch is gone');

    assert.deepEqual(problems, [], 'no console error, page error or CSP violation');
    const foreign = [...hosts].filter((h) => h !== '127.0.0.1' && h !== 'localhost');
    assert.deepEqual(foreign, [], 'no request left this machine');
    console.log(JSON.stringify({ ok: true, photos: count, zip_entries: entries.length, seconds }));
  } finally {
    await browser.close();
    rmSync(staged.dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`[page] FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
