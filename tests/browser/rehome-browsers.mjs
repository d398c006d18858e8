// Re-homing with real browsers: two participants (PAGE: the unchanged openvidu-browser 2.32.2, or
// rtcpool's own static/rtcpool.js) on one engine; the engine is killed (SIGKILL); the client
// reconnects its streams (reconnectStream) and both decode each other again on the other engine. Prints the time from kill to media flowing
// again for both. Runs inside a lo-only namespace (engines are signaling's local ones).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { CHROMIUM, FLAGS, serve, sleep, until, finish, pageFiles } from './common.mjs';
import { waitReady } from './ready.mjs';

const require = createRequire(import.meta.url);
const { OpenVidu } = require('openvidu-node-client');
const SIGNALING = process.env.SIGNALING_URL || 'http://127.0.0.1:4443';
const AUTH = 'Basic ' + Buffer.from('OPENVIDUAPP:MY_SECRET').toString('base64');
const { server, origin } = await serve(pageFiles());

async function api(p) { return (await fetch(`${SIGNALING}/openvidu/api/${p}`, { headers: { authorization: AUTH } })).json(); }

/** The pid of the media-engine listening on `port` in this network namespace. */
function enginePid(port) {
  const myNs = fs.readlinkSync('/proc/self/ns/net');
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('media-engine')) && cmd.includes(`127.0.0.1:${port}`) && fs.readlinkSync(`/proc/${pid}/ns/net`) === myNs) return Number(pid);
    } catch (_) { /* process gone */ }
  }
  return null;
}

await waitReady(SIGNALING);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
try {
  const ov = new OpenVidu(SIGNALING, 'MY_SECRET');
  const session = await ov.createSession({ customSessionId: 'rehome' });
  const pages = [];
  for (const name of ['ann', 'bob']) {
    const c = await session.createConnection({});
    const p = await (await browser.newContext()).newPage();
    await p.goto(origin);
    await p.waitForFunction(() => window.joinRoom);
    await p.evaluate(([t, n]) => window.joinRoom(t, n), [c.token, name]);
    pages.push(p);
  }
  const decoding = async (p) => (await p.evaluate(() => window.flow())).some((f) => f.frames > 5);
  for (const p of pages) { const t0 = Date.now(); while (!(await decoding(p))) { if (Date.now() - t0 > 20000) throw new Error('no initial media'); await sleep(100); } }
  const before = await Promise.all(pages.map((p) => p.evaluate(() => window.flow())));
  const home = (await api('sessions/rehome')).mediaNode.id;
  const node = (await api('media-nodes')).content.find((n) => n.id === home);
  const port = Number(node.uri.split(':')[2].split('/')[0]);
  const pid = enginePid(port);
  if (!pid) throw new Error(`no engine process on port ${port}`);
  let killedAt = Date.now();
  if (process.env.VERBOSE) for (const [i, p] of pages.entries()) p.on('console', (m) => console.log(`+${Date.now() - killedAt}ms page${i}:`, m.type(), m.text().slice(0, 160)));
  killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  // Media flows again for a page when a subscription runs on a new connection that decodes.
  const recovered = await Promise.all(pages.map(async (p, i) => {
    const old = new Set(before[i].map((f) => f.pc));
    for (;;) {
      const now = await p.evaluate(() => window.flow());
      if (now.some((f) => !old.has(f.pc) && f.frames > 0)) return Date.now() - killedAt;
      if (Date.now() - killedAt > 40000) throw new Error(`page ${i} did not recover: ${JSON.stringify(now)}`);
      await sleep(100);
    }
  }));
  const after = await api('sessions/rehome');
  const logs = await Promise.all(pages.map((p) => p.evaluate(() => window.log)));
  console.log(JSON.stringify({ result: 'stats', killedEngine: home, newEngine: after.mediaNode.id, recoveredMs: recovered, worstMs: Math.max(...recovered), participants: after.connections.numberOfElements, logs }));
  if (after.mediaNode.id === home) failed = 'session was not moved';
  else if (after.connections.numberOfElements !== 2) failed = 'a participant lost its place';
  else if (logs.some((l) => l.some((e) => e.startsWith('sessionDisconnected')))) failed = 'a participant was disconnected';
  for (const p of pages) await p.evaluate(() => window.leave());
} catch (e) {
  failed = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
finish(failed);
