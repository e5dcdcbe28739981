// Deepfake Guard demo page: one participant of a Janus VideoRoom (Janus's own janus.js, multistream API) that
// shows every other participant's video with a badge driven ONLY by guard messages that the project's verifier
// module (plugin-api/js/deepfake-guard.mjs, served as /deepfake-guard.mjs) accepted.
//
// Query parameters:
//   room     VideoRoom id (default 4321)            name    display name (default guest-XXXX)
//   pub=1|0  publish camera + microphone + data (default 1); Chromium's fake-capture flags feed it in tests
//   server   Janus WebSocket URL (default ws://<this page's host>:8188, i.e. ws://127.0.0.1:8188 in tests)
//   key      the guard's Ed25519 public key, base64 (pinned). Without it: trust on first use of the self-signed
//            hello from the one publisher whose display is "Deepfake Guard" (see `guard`), then keep that key
//   guard    display name of the guard (trust on first use, and no tile for it; default "Deepfake Guard")
//   forge=1  (a publisher) sends forged guard messages on its own data channel every second: an unsigned verdict,
//            one signed with a random Ed25519 key, a forged self-signed hello, and replays of real guard messages
//            (its hello, then a "clear" about herself)
// Rejection reasons: those of the verifier module (unsigned, bad-signature, replayed, ...) plus "relayed" (signed by
// the guard but sent by another participant's feed), and before any key is trusted: no-trusted-key,
// hello-not-from-guard, ambiguous-guard, bad-hello.
//   vcodec   force the publisher's video codec (vp8, h264, vp9, ...; the room must allow it)
//   video=0  (a publisher) publish no video: audio (and data) only, as a participant with the camera off does
//   media    publish this media file (URL, played in a loop) instead of the camera and microphone. A played file
//            keeps its audio and video in step under CPU load, as a camera does (the e2e publishers use it;
//            Chromium's fake camera falls behind its fake microphone for good after every stall)
//   debug=1  janus.js debug logging
// For a test driver: window.R (state and logs, see below), window.leave() (leave the room and stop).
import { GuardVerifier, splitSigned, verify, keyId, notJudgedText, TYPES } from "./deepfake-guard.mjs";

const q = new URLSearchParams(location.search);
const ROOM = parseInt(q.get("room") || "4321", 10);
const NAME = q.get("name") || "guest-" + Math.random().toString(16).slice(2, 6);
const PUBLISH = q.get("pub") !== "0";
const SERVER = q.get("server") || `ws://${location.hostname || "127.0.0.1"}:8188`;
const KEY = q.get("key") ? q.get("key").replace(/ /g, "+") : null; // a raw '+' in a query string reads as ' '
const GUARD_NAME = q.get("guard") || "Deepfake Guard";
const FORGE = q.get("forge") === "1";
const VCODEC = q.get("vcodec") || null;
const VIDEO = q.get("video") !== "0";
const MEDIA = q.get("media") || null;
const RETRY_MS = 1000; // reconnect period while Janus is away
const HEARTBEAT_STALE_MS = 10000;
const CAP = 5000; // bound on every log array

const R = (window.R = {
  name: NAME, room: ROOM, server: SERVER, publish: PUBLISH, forge: FORGE,
  myid: null, published: false, publishCount: 0, publishedStreams: null, errors: [],
  verified: [], rejected: [], feeds: {}, present: [], labels: {},
  firstFrameAt: null, lastFirstFrameAt: null, framesEncoded: 0, mediaSeconds: null, mediaWraps: 0,
  guardKey: KEY, guardKeyId: null, trust: KEY ? "pinned" : "tofu", tofuFrom: null,
  guardFeed: null, guardPresent: false, lastHeartbeatAt: null,
  states: {}, firstAlertAt: {}, resyncs: [], connects: [], connected: false, attempts: 0,
  forged: { unsigned: 0, signed: 0, hello: 0, replay: 0 }, inbound: {}, leftAt: null, log: [],
});
const push = (arr, x) => { arr.push(x); if (arr.length > CAP) arr.splice(0, arr.length - CAP); };
function log(...a) {
  const s = a.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" ");
  push(R.log, new Date().toISOString().slice(11, 23) + " " + s);
  console.log(`[guard-demo ${NAME}] ${s}`);
}
function err(s) { push(R.errors, String(s)); log("ERROR", String(s)); }

// ---------------------------------------------------------------- verification (never reimplemented here)
let verifier = null;
let keyProblem = null;
const verifierReady = (async () => {
  if (!globalThis.crypto || !crypto.subtle) {
    keyProblem = "WebCrypto unavailable: open this page over https or from localhost";
    err(keyProblem); return;
  }
  if (KEY) {
    try {
      verifier = await GuardVerifier.fromPublicKey(KEY);
      R.guardKeyId = await keyId(KEY);
    } catch (e) { keyProblem = "bad key= parameter: " + e.message; err(keyProblem); }
  }
})();

let chain = Promise.resolve();
function onData(data, label) {
  const t = Date.now();
  chain = chain.then(() => handleData(t, data, String(label))).catch((e) => err("verify: " + e));
}

