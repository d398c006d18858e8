// What every browser driver shares: Chromium's flags for a lo-only namespace (fake camera,
// loopback candidates), a tiny static server for the test pages, and waiting helpers.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Serves `files` ({'/path': [file, contentType]}) on 127.0.0.1; resolves to {server, origin}. */
export async function serve(files) {
  const server = http.createServer((req, res) => {
    const f = files[req.url.split('?')[0]];
    if (!f) { res.statusCode = 404; return res.end(); }
    res.setHeader('content-type', f[1]);
    res.end(fs.readFileSync(f[0]));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}/` };
}

/** The participant page (PAGE: ov-page.html, the unchanged openvidu-browser bundle, by default;
 *  ours-page.html, rtcpool's static/rtcpool.js) and the scripts it loads, for `serve`. */
export function pageFiles() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const page = process.env.PAGE || 'ov-page.html';
  return {
    '/': [path.join(here, page), 'text/html'],
    '/openvidu-browser.js': [path.join(here, 'node_modules/openvidu-browser/static/js/openvidu-browser-2.32.2.js'), 'text/javascript'],
    '/rtcpool.js': [path.join(here, '../../static/rtcpool.js'), 'text/javascript'],
  };
}

/** Polls `f` until it returns something truthy (or throws after `ms`). */
export async function until(what, f, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// Ends a driver: FAIL with the reason (exit 1) or PASS (exit 0). Exiting explicitly also stops
// clients that keep timers alive after close() (kurento-client's heartbeat).
export function finish(failed) {
  if (failed) { console.error('FAIL:', failed); process.exit(1); }
  console.log('PASS');
  process.exit(0);
}

/** Signaling's REST credentials (the test default secret), for `/health` and the API. */
export const AUTH = { authorization: `Basic ${Buffer.from('OPENVIDUAPP:MY_SECRET').toString('base64')}` };

/** An engine URI as signaling shows it (no secret), with the local engines' test secret. */
export function engineUri(uri) {
  const secret = process.env.LOCAL_ENGINES_SECRET;
  return secret ? uri.replace('://', `://rtcpool:${encodeURIComponent(secret)}@`) : uri;
}

/** How many pipelines every engine of signaling's pool holds (asked with kurento-client). */
export async function enginePipelines(signaling) {
  const kurento = createRequire(import.meta.url)('kurento-client');
  const health = await (await fetch(`${signaling}/health`, { headers: AUTH })).json();
  let pipelines = 0;
  for (const e of health.engines) {
    const k = await kurento(engineUri(e.uri));
    pipelines += (await (await k.getServerManager()).getPipelines()).length;
    k.close();
  }
  return pipelines;
}
