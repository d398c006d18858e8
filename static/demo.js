// The demo room: join with a name, a camera grid, mute/unmute, chat, leave. Tokens come from the
// demo token endpoint of rtcpool signaling (an application server's job in production).
import { Room } from './rtcpool.js';

const $ = (id) => document.getElementById(id);
let room = null;
let local = null;

function tile(id, name, stream, muted) {
  let el = document.querySelector(`[data-id="${id}"]`);
  if (!el) {
    el = document.createElement('figure');
    el.dataset.id = id;
    el.innerHTML = '<video autoplay playsinline></video><figcaption></figcaption>';
    $('grid').append(el);
  }
  el.querySelector('figcaption').textContent = name;
  const v = el.querySelector('video');
  v.muted = muted;
  if (stream) v.srcObject = stream;
  return el;
}

function say(who, text) {
  const li = document.createElement('li');
  const b = document.createElement('b');
  b.textContent = `${who}: `;
  li.append(b, document.createTextNode(text));
  $('messages').append(li);
  li.scrollIntoView();
}

$('join').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('error').textContent = '';
  const name = $('name').value.trim();
  const roomName = $('room').value.trim();
  try {
    const r = await fetch('demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ room: roomName, name }) });
    if (!r.ok) {
      const why = await r.json().then((b) => b.message, () => '');
      throw new Error(why || `token request failed (${r.status})`);
    }
    const { token } = await r.json();
    room = await Room.join(token, { name });
    const names = room.participants;
    room.addEventListener('participant-joined', (ev) => say('•', `${ev.detail.name} joined`));
    room.addEventListener('participant-left', (ev) => { document.querySelector(`[data-id="${ev.detail.connectionId}"]`)?.remove(); say('•', `${ev.detail.name || 'someone'} left`); });
    room.addEventListener('stream-added', (ev) => tile(ev.detail.connectionId, names.get(ev.detail.connectionId) || '', ev.detail.stream, false));
    room.addEventListener('stream-removed', (ev) => document.querySelector(`[data-id="${ev.detail.connectionId}"]`)?.remove());
    room.addEventListener('signal', (ev) => { if (ev.detail.type === 'chat') say(names.get(ev.detail.from) || (ev.detail.from === room.connectionId ? 'me' : 'server'), ev.detail.data); });
    room.addEventListener('disconnected', (ev) => { if (ev.detail.reason !== 'disconnect') $('error').textContent = `Disconnected: ${ev.detail.reason}`; reset(); });
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    tile(room.connectionId, `${name} (me)`, local, true);
    if (room.role !== 'SUBSCRIBER') await room.publish(local);
    $('join').hidden = true;
    $('call').hidden = false;
    $('roomname').textContent = `Room ${roomName}`;
  } catch (err) {
    $('error').textContent = err.message;
    reset();
  }
});

function toggle(button, kind, on, off) {
  const enabled = button.getAttribute('aria-pressed') !== 'true';
  button.setAttribute('aria-pressed', String(enabled));
  button.textContent = enabled ? on : off;
  room?.setEnabled(kind, enabled);
}
$('mic').addEventListener('click', (e) => toggle(e.target, 'audio', 'Mute', 'Unmute'));
$('cam').addEventListener('click', (e) => toggle(e.target, 'video', 'Camera off', 'Camera on'));
$('leave').addEventListener('click', async () => { await room?.leave(); reset(); });
$('say').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !room) return;
  $('text').value = '';
  await room.signal(text, 'chat').catch((err) => say('error', err.message));
});

function reset() {
  local?.getTracks().forEach((t) => t.stop());
  local = null;
  room = null;
  $('grid').replaceChildren();
  $('call').hidden = true;
  $('join').hidden = false;
}