async function handleData(t, data, label) {
  await verifierReady;
  R.labels[label] = (R.labels[label] || 0) + 1;
  let r;
  if (keyProblem) r = { ok: false, reason: "no-verifier" };
  else if (verifier) {
    // 1. the signature (stateless), 2. who sent it: Janus labels each relayed channel with the sender's feed id, and
    // only the guard's own feed may carry the guard's messages (a valid signature from another feed is a replay),
    // 3. the sequence (stateful, in the verifier).
    const r0 = await verify(data, verifier.key);
    const why = r0.ok ? sourceCheck(label, r0.message) : r0.reason;
    if (why) r = { ok: false, reason: why };
    else {
      r = await verifier.accept(data);
      if (!r.ok && r.reason === "replayed" && guardRejoined(label, r0.message)) {
        // The guard came back under a new feed id (a restart of the guard or of Janus) and its new hello went out
        // before we subscribed: its fresh sequence starts below the last one we saw. Start a new sequence for it,
        // only for the one feed named as the guard, not the feed we accepted from so far, with a recent sent_at.
        verifier = await GuardVerifier.fromPublicKey(verifier.publicKey);
        r = await verifier.accept(data);
        if (r.ok) { push(R.resyncs, { t, label }); log("guard sequence restarted on feed", label, "(its hello was missed)"); }
      }
    }
  } else r = await trustOnFirstUse(data, label);
  if (r.ok) onVerified(t, label, r.message, data);
  else onRejected(t, label, r.reason, data);
}

let guardLabel = null; // the feed that carried the accepted guard messages so far: the guard's current feed
const soleGuardFeed = () => {
  const ids = R.present.filter((id) => R.feeds[id] === GUARD_NAME);
  return ids.length === 1 ? ids[0] : null;
};
// null when `label` may carry this (correctly signed) guard message, else the reason to reject it
function sourceCheck(label, m) {
  if (m.type === TYPES.hello) return m.bot && String(m.bot.id) === label ? null : "relayed";
  if (label === guardLabel) return null;
  if ((guardLabel === null || !R.present.includes(guardLabel)) && soleGuardFeed() === label) return null;
  return "relayed";
}
function guardRejoined(label, m) {
  if (label === guardLabel || soleGuardFeed() !== label) return false;
  const sent = Date.parse(m.sent_at);
  return Number.isFinite(sent) && Math.abs(Date.now() - sent) < 30000;
}

// Trust on first use: only a self-signed hello whose bot.id is the feed id Janus labels the channel with, from the
// single present publisher named GUARD_NAME. Everything before that is rejected (nothing is trusted yet).
async function trustOnFirstUse(data, label) {
  const parts = splitSigned(data);
  if (!parts) return { ok: false, reason: "unsigned" };
  let m;
  try { m = JSON.parse(parts.payload); } catch (e) { return { ok: false, reason: "not-json" }; }
  if (!m || m.type !== TYPES.hello) return { ok: false, reason: "no-trusted-key" };
  if (R.feeds[label] !== GUARD_NAME) return { ok: false, reason: "hello-not-from-guard" };
  const claimants = R.present.filter((id) => R.feeds[id] === GUARD_NAME);
  if (claimants.length !== 1) return { ok: false, reason: "ambiguous-guard" };
  const v = await GuardVerifier.fromHello(data, { botId: label });
  if (!v) return { ok: false, reason: "bad-hello" };
  verifier = v;
  R.guardKey = v.publicKey; R.guardKeyId = await keyId(v.publicKey); R.tofuFrom = label;
  log("TOFU: trusting the guard key", R.guardKeyId, "from feed", label);
  return v.accept(data);
}

let lastGuardWire = null, lastClearAboutMe = null, firstHelloWire = null;
function onVerified(t, label, m, wire) {
  push(R.verified, { t, label, message: m });
  lastGuardWire = wire;
  R.guardFeed = label;
  guardLabel = label;
  if (m.type === TYPES.hello) { log("guard hello from feed", label, "bot", m.bot); if (!firstHelloWire) firstHelloWire = wire; }
  else if (m.type === TYPES.heartbeat) {
    R.lastHeartbeatAt = t;
    for (const p of m.participants || []) setState(String(p.id), p, t, "heartbeat");
  } else if (m.type === TYPES.verdict && m.participant) {
    const id = String(m.participant.id);
    setState(id, m, t, "verdict");
    if (id === R.myid && m.state === "clear") lastClearAboutMe = wire;
  }
  scheduleRender();
}

function setState(id, m, t, via) {
  const prev = R.states[id] || {};
  const st = {
    state: m.state, score: m.score ?? null, display: (m.participant && m.participant.display) || m.display || prev.display,
    signals: m.signals || (prev.state === m.state ? prev.signals : null), t, via,
    notJudged: m.not_judged || null,
    // when the judgement was made: a verdict is judged as it is sent; a heartbeat says how old its state is
    judgedAt: m.age_ms != null ? t - m.age_ms : (via === "verdict" && !m.not_judged ? t : prev.judgedAt ?? null),
  };
  R.states[id] = st;
  if (st.state === "alert" && !R.firstAlertAt[id]) R.firstAlertAt[id] = t;
}

function onRejected(t, label, reason, data) {
  const head = typeof data === "string" ? data.slice(0, 80) : "[" + Object.prototype.toString.call(data) + "]";
  push(R.rejected, { t, label, reason, head });
  if (R.rejected.length <= 3) log("rejected", reason, "from", label, head);
  scheduleRender();
}

