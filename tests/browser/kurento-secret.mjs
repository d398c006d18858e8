// The unchanged kurento-client 7.3.0 (Node) reaches an engine that requires a secret, given as
// the URI's user-info; without it the engine refuses. Prints one JSON line for the Rust test.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kurento = require('kurento-client');
const [withSecret, without] = process.argv.slice(2);

function connect(uri) {
  return new Promise((resolve, reject) => {
    kurento(uri, { failAfter: 1, connectionTimeout: 3000 }, (err, client) => (err ? reject(err) : resolve(client)));
  });
}

const out = {};
// kurento-client's transport reports a refused upgrade as an unhandled 'error' event.
process.on('uncaughtException', (e) => {
  out.withoutSecret = /401/.test(String(e && e.message)) ? 'refused' : `error: ${e && e.message}`;
  console.log(JSON.stringify(out));
  process.exit(0);
});
try {
  const client = await connect(withSecret);
  const manager = await client.getServerManager();
  const info = await manager.getInfo();
  const pipeline = await client.create('MediaPipeline');
  const endpoint = await pipeline.create('WebRtcEndpoint');
  out.version = info.version;
  out.endpoint = endpoint.id;
  await pipeline.release();
  out.pipelinesAfter = (await manager.getPipelines()).length;
  client.close();
} catch (e) {
  out.error = String(e && e.message || e);
}
try {
  const client = await Promise.race([
    connect(without),
    new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 5000)),
  ]);
  await client.getServerManager();
  out.withoutSecret = 'connected';
  client.close();
} catch (e) {
  out.withoutSecret = 'refused';
}
console.log(JSON.stringify(out));
process.exit(0);
