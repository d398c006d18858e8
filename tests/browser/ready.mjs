// Waits until signaling reports every engine admitted (connected with fresh health data).
import { AUTH } from './common.mjs';

export async function waitReady(signaling, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    try {
      const h = await (await fetch(`${signaling}/health`, { headers: AUTH })).json();
      if (h.engines.length > 0 && h.engines.every((e) => e.admitted)) return h;
    } catch (_) { /* not up yet */ }
    if (Date.now() - t0 > ms) throw new Error('signaling engines not admitted in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