// ---------------------------------------------------------------- Janus session with reconnection
let S = null; // the live connection context; a fresh one per (re)connect, callbacks of older ones are ignored
let stopped = false;

function connect() {
  if (stopped) return;
  R.attempts++;
  const ctx = {
    dead: false, janus: null, pubH: null, subH: null, joined: false, subReady: false, subBusy: false,
    pendingSub: [], pendingUnsub: [], subscribed: new Set(), subStreams: {}, inCall: new Map(),
    timers: [], forging: false, sentHello: false,
  };
  S = ctx;
  render();
  ctx.timers.push(setTimeout(() => { if (!ctx.joined) lost(ctx, "no join within 15 s"); }, 15000));
  try {
    ctx.janus = new Janus({
      server: SERVER, iceServers: [], keepAlivePeriod: 15000,
      success: () => { if (!ctx.dead) attachPublisher(ctx); },
      error: (e) => lost(ctx, "janus: " + e),
      destroyed: () => lost(ctx, "session destroyed"),
    });
  } catch (e) { lost(ctx, "new Janus: " + e); }
}

function lost(ctx, why) {
  if (ctx.dead) return;
  ctx.dead = true;
  const wasUp = ctx.joined;
  if (S === ctx) S = null;
  for (const t of ctx.timers) { clearTimeout(t); clearInterval(t); }
  if (wasUp) { push(R.connects, { t: Date.now(), ev: "lost", why }); log("connection lost:", why); }
  R.connected = false; R.published = false; R.present = []; R.guardPresent = false;
  try { ctx.janus && ctx.janus.destroy({ cleanupHandles: true, notifyDestroyed: false, unload: true }); } catch (e) { /* gone already */ }
  for (const id of [...tiles.keys()]) removeTile(id);
  render();
  if (!stopped) setTimeout(connect, RETRY_MS);
}

function attachPublisher(ctx) {
  ctx.janus.attach({
    plugin: "janus.plugin.videoroom", opaqueId: "dfg-" + NAME,
    success(h) {
      if (ctx.dead) return;
      ctx.pubH = h;
      h.send({ message: { request: "join", room: ROOM, ptype: "publisher", display: NAME } });
    },
    error(e) { err("attach publisher: " + e); lost(ctx, "attach publisher failed"); },
    onmessage(msg, jsep) {
      if (ctx.dead) return;
      const ev = msg.videoroom;
      if (msg.error) {
        err(`publisher: ${msg.error_code} ${msg.error}`);
        if (!ctx.joined) { ctx.timers.push(setTimeout(() => lost(ctx, "join refused: " + msg.error), 1000)); }
      }
      if (ev === "joined") {
        ctx.joined = true; R.connected = true;
        R.myid = String(msg.id);
        push(R.connects, { t: Date.now(), ev: "joined", id: R.myid });
        log("joined room", ROOM, "as", R.myid, "(" + NAME + ")");
        if (PUBLISH) {
          const self = ensureTile("self", NAME, true);
          if (!VIDEO) self.novideo.textContent = "camera off";
          doPublish(ctx);
        }
        onPublishers(ctx, msg.publishers);
        ctx.timers.push(setInterval(() => pollStats(ctx), 500));
        ctx.timers.push(setInterval(() => reconcileTracks(ctx), 1000));
      } else if (ev === "event") {
        if (msg.publishers) onPublishers(ctx, msg.publishers);
        if (msg.configured === "ok") {
          R.published = true; R.publishCount++;
          R.publishedStreams = (msg.streams || []).map((s) => ({ type: s.type, mid: s.mid, codec: s.codec || null }));
          push(R.connects, { t: Date.now(), ev: "published" });
          watchFirstFrame(ctx);
          log("published", (msg.streams || []).map((s) => s.type + ":" + (s.codec || "")).join(","));
        }
        const gone = msg.unpublished ?? msg.leaving ?? msg.kicked;
        if (gone !== undefined && gone !== "ok") feedGone(ctx, String(gone));
      } else if (ev === "destroyed") {
        lost(ctx, "room destroyed");
      }
      if (jsep) ctx.pubH.handleRemoteJsep({ jsep });
    },
    onlocaltrack(track, on) {
      if (ctx.dead || track.kind !== "video") return;
      const tile = ensureTile("self", NAME, true);
      tile.video.srcObject = on ? new MediaStream([track]) : null;
      tile.novideo.style.display = on ? "none" : "";
    },
    ondataopen() { log("publisher data channel open"); if (FORGE) startForging(ctx); },
    ondata() { /* Janus relays nothing back to the publisher */ },
    webrtcState(on) { if (!on && !ctx.dead && R.published) lost(ctx, "publisher PeerConnection down"); },
    iceState(s) { if (s === "failed" && !ctx.dead) lost(ctx, "publisher ICE failed"); },
  });
}

