// A signaling node dies under a call: three openvidu-browser 2.32.2 participants join one
// session through nginx in front of three signaling nodes on Redis (netns-cluster.sh); the node
// that owns the session is killed (SIGKILL). The unchanged client reopens its socket through
// nginx and sends `connect {reconnect:true}`; a surviving node adopts the session. Checks that
// every socket is back within 5 s, that no participant's decoded video froze for more than 1 s,
// that no stream was renegotiated, and that the session is fully usable afterwards. Prints the
// times.
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { AUTH, CHROMIUM, FLAGS, serve, sleep, until, finish, pageFiles } from './common.mjs';
import { waitReady } from './ready.mjs';

const require = createRequire(import.meta.url);
const { OpenVidu } = require('openvidu-node-client');
const LB = 'http://127.0.0.1:8080';
const NODES = [4443, 4444, 4445].map((p) => `http://127.0.0.1:${p}`);
const PIDS = (process.env.SIGNALING_PIDS || '').split(',').map(Number);
const { server, origin } = await serve(pageFiles());
const health = async (n) => (await fetch(`${n}/health`, { headers: AUTH })).json();

for (const n of NODES) {
  await waitReady(n);
  await until('the cluster to form', async () => ((await health(n)).cluster?.nodes || []).length === 3);
}
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
try {
  const ov = new OpenVidu(LB, 'MY_SECRET');
  const session = await ov.createSession({ customSessionId: 'cluster' });
  const pages = [];
  for (const name of ['ann', 'bob', 'cid']) {
    const c = await session.createConnection({});
    if (!c.token.startsWith('ws://127.0.0.1:8080')) throw new Error(`token not through the load balancer: ${c.token}`);
    const p = await (await browser.newContext()).newPage();
    await p.goto(origin);
    await p.waitForFunction(() => window.joinRoom);
    await p.evaluate(([t, n]) => window.joinRoom(t, n), [c.token, name]);
    pages.push(p);
  }
  // Everyone decodes both others.
  await until('initial media', async () => {
    const f = await Promise.all(pages.map((p) => p.evaluate(() => window.flow())));
    return f.every((subs) => subs.length === 2 && subs.every((s) => s.frames > 5));
  }, 30000);
  const owner = (await Promise.all(NODES.map(health))).findIndex((h) => h.sessions > 0);
  if (owner < 0) throw new Error('no node owns the session');
  const before = await Promise.all(pages.map((p) => p.evaluate(() => window.flow())));

  // Decoded frames sampled every 100 ms per subscription: the longest time without a new frame.
  const last = new Map();
  let worstFreeze = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = Date.now();
      const flows = await Promise.all(pages.map((p) => p.evaluate(() => window.flow())));
      flows.forEach((subs, i) => subs.forEach((s) => {
        const key = `${i}/${s.pc}`;
        const prev = last.get(key);
        if (!prev || prev.frames !== s.frames) last.set(key, { frames: s.frames, at: now });
        else worstFreeze = Math.max(worstFreeze, now - prev.at);
      }));
      await sleep(100);
    }
  })();

  const killedAt = Date.now();
  process.kill(PIDS[owner], 'SIGKILL');
  const back = await Promise.all(pages.map(async (p, i) => {
    for (;;) {
      const log = await p.evaluate(() => window.log);
      if (log.includes('reconnected')) return Date.now() - killedAt;
      if (log.some((e) => e.startsWith('sessionDisconnected'))) throw new Error(`page ${i} was disconnected: ${log}`);
      if (Date.now() - killedAt > 20000) throw new Error(`page ${i} did not reconnect: ${log}`);
      await sleep(50);
    }
  }));
  await sleep(3000);
  sampling = false;
  await sampler;
  const after = await Promise.all(pages.map((p) => p.evaluate(() => window.flow())));
  const renegotiated = after.some((subs, i) => subs.some((s) => !before[i].some((b) => b.pc === s.pc)));
  const adopter = (await Promise.all(NODES.filter((_, i) => i !== owner).map(health))).findIndex((h) => h.sessions > 0);

  // Still fully usable: a signal reaches everyone, REST answers through nginx, a leave is seen.
  await pages[0].evaluate(() => window.signal('after'));
  for (const p of pages) await until('the signal', async () => (await p.evaluate(() => window.log)).includes('signal:after'));
  const rest = await (await fetch(`${LB}/openvidu/api/sessions/cluster`, { headers: AUTH })).json();
  await pages[2].evaluate(() => window.leave());
  for (const p of pages.slice(0, 2)) await until('the leave', async () => (await p.evaluate(() => window.log)).some((e) => e.startsWith('connectionDestroyed')));

  const stats = { result: 'stats', killedNode: owner, adopted: adopter >= 0, socketsBackMs: back, worstBackMs: Math.max(...back), worstFreezeMs: worstFreeze, renegotiated, participantsAfter: rest.connections?.numberOfElements };
  console.log(JSON.stringify(stats));
  if (Math.max(...back) > 5000) failed = `sockets back after ${Math.max(...back)} ms`;
  else if (worstFreeze > 1000) failed = `decoded video froze for ${worstFreeze} ms`;
  else if (renegotiated) failed = 'a stream was renegotiated';
  else if (adopter < 0) failed = 'no surviving node holds the session';
  else if (rest.connections?.numberOfElements !== 3) failed = `REST after failover: ${JSON.stringify(rest)}`;
  for (const p of pages.slice(0, 2)) await p.evaluate(() => window.leave());
} catch (e) {
  failed = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
finish(failed);
