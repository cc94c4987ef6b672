// Turning what the person dropped or picked into a list of image files: folders are walked
// (webkitGetAsEntry), files that are no image are set aside with the reason.

/** Media types by extension, for files the browser gives no type (some folders, some OSes). */
const TYPES = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', jpe: 'image/jpeg', jfif: 'image/jpeg',
  png: 'image/png', webp: 'image/webp', gif: 'image/gif',
  heic: 'image/heic', heif: 'image/heic', avif: 'image/avif',
};

/**
 * The media type to announce for a file, or null when it is no image.
 * @param {File} file
 */
export function imageType(file) {
  if (file.type.startsWith('image/')) return file.type;
  const ext = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
  return TYPES[ext] ?? null;
}

/** Hidden files and OS clutter a folder drop brings along. */
function clutter(name) {
  return name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';
}

/** @param {FileSystemDirectoryEntry} dir */
async function readAll(dir) {
  const reader = dir.createReader();
  const entries = [];
  // readEntries answers in pages (100 in Chromium) until an empty one.
  for (;;) {
    const page = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (page.length === 0) return entries;
    entries.push(...page);
  }
}

/**
 * @param {FileSystemEntry} entry
 * @param {{ file: File, name: string }[]} out
 */
async function walk(entry, out) {
  if (clutter(entry.name)) return;
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => /** @type {FileSystemFileEntry} */ (entry).file(resolve, reject));
    out.push({ file, name: entry.fullPath.replace(/^\//, '') || file.name });
  } else if (entry.isDirectory) {
    for (const child of await readAll(/** @type {FileSystemDirectoryEntry} */ (entry))) {
      await walk(child, out);
    }
  }
}

/**
 * The files of a drop, folders walked.
 * @param {DataTransfer} data
 * @returns {Promise<{ file: File, name: string }[]>}
 */
export async function fromDrop(data) {
  const out = [];
  // Entries must be taken synchronously, before the first await: the list empties after.
  const items = [...(data.items ?? [])].filter((i) => i.kind === 'file');
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  const plain = items.map((i) => i.getAsFile());
  if (items.length === 0) {
    return [...(data.files ?? [])].map((file) => ({ file, name: file.name }));
  }
  for (let i = 0; i < items.length; i++) {
    if (entries[i]) await walk(entries[i], out);
    else if (plain[i]) out.push({ file: plain[i], name: plain[i].name });
  }
  return out;
}

/**
 * The files of a file input (with `webkitdirectory`, their folder-relative paths).
 * @param {HTMLInputElement} input
 */
export function fromInput(input) {
  return [...(input.files ?? [])]
    .filter((file) => !clutter(file.name))
    .map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}