// The audio and video tracks of a media file, played in a loop the way a camera and a microphone capture: the
// audio from an AudioContext (no output device in the way), the video from a muted media element slaved to the
// audio clock (nudged, or moved when far off), so a CPU stall drops frames instead of putting the video behind.
// (Played by a media element with its sound, the captured audio leaves before the output device's latency and the
// video after it: ~85 ms apart in headless Chromium.)
// Half a second before the end of the file both start again together: the sound waits until the video plays from
// the start. (A looping media element stalls for a moment at its wrap, and nudging it back onto a sound that looped
// on its own time-warps the lips against the voice for a second or two: a lag that varies over time, the very mark
// of a re-enacted face, which a genuine camera never shows.) The element must never reach its end: in Chromium an
// element that ends ends its captured tracks for good, and the call gets no more video from this page (the guard
// then rightly says "camera off"). So it loops too, in case a CPU stall carries it past the end before the wrap.
let mediaPlayer = null;
async function mediaTracks(url) {
  if (mediaPlayer) return mediaPlayer;
  const r = await fetch(url);
  if (!r.ok) throw new Error(`media ${url}: HTTP ${r.status}`);
  const bytes = await r.arrayBuffer();
  const ac = new AudioContext({ sampleRate: 48000 });
  const sound = await ac.decodeAudioData(bytes.slice(0));
  const v = document.createElement("video");
  v.src = URL.createObjectURL(new Blob([bytes], { type: r.headers.get("content-type") || "video/webm" }));
  v.muted = true;
  v.loop = true; // never "ended" (see above): the wrap below restarts it first
  v.playsInline = true;
  v.style.display = "none";
  document.body.appendChild(v);
  await v.play();
  const stream = v.captureStream();
  for (let i = 0; i < 100 && !stream.getVideoTracks().length; i++) await new Promise((ok) => setTimeout(ok, 50));
  if (!stream.getVideoTracks().length) throw new Error(`media ${url}: no video track`);
  const dest = ac.createMediaStreamDestination();
  await ac.resume();
  let src = null;
  let t0 = 0; // the AudioContext time at which the sound's (and the video's) time 0 plays
  let wrapping = false;
  let lastT = 0;
  const startSound = (offset) => {
    if (src) { try { src.stop(); } catch (_) { /* already stopped */ } }
    src = ac.createBufferSource();
    src.buffer = sound;
    src.connect(dest);
    const at = ac.currentTime;
    const from = Math.max(0, Math.min(offset, sound.duration));
    src.start(at, from);
    t0 = at - from;
  };
  startSound(v.currentTime);
  const wrap = async () => {
    wrapping = true;
    R.mediaWraps++;
    if (src) { try { src.stop(); } catch (_) { /* already stopped */ } }
    v.playbackRate = 1;
    if (v.currentTime > 1) {
      const seeked = new Promise((ok) => { v.addEventListener("seeked", ok, { once: true }); setTimeout(ok, 2000); });
      v.currentTime = 0;
      await seeked;
    } // else the element looped by itself: it plays from the start already
    if (v.paused) {
      try { await v.play(); } catch (e) { err("media: replay: " + (e && e.message ? e.message : e)); }
    }
    startSound(v.currentTime);
    lastT = v.currentTime;
    wrapping = false;
  };
  setInterval(() => {
    if (wrapping || v.paused || v.seeking) return;
    if (v.currentTime >= v.duration - 0.5 || v.currentTime < lastT - 1) { wrap(); return; }
    lastT = v.currentTime;
    const want = ac.currentTime - t0;
    const d = v.currentTime - want;
    if (Math.abs(d) > 0.12 && want < v.duration - 0.2) {
      log(`media: the video was ${Math.round(d * 1000)} ms off the sound at ${want.toFixed(1)} s: moved`);
      v.currentTime = want + 0.02; // a seek takes a moment
      v.playbackRate = 1;
    } else {
      v.playbackRate = Math.max(0.9, Math.min(1.1, 1 - d * 2));
    }
  }, 200);
  R.mediaSeconds = v.duration;
  mediaPlayer = { audio: dest.stream.getAudioTracks()[0], video: stream.getVideoTracks()[0] };
  log(`publishing ${url} (${v.videoWidth}x${v.videoHeight}, ${v.duration.toFixed(2)} s, sound and video restart together at the end)`);
  return mediaPlayer;
}

// The sound of a media file alone, in a loop (video=0: the camera is off, the microphone on).
let mediaSound = null;
async function mediaAudioTrack(url) {
  if (mediaSound) return mediaSound;
  const r = await fetch(url);
  if (!r.ok) throw new Error(`media ${url}: HTTP ${r.status}`);
  const ac = new AudioContext({ sampleRate: 48000 });
  const sound = await ac.decodeAudioData(await r.arrayBuffer());
  const dest = ac.createMediaStreamDestination();
  await ac.resume();
  const src = ac.createBufferSource();
  src.buffer = sound;
  src.loop = true;
  src.connect(dest);
  src.start();
  R.mediaSeconds = sound.duration;
  mediaSound = dest.stream.getAudioTracks()[0];
  log(`publishing the sound of ${url} (${sound.duration.toFixed(2)} s, looped), no video`);
  return mediaSound;
}

