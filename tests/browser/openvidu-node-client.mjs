// The unchanged openvidu-node-client 2.32.2 drives rtcpool's REST API: create session (and the
// 409 → fetch path), create connection with every key null, fetch, list, forceUnpublish and
// forceDisconnect a live Chromium participant, generate a token, close. Runs in a lo-only netns.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, FLAGS, serve, sleep, until, finish, engineUri, AUTH } from './common.mjs';
import { waitReady } from './ready.mjs';

const require = createRequire(import.meta.url);
const { OpenVidu, OpenViduRole } = require('openvidu-node-client');
const kurento = require('kurento-client');
const here = path.dirname(fileURLToPath(import.meta.url));
const SIGNALING = process.env.SIGNALING_URL || 'http://127.0.0.1:4443';
function assert(c, what) { if (!c) throw new Error(`assertion failed: ${what}`); }
const files = { '/': [path.join(here, 'ours-page.html'), 'text/html'], '/rtcpool.js': [path.join(here, '../../static/rtcpool.js'), 'text/javascript'] };
const { server, origin } = await serve(files);

await waitReady(SIGNALING);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
let step = 'start';
try {
  const ov = new OpenVidu(SIGNALING, 'MY_SECRET');
  step = "const session = await ov.createSession({ customSessionId: 'n";
  const session = await ov.createSession({ customSessionId: 'node-client' });
  assert(session.sessionId === 'node-client', 'custom session id');
  step = "const again = await ov.createSession({ customSessionId: 'nod";
  const again = await ov.createSession({ customSessionId: 'node-client' }); // 409 → fetch
  assert(again.sessionId === 'node-client', '409 path fetched the session');
  step = 'const conn = await session.createConnection({ role: OpenVidu';
  const conn = await session.createConnection({ role: OpenViduRole.PUBLISHER, data: 'server-data' });
  assert(conn.connectionId.startsWith('con_') && conn.status === 'pending' && conn.token.includes('sessionId=node-client'), 'pending connection');
  assert(conn.connectionProperties.role === 'PUBLISHER' && conn.serverData === 'server-data', 'connection properties');
  step = 'const page = await (await browser.newContext()).newPage();';
  const page = await (await browser.newContext()).newPage();
  step = 'await page.goto(`http://127.0.0.1:${server.address().port}/`';
  await page.goto(origin);
  step = 'await page.waitForFunction(() => window.joinRoom);';
  await page.waitForFunction(() => window.joinRoom);
  step = "const id = await page.evaluate((t) => window.joinRoom(t, 'ca";
  const id = await page.evaluate((t) => window.joinRoom(t, 'carol'), conn.token);
  assert(id === conn.connectionId, 'joined as the created connection');
  step = "await until('publisher visible', async () => { await session";
  await until('publisher visible', async () => { await session.fetch(); return session.activeConnections[0]?.publishers?.length === 1; });
  const active = session.activeConnections[0];
  assert(active.status === 'active' && active.platform && active.clientData.includes('carol'), 'active connection fields');
  const streamId = active.publishers[0].streamId;
  assert(streamId.startsWith('str_CAM_') && active.publishers[0].hasVideo, 'publisher fields');
  step = 'const changed = await ov.fetch();';
  const changed = await ov.fetch();
  assert(ov.activeSessions.some((s) => s.sessionId === 'node-client'), `fetch lists the session (changed ${changed})`);
  // The node-client's stats fetch (GET /sessions?webRtcStats=true) dereferences every
  // publisher's extended fields: they are there, with the engine's own statistics.
  step = 'await ov.fetchWebRtc();';
  await until('engine stats for the publisher', async () => {
    await ov.fetchWebRtc();
    const s = ov.activeSessions.find((x) => x.sessionId === 'node-client');
    const kms = s?.activeConnections[0]?.publishers[0]?.webRtc?.kms;
    const inbound = Object.values(kms?.serverStats || {}).filter((x) => x.type === 'inboundrtp');
    return kms && kms.webrtcEndpointName === streamId && kms.localSdp?.startsWith('v=0')
      && kms.remoteSdp?.startsWith('v=0') && kms.remoteCandidate?.startsWith('candidate:')
      && inbound.some((x) => x.packetsReceived > 0);
  });
  step = 'await session.forceUnpublish(streamId);';
  await session.forceUnpublish(streamId);
  step = 'await session.fetch();';
  await session.fetch();
  assert(session.activeConnections[0].publishers.length === 0, 'force-unpublished');
  step = 'const token = await session.generateToken({ role: OpenViduRo';
  const token = await session.generateToken({ role: OpenViduRole.SUBSCRIBER });
  assert(token.includes('tok_'), 'deprecated token');
  step = 'await session.forceDisconnect(active.connectionId);';
  await session.forceDisconnect(active.connectionId);
  step = "await until('evicted client', () => page.evaluate(() => wind";
  await until('evicted client', () => page.evaluate(() => window.log.some((l) => l.startsWith('sessionDisconnected:forceDisconnectByServer'))));
  // The last participant left: OpenVidu destroys the session, so fetching it fails.
  step = 'fetch after last participant left';
  let fetched = true;
  try { await session.fetch(); } catch (e) { fetched = false; }
  assert(!fetched, 'session destroyed after its last participant left');
  // Re-created with the same id, joined, then closed by the application.
  step = 'close with a participant';
  const s2 = await ov.createSession({ customSessionId: 'node-client' });
  const c2 = await s2.createConnection({});
  const page2 = await (await browser.newContext()).newPage();
  await page2.goto(origin);
  await page2.waitForFunction(() => window.joinRoom);
  await page2.evaluate((t) => window.joinRoom(t, 'dave'), c2.token);
  await s2.close();
  await until('closed client', () => page2.evaluate(() => window.log.some((l) => l === 'sessionDisconnected:sessionClosedByServer')));
  await ov.fetch();
  assert(!ov.activeSessions.some((s) => s.sessionId === 'node-client'), 'closed session not listed');
  step = 'engines empty';
  const health = await (await fetch(`${SIGNALING}/health`, { headers: AUTH })).json();
  for (const e of health.engines) {
    const k = await kurento(engineUri(e.uri));
    const n = (await (await k.getServerManager()).getPipelines()).length;
    k.close();
    assert(n === 0, `engine ${e.uri} still holds ${n} pipelines`);
  }
  console.log(JSON.stringify({ result: 'stats', streamId, connectionId: active.connectionId }));
} catch (e) {
  failed = `${step}: ${String(e && e.stack || e)}`;
} finally {
  await browser.close();
  server.close();
}
finish(failed);
