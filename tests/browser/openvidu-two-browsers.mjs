// Two Chromium participants (PAGE=ov-page.html: the unchanged openvidu-browser 2.32.2 bundle;
// PAGE=ours-page.html: rtcpool's own static/rtcpool.js) against rtcpool
// signaling: each decodes the other's video, a signal arrives, one leaves and the other gets
// streamDestroyed + connectionDestroyed; afterwards the engines hold no pipelines.
// Tokens come from the unchanged openvidu-node-client 2.32.2. Runs inside a lo-only namespace.
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { CHROMIUM, FLAGS, serve, sleep, until, finish, enginePipelines, pageFiles } from './common.mjs';
import { waitReady } from './ready.mjs';

const require = createRequire(import.meta.url);
const { OpenVidu } = require('openvidu-node-client');
const SIGNALING = process.env.SIGNALING_URL || 'http://127.0.0.1:4443';
const SECRET = process.env.OPENVIDU_SECRET || 'MY_SECRET';
const PAGE = process.env.PAGE || 'ov-page.html';
const { server, origin } = await serve(pageFiles());

await waitReady(SIGNALING);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
try {
  const ov = new OpenVidu(SIGNALING, SECRET);
  const session = await ov.createSession({ customSessionId: `browser-room-${PAGE.split('-')[0]}` });
  const [ca, cb] = [await session.createConnection({ data: 'alice' }), await session.createConnection({ data: 'bob' })];
  const a = await (await browser.newContext()).newPage();
  const b = await (await browser.newContext()).newPage();
  a.on('console', (m) => { if (m.type() === 'error') console.error('A:', m.text()); });
  b.on('console', (m) => { if (m.type() === 'error') console.error('B:', m.text()); });
  await a.goto(origin); await b.goto(origin);
  await a.waitForFunction(() => window.joinRoom); await b.waitForFunction(() => window.joinRoom);
  const t0 = Date.now();
  const idA = await a.evaluate(([t]) => window.joinRoom(t, 'alice'), [ca.token]);
  const idB = await b.evaluate(([t]) => window.joinRoom(t, 'bob'), [cb.token]);
  await until('A decodes B', () => a.evaluate(() => window.decoded()));
  await until('B decodes A', () => b.evaluate(() => window.decoded()));
  const media = Date.now() - t0;
  const fa = await a.evaluate(() => window.decoded());
  const fb = await b.evaluate(() => window.decoded());
  await a.evaluate(() => window.signal('hello'));
  await until('signal at B', () => b.evaluate(() => window.log.includes('signal:hello')));
  await session.fetch();
  const activeBefore = session.activeConnections.length;
  await b.evaluate(() => window.leave());
  await until('streamDestroyed at A', () => a.evaluate(() => window.log.some((l) => l.startsWith('streamDestroyed'))));
  await until('connectionDestroyed at A', () => a.evaluate(() => window.log.some((l) => l.startsWith('connectionDestroyed'))));
  const logA = await a.evaluate(() => window.log);
  await a.evaluate(() => window.leave());
  // The session is gone once the last participant left; the engines hold nothing.
  await sleep(500);
  const pipelines = await enginePipelines(SIGNALING);
  console.log(JSON.stringify({ result: 'stats', idA, idB, mediaMs: media, framesA: fa, framesB: fb, activeBefore, logA, pipelines }));
  if (!(fa > 0 && fb > 0)) failed = 'no frames decoded';
  else if (activeBefore !== 2) failed = `node-client saw ${activeBefore} active connections`;
  else if (!logA.includes('streamDestroyed:disconnect') || !logA.includes('connectionDestroyed:disconnect')) failed = `wrong leave events ${logA}`;
  else if (pipelines !== 0) failed = `engines still hold ${pipelines} pipelines`;
} catch (e) {
  failed = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
finish(failed);