async function doPublish(ctx) {
  let audio = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  let video = true;
  if (MEDIA) {
    try {
      // janus.js stops the tracks it was given when the publisher goes away: give it clones, keep the originals.
      if (VIDEO) {
        const m = await mediaTracks(MEDIA);
        audio = m.audio.clone();
        video = m.video.clone();
      } else {
        audio = (await mediaAudioTrack(MEDIA)).clone();
      }
    } catch (e) {
      err("media: " + (e && e.message ? e.message : e));
      return;
    }
    if (ctx.dead) return;
  }
  const tracks = [{ type: "audio", capture: audio, recv: false }];
  if (VIDEO) tracks.push({ type: "video", capture: video, recv: false });
  tracks.push({ type: "data" });
  ctx.pubH.createOffer({
    tracks,
    success(jsep) {
      if (ctx.dead) return;
      const m = { request: "configure", audio: true, video: VIDEO, data: true };
      if (VCODEC) m.videocodec = VCODEC;
      ctx.pubH.send({ message: m, jsep });
    },
    error(e) { err("createOffer: " + (e && e.message ? e.message : e)); },
  });
}

// ---------------------------------------------------------------- subscriptions (one handle, multistream)
function onPublishers(ctx, list) {
  if (!list) return;
  for (const p of list) {
    const id = String(p.id);
    const streams = p.streams || [];
    R.feeds[id] = p.display || id;
    ctx.inCall.set(id, { display: p.display || id, streams });
    const media = streams.some((s) => s.type === "audio" || s.type === "video");
    if (media && p.display !== GUARD_NAME) ensureTile(id, p.display || id, false);
    if (!ctx.subscribed.has(id)) { ctx.subscribed.add(id); ctx.pendingSub.push({ feed: p.id }); }
    log("publisher", id, JSON.stringify(p.display), streams.map((s) => s.type + ":" + s.mid + ":" + (s.codec || "")).join(","));
  }
  R.present = [...ctx.inCall.keys()];
  updateGuardPresence();
  flushSubs(ctx);
}

function feedGone(ctx, id) {
  if (!ctx.inCall.has(id)) return;
  log("left/unpublished:", id, JSON.stringify(R.feeds[id]));
  ctx.inCall.delete(id);
  R.present = [...ctx.inCall.keys()];
  removeTile(id);
  if (ctx.subscribed.delete(id)) {
    ctx.pendingSub = ctx.pendingSub.filter((s) => String(s.feed) !== id);
    ctx.pendingUnsub.push({ feed: Number(id) });
  }
  updateGuardPresence();
  flushSubs(ctx);
}

function flushSubs(ctx) {
  if (ctx.dead || ctx.subBusy) return;
  if (!ctx.subH) {
    if (!ctx.pendingSub.length) return;
    ctx.pendingUnsub = [];
    attachSubscriber(ctx, ctx.pendingSub.splice(0));
    return;
  }
  if (!ctx.subReady || (!ctx.pendingSub.length && !ctx.pendingUnsub.length)) return;
  const m = { request: "update" };
  if (ctx.pendingSub.length) m.subscribe = ctx.pendingSub.splice(0);
  if (ctx.pendingUnsub.length) m.unsubscribe = ctx.pendingUnsub.splice(0);
  setBusy(ctx, true);
  ctx.subH.send({ message: m });
}

function setBusy(ctx, on) {
  ctx.subBusy = on;
  clearTimeout(ctx.busyTimer);
  if (on) ctx.busyTimer = setTimeout(() => { ctx.subBusy = false; flushSubs(ctx); }, 5000); // never stall
  else setTimeout(() => flushSubs(ctx), 0);
}

function attachSubscriber(ctx, streams) {
  setBusy(ctx, true);
  ctx.janus.attach({
    plugin: "janus.plugin.videoroom", opaqueId: "dfg-sub-" + NAME,
    success(h) {
      if (ctx.dead) return;
      ctx.subH = h;
      h.send({ message: { request: "join", room: ROOM, ptype: "subscriber", streams } });
    },
    error(e) { err("attach subscriber: " + e); lost(ctx, "attach subscriber failed"); },
    onmessage(msg, jsep) {
      if (ctx.dead) return;
      if (msg.error) {
        // e.g. a feed that left between the publishers event and our request: carry on with the rest
        log("subscriber error", msg.error_code, msg.error);
        if (msg.error_code !== 428) err(`subscriber: ${msg.error_code} ${msg.error}`);
        if (!ctx.subReady && ctx.subH) { ctx.subH.detach(); ctx.subH = null; }
        setBusy(ctx, false);
      }
      if (msg.streams) {
        ctx.subStreams = {};
        for (const s of msg.streams) ctx.subStreams[s.mid] = s;
      }
      const ev = msg.videoroom;
      if (ev === "attached" || ev === "updated") ctx.subReady = true;
      if (jsep) {
        ctx.subH.createAnswer({
          jsep, tracks: [{ type: "data" }],
          success(ans) { if (!ctx.dead) ctx.subH.send({ message: { request: "start", room: ROOM }, jsep: ans }); },
          error(e) { err("createAnswer: " + (e && e.message ? e.message : e)); setBusy(ctx, false); },
        });
      } else if (ev === "updated" || (ev === "event" && msg.started)) {
        setBusy(ctx, false);
      }
      if (ev === "event" && msg.started) setBusy(ctx, false);
      setTimeout(() => reconcileTracks(ctx), 300);
    },
    onremotetrack(track, mid, on) {
      // Janus reuses the m-lines (and so the very same receiver tracks) of a feed that left for the next one, and
      // janus.js reports a track "removed" ~2.5 s after it went quiet, possibly after its mid went to a new feed:
      // so the tiles are not driven by these events but by the current mid -> feed map (reconcile).
      if (!ctx.dead) { log("remote track", track.kind, "mid", mid, on ? "on" : "off", "feed", ctx.subStreams[mid] && ctx.subStreams[mid].feed_id); reconcileTracks(ctx); }
    },
    ondataopen(label) {
      // Janus relays publishers' data to a subscriber only once the subscriber's own channel carried traffic
      if (!ctx.sentHello && label === "JanusDataChannel") {
        ctx.sentHello = true;
        ctx.subH.data({ text: JSON.stringify({ type: "client-hello", name: NAME }), error() {} });
      }
    },
    ondata(data, label) { if (!ctx.dead) onData(data, label); },
    webrtcState(on) { if (!on && !ctx.dead) log("subscriber PeerConnection down"); },
  });
}

