// A stand-in for `wewerewondering serve` for working on the client without building
// the Rust server: the same routes (design §7), in memory, with SSE, serving `dist/`.
// It is not the product and the end-to-end tests do not use it unless told to
// (E2E_SERVER=mock); it exists so the pages can be worked on and looked at quickly.
//
//   node e2e/mock-server.js [port] [--no-live]
//
// --no-live answers 404 on /api/live/* like the AWS deployment, to exercise polling.

import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastUlidMs = 0;
let lastUlidRand = 0n;

function ulid() {
  const now = Date.now();
  if (now === lastUlidMs) lastUlidRand += 1n;
  else lastUlidRand = BigInt(`0x${randomBytes(10).toString('hex')}`) >> 1n;
  lastUlidMs = now;
  let value = (BigInt(now) << 80n) | lastUlidRand;
  let out = '';
  for (let i = 0; i < 26; i += 1) {
    out = CROCKFORD[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

const events = new Map(); // eid → { secret, questions: Map(qid → q), streams: Set }
const questionsById = new Map();
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.map': 'application/json' };

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(text);
}

function rankList(ev, host) {
  const all = [...ev.questions.values()].filter((q) => host || !q.hidden);
  const open = all.filter((q) => !q.hidden && q.answered === null).sort((a, b) => b.voters.size - a.voters.size || (a.qid < b.qid ? -1 : 1));
  const answered = all.filter((q) => !q.hidden && q.answered !== null).sort((a, b) => a.answered - b.answered);
  const hidden = all.filter((q) => q.hidden);
  return [...open, ...answered, ...hidden].map((q) => {
    const item = { qid: q.qid, votes: q.voters.size, hidden: q.hidden };
    if (q.answered !== null) item.answered = q.answered;
    return item;
  });
}

function push(ev) {
  for (const stream of ev.streams) stream.res.write(`data: ${JSON.stringify(rankList(ev, stream.host))}\n\n`);
}

function voterOf(req, res) {
  const match = /(?:^|;\s*)voter=([A-Za-z0-9]+)/.exec(req.headers.cookie ?? '');
  if (match) return match[1];
  const id = randomBytes(12).toString('hex');
  res.setHeader('Set-Cookie', `voter=${id}; Path=/; HttpOnly; SameSite=Lax`);
  return id;
}

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data;
}

async function api(req, res, parts, noLive) {
  const [, , a, b, c, d, e, f] = parts;
  const method = req.method;
  if (a === 'event' && !b && method === 'POST') {
    const id = ulid();
    const secret = randomBytes(16).toString('hex');
    events.set(id, { secret, questions: new Map(), streams: new Set() });
    return send(res, 200, { id, secret });
  }
  if (a === 'event' && b) {
    const ev = events.get(b);
    if (!ev) return send(res, 404, { error: 'no such event' });
    if (!c && method === 'GET') return send(res, 200, {});
    if (!c && method === 'POST') {
      let parsed;
      try {
        parsed = JSON.parse(await body(req));
      } catch {
        return send(res, 400, { error: 'bad json' });
      }
      const text = String(parsed.body ?? '').trim();
      if (text.split(/\s+/).filter(Boolean).length < 2) return send(res, 400, { error: 'A question needs at least two words.' });
      const qid = ulid();
      const voter = voterOf(req, res);
      const q = { qid, eid: b, text, who: parsed.asker || null, when: Math.floor(Date.now() / 1000), voters: new Set([voter]), askedBy: voter, hidden: false, answered: null };
      ev.questions.set(qid, q);
      questionsById.set(qid, q);
      setTimeout(() => push(ev), 20);
      return send(res, 200, { id: qid });
    }
    if (c === 'mine' && method === 'GET') {
      // The guest's own part, by the cookie; none (and no cookie minted) without one.
      const voter = /(?:^|;\s*)voter=([A-Za-z0-9]+)/.exec(req.headers.cookie ?? '')?.[1];
      const all = [...ev.questions.values()];
      const asked = voter ? all.filter((q) => q.askedBy === voter).map((q) => q.qid) : [];
      const voted = voter ? all.filter((q) => q.voters.has(voter)).map((q) => q.qid) : [];
      return send(res, 200, { asked, voted }, { 'Cache-Control': 'private, no-store' });
    }
    if (c === 'questions') {
      const host = d !== undefined;
      if (host && d !== ev.secret) return send(res, 401, { error: 'wrong secret' });
      if (e && f === 'toggle') {
        const q = ev.questions.get(e);
        if (!q) return send(res, 404, { error: 'no such question' });
        const on = (await body(req)).trim() === 'on';
        const what = parts[8];
        setTimeout(() => push(ev), 20);
        if (what === 'hidden') {
          q.hidden = on;
          return send(res, 200, { hidden: on });
        }
        q.answered = on ? Math.floor(Date.now() / 1000) : null;
        return send(res, 200, on ? { answered: q.answered } : {});
      }
      const list = JSON.stringify(rankList(ev, host));
      const etag = `"${createHash('sha1').update(list).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) return send(res, 304, '', { ETag: etag });
      return send(res, 200, list, { ETag: etag, 'Cache-Control': `max-age=${host ? 1 : 2}` });
    }
  }
  if (a === 'vote' && b && (c === 'up' || c === 'down') && method === 'POST') {
    const q = questionsById.get(b);
    if (!q) return send(res, 404, { error: 'no such question' });
    const voter = voterOf(req, res);
    if (c === 'up') q.voters.add(voter);
    else q.voters.delete(voter);
    setTimeout(() => push(events.get(q.eid)), 20);
    return send(res, 200, { votes: q.voters.size });
  }
  if (a === 'questions' && b && method === 'GET') {
    const out = {};
    for (const id of b.split(',')) {
      const q = questionsById.get(id);
      if (q) out[id] = q.who ? { text: q.text, when: q.when, who: q.who } : { text: q.text, when: q.when };
    }
    return send(res, 200, out, { 'Cache-Control': 'max-age=864001, immutable' });
  }
  if (a === 'live' && b && !noLive) {
    const ev = events.get(b);
    if (!ev) return send(res, 404, { error: 'no such event' });
    if (c !== undefined && c !== ev.secret) return send(res, 401, { error: 'wrong secret' });
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    const stream = { res, host: c !== undefined };
    ev.streams.add(stream);
    res.write(`data: ${JSON.stringify(rankList(ev, stream.host))}\n\n`);
    req.on('close', () => ev.streams.delete(stream));
    return undefined;
  }
  if (a === 'export' && b && c) {
    const ev = events.get(b);
    if (!ev) return send(res, 404, { error: 'no such event' });
    if (c !== ev.secret) return send(res, 401, { error: 'wrong secret' });
    const rows = [...ev.questions.values()];
    const text = rows.map((q) => `${q.text}\t${q.voters.size}`).join('\n');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Disposition': `attachment; filename="questions-${b}.txt"` });
    return res.end(text);
  }
  return send(res, 404, { error: 'not found' });
}

function serveStatic(req, res, path) {
  let file = normalize(join(dist, path));
  if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) {
    if (path === '/' || path.startsWith('/event/')) file = join(dist, 'index.html');
    else return send(res, 404, { error: 'not found' });
  }
  res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
  return undefined;
}

export function startMock({ port = 0, noLive = false } = {}) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const parts = url.pathname.split('/').map(decodeURIComponent);
    const handle = parts[1] === 'api' ? api(req, res, parts, noLive) : serveStatic(req, res, url.pathname);
    Promise.resolve(handle).catch(() => send(res, 500, { error: 'internal' }));
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.argv[2] ?? 3000);
  const noLive = process.argv.includes('--no-live');
  startMock({ port, noLive }).then((server) => {
    console.log(`mock API on http://127.0.0.1:${server.address().port}${noLive ? ' (no live route)' : ''}`);
  });
}
