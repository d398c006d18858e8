// A session spanning two engines, with real Chromium and the unchanged openvidu-browser 2.32.2:
// signaling runs with POOL_MAX_ENDPOINTS=3, so the session's engine takes the host's endpoint
// and PassThrough and one viewer; the second viewer goes to the other engine, fed through a
// relay. Both viewers decode the host's video (keyframes reach them through the relay), the
// REST API and the operator dashboard show the span (bitrates included), and when everyone has
// left the engines hold no pipelines.
import { chromium } from 'playwright-core';
import { CHROMIUM, FLAGS, serve, sleep, until, finish, enginePipelines, pageFiles } from './common.mjs';
import { waitReady } from './ready.mjs';

const SIGNALING = process.env.SIGNALING_URL || 'http://127.0.0.1:4443';
const SECRET = process.env.OPENVIDU_SECRET || 'MY_SECRET';
const BASIC = { authorization: 'Basic ' + Buffer.from(`OPENVIDUAPP:${SECRET}`).toString('base64'), 'content-type': 'application/json' };
const { server, origin } = await serve(pageFiles());

async function rest(method, path, body) {
  const r = await fetch(`${SIGNALING}/openvidu/api${path}`, { method, headers: BASIC, body: body && JSON.stringify(body) });
  return [r.status, r.status === 204 ? null : await r.json()];
}

await waitReady(SIGNALING);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
try {
  await rest('POST', '/sessions', { customSessionId: 'relay-room' });
  const token = async () => (await rest('POST', '/sessions/relay-room/connection', {}))[1].token;
  const pages = [];
  for (const name of ['host', 'viewer1', 'viewer2']) {
    const p = await (await browser.newContext()).newPage();
    p.on('console', (m) => { if (m.type() === 'error') console.error(`${name}:`, m.text()); });
    await p.goto(origin);
    await p.waitForFunction(() => window.joinRoom);
    pages.push(p);
  }
  const [host, v1, v2] = pages;
  const t0 = Date.now();
  await host.evaluate(([t]) => window.joinRoom(t, 'host'), [await token()]);
  await v1.evaluate(([t]) => window.joinRoom(t, 'viewer1', false), [await token()]);
  await until('viewer1 decodes the host', () => v1.evaluate(() => window.decoded()));
  await v2.evaluate(([t]) => window.joinRoom(t, 'viewer2', false), [await token()]);
  await until('viewer2 decodes the host', () => v2.evaluate(() => window.decoded()));
  const mediaMs = Date.now() - t0;
  await sleep(1500);
  const f1 = await v1.evaluate(() => window.decoded());
  const f2 = await v2.evaluate(() => window.decoded());
  // The operator dashboard (static/dashboard.html, default secret) shows the span, the
  // stream's incoming bitrate and the relay with its bitrate.
  const dash = await (await browser.newContext()).newPage();
  dash.on('console', (m) => { if (m.type() === 'error') console.error('dashboard:', m.text()); });
  await dash.goto(`${SIGNALING}/dashboard.html`);
  let shown = null;
  await until('dashboard shows bitrates and the relay', async () => {
    shown = await dash.evaluate(() => {
      const t = [...document.querySelectorAll('#streams table')].map((x) => [...x.rows].slice(1).map((r) => [...r.cells].map((c) => c.textContent)));
      return { head: document.querySelector('#streams h3')?.textContent || '', streams: t[0] || [], relays: t[1] || [] };
    });
    return shown.head.includes('spans') && Number(shown.streams[0]?.[1]) > 50
      && shown.relays.length === 1 && Number(shown.relays[0][3]) > 50;
  });
  const [, s] = await rest('GET', '/sessions/relay-room');
  const relays = s.relays || [];
  for (const p of pages) await p.evaluate(() => window.leave());
  await sleep(800);
  const pipelines = await enginePipelines(SIGNALING);
  console.log(JSON.stringify({ result: 'stats', dashboard: shown, mediaMs, framesViewer1: f1, framesViewer2: f2, mediaNodeIds: s.mediaNodeIds, relays, pipelines }));
  if (!(f1 > 10 && f2 > 10)) failed = `frames decoded: viewer1 ${f1}, viewer2 ${f2}`;
  else if (!(s.mediaNodeIds && s.mediaNodeIds.length === 2)) failed = `session spans ${JSON.stringify(s.mediaNodeIds)}`;
  else if (!(relays.length === 1 && relays[0].subscribers === 1 && relays[0].ready)) failed = `relays ${JSON.stringify(relays)}`;
  else if (pipelines !== 0) failed = `engines still hold ${pipelines} pipelines`;
} catch (e) {
  failed = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
finish(failed);