// Show in every tile the receiver tracks of the mids that Janus currently maps to that tile's feed.
function reconcileTracks(ctx) {
  const pc = ctx.subH && ctx.subH.webrtcStuff && ctx.subH.webrtcStuff.pc;
  if (!pc || ctx.dead) return;
  const want = new Map(); // feed id -> {video, audio}
  for (const tr of pc.getTransceivers()) {
    const s = tr.mid != null && ctx.subStreams[tr.mid];
    if (!s || s.active === false || s.feed_id == null || (s.type !== "video" && s.type !== "audio")) continue;
    const w = want.get(String(s.feed_id)) || {};
    if (!w[s.type]) w[s.type] = tr.receiver.track;
    want.set(String(s.feed_id), w);
  }
  for (const [id, t] of tiles) {
    if (t.self) continue;
    const w = want.get(id) || {};
    const cur = t.video.srcObject && t.video.srcObject.getVideoTracks()[0];
    if ((w.video || null) !== (cur || null)) {
      t.video.srcObject = w.video ? new MediaStream([w.video]) : null;
      t.novideo.style.display = w.video ? "none" : "";
    }
    const curA = t.audio.srcObject && t.audio.srcObject.getAudioTracks()[0];
    if ((w.audio || null) !== (curA || null)) t.audio.srcObject = w.audio ? new MediaStream([w.audio]) : null;
  }
}

function updateGuardPresence() {
  const ids = R.present.filter((id) => R.feeds[id] === GUARD_NAME);
  R.guardPresent = ids.length > 0;
  R.guardFeeds = ids;
  scheduleRender();
}

window.leave = async function () {
  stopped = true;
  R.leftAt = Date.now();
  const ctx = S;
  if (ctx && ctx.pubH && ctx.joined) {
    await new Promise((res) => { ctx.pubH.send({ message: { request: "leave" }, success: res, error: res }); setTimeout(res, 1000); });
  }
  if (ctx) { ctx.dead = true; for (const t of ctx.timers) { clearTimeout(t); clearInterval(t); } }
  await new Promise((res) => { try { ctx && ctx.janus.destroy({ cleanupHandles: true, success: res, error: res }); } catch (e) { res(); } setTimeout(res, 1000); });
  return R.leftAt;
};

// ---------------------------------------------------------------- stats: own first encoded frame, inbound per feed
async function pubStats(ctx) {
  const pc = ctx.pubH && ctx.pubH.webrtcStuff && ctx.pubH.webrtcStuff.pc;
  if (!pc) return;
  try {
    const r = await pc.getStats();
    r.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.framesEncoded > 0) {
        R.framesEncoded = s.framesEncoded;
        if (!ctx.firstFrame && !ctx.dead) {
          ctx.firstFrame = Date.now(); R.lastFirstFrameAt = ctx.firstFrame;
          if (!R.firstFrameAt) R.firstFrameAt = ctx.firstFrame;
          push(R.connects, { t: ctx.firstFrame, ev: "first-frame" });
          log("first video frame encoded");
        }
      }
    });
  } catch (e) { /* closing */ }
}
// every 50 ms from "configured" until the first encoded frame (at most 20 s), so firstFrameAt is precise
async function watchFirstFrame(ctx) {
  const end = Date.now() + 20000;
  while (!ctx.firstFrame && !ctx.dead && Date.now() < end) {
    await pubStats(ctx);
    await new Promise((r) => setTimeout(r, 50));
  }
}
let statsTick = 0;
async function pollStats(ctx) {
  if (ctx.dead) return;
  statsTick++;
  if (R.published) await pubStats(ctx);
  const spc = ctx.subH && ctx.subH.webrtcStuff && ctx.subH.webrtcStuff.pc;
  if (spc && statsTick % 4 === 0) {
    try {
      const r = await spc.getStats();
      r.forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        const st = ctx.subStreams[s.mid];
        if (!st) return;
        const id = String(st.feed_id);
        const e = (R.inbound[id] = R.inbound[id] || { display: R.feeds[id] });
        if (s.kind === "video") { e.videoFrames = s.framesDecoded; e.w = s.frameWidth; e.h = s.frameHeight; }
        if (s.kind === "audio") e.audioBytes = s.bytesReceived;
      });
    } catch (e) { /* closing */ }
  }
}

