// rtcpool browser client: a dependency-free ES module speaking the OpenVidu 2.32 browser
// protocol (JSON-RPC 2.0 over WebSocket at /openvidu) to rtcpool signaling.
//
//   import { Room } from '/rtcpool.js';
//   const room = await Room.join(token, { name: 'Ann' });
//   room.addEventListener('stream-added', (e) => show(e.detail.connectionId, e.detail.stream));
//   await room.publish(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
//
// Events (CustomEvent, data in `detail`): participant-joined {connectionId, name},
// participant-left {connectionId, name, reason}, stream-added {connectionId, streamId, stream},
// stream-removed {connectionId, reason}, signal {from, type, data}, disconnected {reason},
// reconnecting {}, reconnected {}.
//
// It recovers as openvidu-browser does: a socket that drops (or stops answering pings) is
// reopened and the participant taken back (`connect {sessionId, reconnect: true}`, every 3 s for
// up to two minutes); then, and whenever a stream's ICE fails (or stays disconnected for 4 s),
// that stream is renegotiated (`reconnectStream`) on a fresh peer connection: the published
// MediaStream and the received ones (`stream-added`'s `stream`) stay the same objects.

const PING_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
const RECONNECT_EVERY_MS = 3000;
const RECONNECT_FOR_MS = 120000;
const ICE_GRACE_MS = 4000;
// Signaling holds a subscriber's `reconnectStream` until its publisher is back (≤ 15 s).
const RECONNECT_STREAM_TIMEOUT_MS = 20000;

