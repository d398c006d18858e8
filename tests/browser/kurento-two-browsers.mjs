// A real Chromium (fake camera) publishes into the engine through the unchanged kurento-client
// 7.3.0, and a second Chromium page receives it through a PassThrough. Passes when the
// subscriber has decoded video frames. Must run inside a network namespace with only `lo`.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, FLAGS, serve, sleep, finish } from './common.mjs';

const require = createRequire(import.meta.url);
const kurento = require('kurento-client');
const here = path.dirname(fileURLToPath(import.meta.url));
const ENGINE = process.env.ENGINE_URL || 'ws://127.0.0.1:8888/kurento';

const { server, origin } = await serve({ '/': [path.join(here, 'page.html'), 'text/html'] });

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let failed = null;
try {
  const client = await kurento(ENGINE);
  const pipeline = await client.create('MediaPipeline');
  const pubEp = await pipeline.create('WebRtcEndpoint');
  const hub = await pipeline.create('PassThrough');
  const subEp = await pipeline.create('WebRtcEndpoint');

  // Wires one page to one endpoint the way kurento-client tutorials do.
  async function wire(p, ep, role) {
    ep.on('IceCandidateFound', (ev) => p.evaluate((c) => window.addCandidate(c), {
      candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex,
    }).catch(() => {}));
    const offer = await p.evaluate((r) => window[r](), role);
    const answer = await ep.processOffer(offer);
    await p.evaluate((a) => window.setAnswer(a), answer);
    await ep.gatherCandidates();
    const pump = setInterval(async () => {
      const cs = await p.evaluate(() => window.takeCandidates()).catch(() => []);
      for (const c of cs) await ep.addIceCandidate(kurento.getComplexType('IceCandidate')(c)).catch(() => {});
    }, 50);
    return () => clearInterval(pump);
  }

  const pubPage = await (await browser.newContext()).newPage();
  const subPage = await (await browser.newContext()).newPage();
  await pubPage.goto(origin);
  await subPage.goto(origin);
  const stopPub = await wire(pubPage, pubEp, 'publish');
  await pubEp.connect(hub);
  await hub.connect(subEp);
  const stopSub = await wire(subPage, subEp, 'subscribe');

  const started = Date.now();
  let inbound = { framesDecoded: 0 };
  while (Date.now() - started < 20000) {
    inbound = await subPage.evaluate(() => window.inbound());
    if (inbound.framesDecoded > 10 && inbound.audioPackets > 10) break;
    await sleep(100);
  }
  const outbound = await pubPage.evaluate(() => window.outbound());
  console.log(JSON.stringify({ result: 'stats', ms: Date.now() - started, inbound, outbound }));
  // The receive-only subscriber is on the engine's direct send path (Chromium's SRTP profile:
  // AES_CM_128_HMAC_SHA1_80), and what it decoded came that way.
  const health = await (await fetch(ENGINE.replace(/^ws/, 'http').replace(/\/kurento$/, '/health'))).json();
  console.log(JSON.stringify({ result: 'engine', directLegs: health.directLegs, legTransports: health.legTransports, srtpProfiles: health.srtpProfiles }));
  if (!(inbound.framesDecoded > 0)) failed = 'subscriber decoded no frames';
  else if (!(inbound.audioPackets > 0)) failed = 'subscriber received no audio';
  else if (health.directLegs !== 1) failed = `expected the subscriber on the direct path: ${JSON.stringify(health)}`;
  // Chromium's receive-only offer answered by the engine itself, the leg on rtc-ice + rtc-dtls.
  else if (health.legTransports !== 1) failed = `expected the subscriber without a peer connection: ${JSON.stringify(health)}`;
  stopPub(); stopSub();
  await pipeline.release();
  const left = await (await client.getServerManager()).getPipelines();
  if (left.length !== 0) failed = failed || `engine still holds ${left.length} pipelines`;
  client.close();
} catch (e) {
  failed = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
finish(failed);