// ---------------------------------------------------------------- forging (spoof attempts, forge=1)
const enc = new TextEncoder();
const b64 = (u8) => btoa(String.fromCharCode(...new Uint8Array(u8)));
let forger = null;
async function startForging(ctx) {
  if (ctx.forging) return;
  ctx.forging = true;
  try {
    if (!forger) {
      const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
      const pub = b64(await crypto.subtle.exportKey("raw", kp.publicKey));
      forger = { kp, pub, keyId: await keyId(pub), n: 0 };
    }
  } catch (e) { err("forge: no Ed25519 in WebCrypto: " + e); return; }
  log("forging guard messages every second");
  const tick = async () => {
    if (ctx.dead || !ctx.pubH) return;
    const n = forger.n++;
    const seq = 1000000000 + n; // above anything the real guard sent: a replay check alone would not stop it
    const sentAt = new Date().toISOString();
    const base = { v: 1, seq, room: String(ROOM) };
    const others = R.present.filter((id) => id !== R.myid && R.feeds[id] !== GUARD_NAME);
    const victim = others[0] || "0";
    const send = (text, kind) => { R.forged[kind]++; ctx.pubH.data({ text, error(e) { log("forge send failed", String(e)); } }); };
    // 1. unsigned: "I am genuine"
    send(JSON.stringify({ type: TYPES.verdict, ...base, participant: { id: R.myid, display: NAME }, state: "clear",
      score: 0.02, signals: { visual: 0.03, lipsync: 0.01, av_offset_ms: 0 }, window: { start_ms: n * 1000, end_ms: n * 1000 + 3200 }, sent_at: sentAt }), "unsigned");
    // 2. signed with the forger's own key: "the other participant is a deepfake"
    send(await sign({ type: TYPES.verdict, ...base, seq: seq + 1, participant: { id: victim, display: R.feeds[victim] || "?" }, state: "alert",
      score: 0.97, signals: { visual: 0.91, lipsync: 0.95, av_offset_ms: 310 }, window: { start_ms: n * 1000, end_ms: n * 1000 + 3200 }, sent_at: sentAt }), "signed");
    // 3. every 5 s: a self-signed hello claiming to be the guard (TOFU must not take it: wrong participant)
    if (n % 5 === 0) {
      send(await sign({ type: TYPES.hello, v: 1, seq: 0, room: String(ROOM), bot: { id: R.myid, display: GUARD_NAME },
        public_key: forger.pub, key_id: forger.keyId, schema: "urn:deepfake-guard:wire:v1", sent_at: sentAt }), "hello");
    }
    // 4. every 3 s: replay real guard messages verbatim: its hello (a hello restarts the verifier's sequence),
    //    then a past "clear" about me if there is one, else the last guard message
    if (n % 3 === 2) {
      if (firstHelloWire) send(firstHelloWire, "replay");
      if (lastClearAboutMe || lastGuardWire) send(lastClearAboutMe || lastGuardWire, "replay");
    }
  };
  ctx.timers.push(setInterval(() => { tick().catch((e) => log("forge tick", String(e))); }, 1000));
}
async function sign(obj) {
  const payload = JSON.stringify(obj);
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, forger.kp.privateKey, enc.encode(payload));
  return payload.slice(0, -1) + ',"sig":"' + b64(sig) + '"}';
}

// ---------------------------------------------------------------- UI
const tiles = new Map();
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

function ensureTile(id, display, self) {
  let t = tiles.get(id);
  if (t) { t.who.textContent = display; return t; }
  const root = el("div", "tile");
  root.dataset.feed = id;
  const video = el("video"); video.autoplay = true; video.playsInline = true; video.muted = true;
  const audio = el("audio"); audio.autoplay = true; if (self) audio.muted = true;
  const novideo = el("div", "novideo", "waiting for video\u2026");
  const badge = el("div", "badge", "not yet checked");
  const name = el("div", "name");
  const who = el("span", "who", display);
  name.append(who);
  if (self) name.append(el("span", "you", "(you)"));
  const detail = el("div", "detail", "");
  name.append(detail);
  root.append(video, audio, novideo, badge, name);
  if (self) $("tiles").prepend(root); else $("tiles").append(root);
  t = { root, video, audio, novideo, badge, who, detail, self };
  tiles.set(id, t);
  if (!self && S) setTimeout(() => S && reconcileTracks(S), 0);
  scheduleRender();
  return t;
}
function removeTile(id) {
  const t = tiles.get(id);
  if (!t) return;
  t.video.srcObject = null; t.audio.srcObject = null; t.root.remove();
  tiles.delete(id);
}

