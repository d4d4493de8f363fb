// The phone's queue of reports that could not be sent (no network in the stairwell, the garage, the
// underground). Kept in IndexedDB, so they survive a reload and a closed tab, each with the key that makes
// sending it again safe (the server answers a key it has seen with the deviation it already made).

const DB_NAME = "lagesbild-captures";
const STORE = "captures";
const MAX_SIDE = 1600; // a photo's longer side after resizing: plenty for a deviation, small enough for fifty
const QUALITY = 0.8;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opened = null;
function database() {
  if (!opened) {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
    opened = request(req);
  }
  return opened;
}

async function store(mode) {
  return (await database()).transaction(STORE, mode).objectStore(STORE);
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; an installation on plain http still gets a random key.
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The member's captures in the forum, oldest first: {key, forum, user, fields, photos, label, created, state,
// reason, id}. On a device several people use, each sees and sends only their own: never under another's name.
export async function captures(forum, user) {
  const all = await request((await store("readonly")).getAll());
  return all.filter((c) => c.forum === forum && c.user === user).sort((a, b) => a.created - b.created);
}

export async function put(capture) {
  await request((await store("readwrite")).put(capture));
}

export async function remove(key) {
  await request((await store("readwrite")).delete(key));
}

// A photo made smaller on the phone before it waits: JPEG, at most MAX_SIDE pixels on its longer side.
// A file the browser cannot draw (HEIC on most of them) waits as it is; the server converts it.
export async function resized(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return file;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", QUALITY));
  if (!blob || blob.size >= file.size) return file;
  return new File([blob], file.name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" });
}

export function formOf(capture) {
  const form = new FormData();
  for (const [name, value] of capture.fields) form.append(name, value);
  for (const photo of capture.photos) form.append("photos", photo, photo.name);
  return form;
}