export class Room extends EventTarget {
  static async join(token, { name = '', iceServers } = {}) {
    const url = new URL(token);
    const sessionId = url.searchParams.get('sessionId');
    if (!/^wss?:$/.test(url.protocol) || !sessionId) throw new Error('Token not valid');
    const room = new Room(`${url.protocol}//${url.host}/openvidu?sessionId=${encodeURIComponent(sessionId)}`);
    await room.#open();
    const r = await room.#call('joinRoom', {
      token, session: sessionId, platform: navigator.userAgent, metadata: JSON.stringify({ clientData: name }),
      secret: '', sdkVersion: '2.32.2', recorder: false, stt: false,
    });
    room.connectionId = r.id;
    room.sessionId = r.session;
    room.#rpc = r.sessionId;
    room.role = r.role;
    room.#iceServers = iceServers || (r.customIceServers || []).map((s) => ({ urls: [s.url], username: s.username, credential: s.credential }));
    for (const p of r.value) {
      room.participants.set(p.id, clientName(p.metadata));
      room.#emit('participant-joined', { connectionId: p.id, name: clientName(p.metadata) });
      for (const s of p.streams || []) room.#subscribe(p.id, s.id);
    }
    return room;
  }

  connectionId = null;
  sessionId = null;
  role = null;
  /** connectionId → display name of everyone else in the room. */
  participants = new Map();
  #url; #ws; #nextId = 0; #pending = new Map(); #ping = null;
  #rpc = null;                  // the private rpc session id (`connect` names it on reconnection)
  #reconnecting = false; #left = false; #closed = false;
  #iceServers = [];
  #publisher = null;            // {pc, streamId, stream, queued: []}
  #subscribers = new Map();     // publisher connectionId → {pc, streamId, queued: []}

  constructor(url) { super(); this.#url = url; }

  async publish(stream) {
    if (this.#publisher) throw new Error('already publishing');
    const pub = { pc: null, stream, streamId: null, queued: [] };
    this.#publisher = pub;
    const pc = this.#publisherPc(pub);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const v = stream.getVideoTracks()[0];
    const settings = v ? v.getSettings() : {};
    const r = await this.#call('publishVideo', {
      sdpOffer: offer.sdp, doLoopback: false,
      hasAudio: stream.getAudioTracks().length > 0, hasVideo: !!v,
      audioActive: stream.getAudioTracks().some((t) => t.enabled), videoActive: !!v && v.enabled,
      typeOfVideo: v ? 'CAMERA' : undefined, frameRate: settings.frameRate || -1,
      videoDimensions: v ? JSON.stringify({ width: settings.width || 0, height: settings.height || 0 }) : undefined,
    });
    pub.streamId = r.id;
    await pc.setRemoteDescription({ type: 'answer', sdp: r.sdpAnswer });
    for (const c of pub.queued.splice(0)) await pc.addIceCandidate(c).catch(() => {});
    return r.id;
  }

  /** Mutes or unmutes the published audio (`kind` 'audio') or video ('video'). */
  async setEnabled(kind, enabled) {
    const pub = this.#publisher;
    if (!pub) return;
    for (const t of kind === 'audio' ? pub.stream.getAudioTracks() : pub.stream.getVideoTracks()) t.enabled = enabled;
    await this.#call('streamPropertyChanged', {
      streamId: pub.streamId, property: kind === 'audio' ? 'audioActive' : 'videoActive', newValue: enabled,
      reason: kind === 'audio' ? 'publishAudio' : 'publishVideo',
    });
  }

  /** A signal to everyone (`to` empty) or to the given connection ids. */
  signal(data, type = 'chat', to = []) {
    return this.#call('sendMessage', { message: JSON.stringify({ to, data: String(data), type: `signal:${type}` }) });
  }

  async leave() {
    this.#left = true;
    try { await this.#call('leaveRoom', {}); } catch (_) { /* leaving anyway */ }
    this.#close('disconnect');
  }

  /** Per subscription: its current peer connection, frames it decoded, ICE state. */
  async subscriptions() {
    const out = [];
    for (const [connectionId, s] of this.#subscribers) {
      let frames = 0;
      (await s.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0; });
      out.push({ connectionId, pc: s.pc, frames, ice: s.pc.iceConnectionState });
    }
    return out;
  }

  /** Inbound video frames decoded so far, over every subscription (for tests and stats). */
  async framesDecoded() {
    let n = 0;
    for (const s of this.#subscribers.values()) {
      (await s.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0; });
    }
    return n;
  }

  // ---- protocol ---------------------------------------------------------------------------

  #open(url = this.#url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.#ws = ws;
      ws.onopen = () => {
        this.#call('ping', { interval: PING_MS }).catch(() => {});
        this.#ping = setInterval(() => this.#call('ping').catch(() => this.#lost(ws)), PING_MS);
        resolve();
      };
      ws.onerror = () => reject(new Error('cannot reach signaling'));
      ws.onclose = () => this.#lost(ws);
      ws.onmessage = (e) => this.#onMessage(JSON.parse(e.data));
    });
  }

  /** The socket `ws` dropped (or stopped answering): reconnect, unless we are leaving. */
  #lost(ws) {
    if (ws !== this.#ws || this.#left) return;
    clearInterval(this.#ping);
    ws.onclose = null;
    ws.close();
    this.#ws = null;
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(new Error('disconnected')); }
    this.#pending.clear();
    if (!this.#rpc || this.#reconnecting) return this.#close('networkDisconnect');
    this.#reconnect();
  }

  async #reconnect() {
    this.#reconnecting = true;
    this.#emit('reconnecting', {});
    const until = Date.now() + RECONNECT_FOR_MS;
    for (let first = true; Date.now() < until && !this.#left; first = false) {
      if (!first) await new Promise((r) => setTimeout(r, RECONNECT_EVERY_MS));
      try {
        await this.#open(`${this.#url}&reconnect=true`);
      } catch (_) {
        continue;                                   // signaling not reachable yet
      }
      try {
        await this.#call('connect', { sessionId: this.#rpc, reconnect: true });
      } catch (e) {
        this.#reconnecting = false;
        // 40007: our place is gone (the reconnection window passed, or the session closed).
        return this.#close(e.code === 40007 ? 'networkDisconnect' : 'reconnectionFailed');
      }
      this.#reconnecting = false;
      this.#emit('reconnected', {});
      this.#recoverStreams();
      return;
    }
    this.#reconnecting = false;
    this.#close('networkDisconnect');
  }

  /** After a reconnection: every stream whose ICE is not up is renegotiated. */
  #recoverStreams() {
    const down = (pc) => !['connected', 'completed'].includes(pc.iceConnectionState);
    if (this.#publisher && this.#publisher.streamId && down(this.#publisher.pc)) this.#reconnectPublisher();
    for (const [id, s] of this.#subscribers) if (down(s.pc)) this.#reconnectSubscriber(id, s);
  }

  /** Renegotiates a stream whose ICE failed or stayed disconnected (engine lost, network change). */
  #watchIce(pc, reconnect) {
    let timer = null;
    pc.oniceconnectionstatechange = () => {
      clearTimeout(timer);
      const st = pc.iceConnectionState;
      const go = () => { if (this.#ws && this.#ws.readyState === WebSocket.OPEN && !this.#reconnecting) reconnect(); };
      if (st === 'failed') go();
      else if (st === 'disconnected') timer = setTimeout(go, ICE_GRACE_MS);
    };
  }

  #publisherPc(pub) {
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers });
    for (const t of pub.stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [pub.stream] });
    pc.onicecandidate = (e) => this.#sendCandidate(this.connectionId, e.candidate);
    this.#watchIce(pc, () => { if (this.#publisher === pub && pub.pc === pc) this.#reconnectPublisher(); });
    pub.pc = pc;
    pub.queued = [];
    return pc;
  }

  #reconnectPublisher() {
    const pub = this.#publisher;
    if (!pub) return;
    this.#renegotiate(pub, () => this.#publisherPc(pub), (sdp) => ({ stream: pub.streamId, sdpString: sdp }),
      () => this.#publisher === pub, () => this.#reconnectPublisher());
  }

  /** `reconnectStream` of `target` (a publication or a subscription) on a fresh peer connection
   *  from `makePc`; the old one is closed once the new one has its answer. A failure (signaling
   *  holds a subscriber's request until its publisher is back, ≤ 15 s) is retried every 3 s while
   *  `current()` and the socket is up. */
  async #renegotiate(target, makePc, params, current, again) {
    if (target.renegotiating) return;
    target.renegotiating = true;
    const old = target.pc;
    try {
      const pc = makePc();
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const r = await this.#call('reconnectStream', params(offer.sdp), RECONNECT_STREAM_TIMEOUT_MS);
      await pc.setRemoteDescription({ type: 'answer', sdp: r.sdpAnswer });
      for (const c of target.queued.splice(0)) await pc.addIceCandidate(c).catch(() => {});
      old.close();
      target.renegotiating = false;
    } catch (_) {
      target.renegotiating = false;
      target.pc.close();
      setTimeout(() => { if (current() && this.#ws) again(); }, RECONNECT_EVERY_MS);
    }
  }


  #call(method, params, timeoutMs = REQUEST_TIMEOUT_MS) {
    const id = this.#nextId++;
    const msg = { jsonrpc: '2.0', method, id };
    if (params !== undefined) msg.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`${method} timed out`)); }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) { clearTimeout(timer); this.#pending.delete(id); return reject(new Error('not connected')); }
      this.#ws.send(JSON.stringify(msg));
    });
  }

  #onMessage(m) {
    if (m.id !== undefined && m.id !== null && !m.method) {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else p.resolve(m.result);
      return;
    }
    const p = m.params || {};
    switch (m.method) {
      case 'participantJoined':
        this.participants.set(p.id, clientName(p.metadata));
        return this.#emit('participant-joined', { connectionId: p.id, name: clientName(p.metadata) });
      case 'participantPublished': return (p.streams || []).forEach((s) => this.#subscribe(p.id, s.id));
      case 'participantUnpublished': return this.#dropSubscriber(p.connectionId, p.reason);
      case 'participantLeft': {
        this.#dropSubscriber(p.connectionId, p.reason);
        const name = this.participants.get(p.connectionId);
        this.participants.delete(p.connectionId);
        return this.#emit('participant-left', { connectionId: p.connectionId, name, reason: p.reason });
      }
      case 'participantEvicted': if (p.connectionId === this.connectionId) this.#close(p.reason); return;
      case 'sendMessage': return this.#emit('signal', { from: p.from, type: (p.type || '').replace(/^signal:/, ''), data: p.data });
      case 'iceCandidate': return this.#remoteCandidate(p);
      default: return;
    }
  }

  /** A receiving peer connection for `sub`; its tracks replace the old ones in `sub.stream`. */
  #subscriberPc(connectionId, sub) {
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      for (const t of sub.stream.getTracks()) if (t.kind === e.track.kind) sub.stream.removeTrack(t);
      sub.stream.addTrack(e.track);
      if (!sub.announced) {
        sub.announced = true;
        this.#emit('stream-added', { connectionId, streamId: sub.streamId, stream: sub.stream });
      }
    };
    pc.onicecandidate = (e) => this.#sendCandidate(connectionId, e.candidate);
    this.#watchIce(pc, () => { if (this.#subscribers.get(connectionId) === sub && sub.pc === pc) this.#reconnectSubscriber(connectionId, sub); });
    sub.pc = pc;
    sub.queued = [];
    return pc;
  }

  #reconnectSubscriber(connectionId, sub) {
    this.#renegotiate(sub, () => this.#subscriberPc(connectionId, sub), (sdp) => ({ stream: sub.streamId, sdpOffer: sdp }),
      () => this.#subscribers.get(connectionId) === sub, () => this.#reconnectSubscriber(connectionId, sub));
  }


  async #subscribe(connectionId, streamId) {
    if (this.#subscribers.has(connectionId)) return;
    const sub = { pc: null, streamId, queued: [], stream: new MediaStream(), announced: false };
    this.#subscribers.set(connectionId, sub);
    const pc = this.#subscriberPc(connectionId, sub);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    try {
      const r = await this.#call('receiveVideoFrom', { sender: streamId, sdpOffer: offer.sdp });
      await pc.setRemoteDescription({ type: 'answer', sdp: r.sdpAnswer });
      for (const c of sub.queued.splice(0)) await pc.addIceCandidate(c).catch(() => {});
    } catch (e) {
      this.#subscribers.delete(connectionId);
      pc.close();
    }
  }

  #dropSubscriber(connectionId, reason) {
    const s = this.#subscribers.get(connectionId);
    if (!s) return;
    this.#subscribers.delete(connectionId);
    s.pc.close();
    this.#emit('stream-removed', { connectionId, reason });
  }

  #sendCandidate(endpointName, c) {
    if (!c || !c.candidate) return;
    this.#call('onIceCandidate', { endpointName, candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex }).catch(() => {});
  }

  async #remoteCandidate(p) {
    const target = p.senderConnectionId === this.connectionId ? this.#publisher : this.#subscribers.get(p.senderConnectionId);
    if (!target) return;
    const c = { candidate: p.candidate, sdpMid: p.sdpMid, sdpMLineIndex: p.sdpMLineIndex };
    if (target.pc.remoteDescription) await target.pc.addIceCandidate(c).catch(() => {});
    else target.queued.push(c);
  }

  #close(reason) {
    if (this.#closed) return;
    this.#closed = true;
    const ws = this.#ws;
    this.#ws = null;
    clearInterval(this.#ping);
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(new Error('disconnected')); }
    this.#pending.clear();
    for (const id of [...this.#subscribers.keys()]) this.#dropSubscriber(id, reason);
    if (this.#publisher) { this.#publisher.pc.close(); this.#publisher = null; }
    if (ws) { ws.onclose = null; ws.close(); }
    this.#emit('disconnected', { reason });
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}

function clientName(metadata) {
  const first = String(metadata || '').split('%/%')[0];
  try { return JSON.parse(first).clientData ?? first; } catch (_) { return first; }
}