const LABELS = {
  clear: "\u2714 verified genuine", suspicious: "\u26A0 suspicious", alert: "\u2716 DEEPFAKE ALERT",
  "no-face": "no face", "no-audio": "no audio",
};
function fmtAgo(ms) { return ms < 1000 ? "now" : (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s ago"; }
function describe(st) {
  const parts = [];
  if (st.score != null) parts.push("p(fake) " + Number(st.score).toFixed(2));
  const sg = st.signals || {};
  if (sg.evidence && sg.evidence.length) parts.push("evidence: " + sg.evidence.join(" + "));
  if (sg.lipsync != null) parts.push("lip-sync " + Number(sg.lipsync).toFixed(2));
  if (sg.visual != null) parts.push("visual " + Number(sg.visual).toFixed(2));
  if (sg.av_offset_ms != null) parts.push("A/V " + (sg.av_offset_ms > 0 ? "+" : "") + Math.round(sg.av_offset_ms) + " ms");
  return parts.join(" \u00B7 ");
}

let renderQueued = false;
function scheduleRender() { if (!renderQueued) { renderQueued = true; requestAnimationFrame(() => { renderQueued = false; render(); }); } }

function render() {
  const now = Date.now();
  const hbAge = R.lastHeartbeatAt ? now - R.lastHeartbeatAt : null;
  const guardLive = R.guardPresent && hbAge != null && hbAge < HEARTBEAT_STALE_MS;
  // header
  const conn = R.connected ? "Janus: connected" : `<span class="down">Janus: ${R.attempts > 1 ? "reconnecting (attempt " + R.attempts + ")" : "connecting"}</span>`;
  $("meta").innerHTML = `room <b>${ROOM}</b> \u00B7 you: <b>${esc(NAME)}</b>${R.myid ? " (feed " + R.myid + ")" : ""} \u00B7 ` +
    `${PUBLISH ? (R.published ? "publishing" + (VIDEO ? "" : " (camera off)") : "not publishing yet") : "viewer"}${FORGE ? " \u00B7 <b>forging</b>" : ""} \u00B7 ${conn}`;
  // tiles
  const alerts = [];
  for (const [id, t] of tiles) {
    const pid = t.self ? R.myid : id;
    const st = pid && R.states[pid];
    let cls = "none", text = "not yet checked", detail = "";
    if (st) {
      cls = st.notJudged ? "not-judged" : st.state in LABELS ? st.state : "none";
      text = st.notJudged ? "not judged: " + notJudgedText(st.notJudged) : LABELS[st.state] || st.state;
      const judged = st.judgedAt != null ? "judged " + fmtAgo(now - st.judgedAt) : "";
      detail = [describe(st), judged, "updated " + fmtAgo(now - st.t)].filter(Boolean).join(" \u00B7 ");
      if (st.state === "alert") alerts.push({ name: t.who.textContent, st });
    } else if (!R.guardPresent) {
      text = "not checked (no guard)";
    }
    t.badge.className = "badge " + cls + (st && !guardLive ? " stale" : "");
    t.badge.textContent = text + (st && !guardLive ? " (guard offline)" : "");
    t.root.className = "tile " + cls;
    t.detail.textContent = detail;
  }
  const bar = $("alertbar");
  if (alerts.length) {
    bar.className = "alertbar";
    bar.textContent = "\u26A0 DEEPFAKE ALERT: " + alerts.map(({ name, st }) => {
      const off = st.signals && st.signals.av_offset_ms;
      return name + (off != null && Math.abs(off) >= 100 ? ` (audio ${off > 0 ? Math.round(off) + " ms late" : Math.round(-off) + " ms early"} against the lips)` : "");
    }).join("; ") + " \u2014 do not act on what they ask without checking through another channel.";
  } else bar.className = "alertbar hidden";
  // guard status
  const pres = $("guard-presence");
  if (R.guardPresent) { pres.className = "pill green"; pres.textContent = `guard present (${GUARD_NAME}, feed ${R.guardFeeds.join(", ")})`; }
  else { pres.className = "pill amber"; pres.textContent = "guard not in the call"; }
  const trust = $("guard-trust");
  if (keyProblem) { trust.className = "pill red"; trust.textContent = keyProblem; }
  else if (R.trust === "pinned") { trust.className = "pill blue"; trust.textContent = `key pinned \u00B7 id ${R.guardKeyId || "\u2026"}`; }
  else if (verifier) { trust.className = "pill blue"; trust.textContent = `trust on first use \u00B7 key ${R.guardKeyId} from feed ${R.tofuFrom}`; }
  else { trust.className = "pill amber"; trust.textContent = `trust on first use \u00B7 waiting for the hello of "${GUARD_NAME}"`; }
  const hb = $("guard-heartbeat");
  if (hbAge == null) { hb.className = "pill grey"; hb.textContent = "heartbeat: none yet"; }
  else { hb.className = "pill " + (hbAge < HEARTBEAT_STALE_MS ? "green" : "amber"); hb.textContent = "last heartbeat " + fmtAgo(hbAge); }
  $("guard-counts").textContent = `verified ${R.verified.length} \u00B7 rejected ${R.rejected.length}` +
    (FORGE ? ` \u00B7 forged sent ${R.forged.unsigned + R.forged.signed + R.forged.hello + R.forged.replay}` : "");
  // rejected log
  const tb = $("rejected").tBodies[0];
  const rows = R.rejected.slice(-8).reverse();
  tb.replaceChildren(...(rows.length ? rows.map((r) => {
    const tr = el("tr");
    tr.append(el("td", "", new Date(r.t).toTimeString().slice(0, 8)), el("td", "", `${R.feeds[r.label] || "?"} (${r.label})`),
      el("td", "reason", r.reason), el("td", "head", r.head));
    return tr;
  }) : [(() => { const tr = el("tr"); const td = el("td", "empty", "none"); td.colSpan = 4; tr.append(td); return tr; })()]));
  $("footer").textContent = `Badges change only on messages verified against the guard's Ed25519 key (plugin-api/js/deepfake-guard.mjs). ` +
    `Janus ${SERVER}.`;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

setInterval(render, 500);
Janus.init({ debug: q.get("debug") ? "all" : ["error"], callback: connect });
