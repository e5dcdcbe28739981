// STAND-IN GUARD, FOR TESTING THE DEMO PAGE AND THE HARNESS ONLY (not the detector; no media is analysed).
// Joins the room as the publisher "Deepfake Guard" with a data-only stream and sends signed wire-format messages
// (hello, repeated; one verdict per participant per second; a heartbeat every 2 s), signed with the PUBLIC RFC 8032 test
// key (plugin-api/README.md, "Test vectors"): 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=.
// Policy: a participant whose display matches `fake` (default "mallory") is "suspicious" after 3 s and "alert"
// after 6 s in the call; everyone else is "clear". On any Janus trouble the page reloads itself after 1 s.
// Query: room, server, fake (regexp), name (default "Deepfake Guard").
const q = new URLSearchParams(location.search);
const ROOM = parseInt(q.get("room") || "4321", 10);
const SERVER = q.get("server") || `ws://${location.hostname || "127.0.0.1"}:8188`;
const FAKE = new RegExp(q.get("fake") || "mallory");
const NAME = q.get("name") || "Deepfake Guard";
const SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"; // RFC 8032 7.1 test 1, public
const PUB = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const out = document.getElementById("out");
const log = (s) => { out.textContent += s + "\n"; console.log("[standin-guard] " + s); };
const hex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
const b64 = (u8) => btoa(String.fromCharCode(...new Uint8Array(u8)));
const pkcs8 = new Uint8Array([...hex("302e020100300506032b657004220420"), ...hex(SEED_HEX)]);
const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
const enc = new TextEncoder();
let seq = 0, myid = null, handle = null, started = Date.now();
const present = new Map(); // id -> {display, since}
async function send(obj) {
  const { type, ...rest } = obj;
  const payload = JSON.stringify({ type, v: 1, seq: seq++, room: String(ROOM), ...rest, sent_at: new Date().toISOString() });
  const sig = b64(await crypto.subtle.sign({ name: "Ed25519" }, key, enc.encode(payload)));
  handle.data({ text: payload.slice(0, -1) + ',"sig":"' + sig + '"}', error(e) { log("send failed " + e); } });
}
function stateOf(p) {
  const age = Date.now() - p.since;
  if (!FAKE.test(p.display)) return { state: "clear", score: 0.04, signals: { visual: 0.05, lipsync: 0.03, av_offset_ms: 10 } };
  if (age < 3000) return { state: "clear", score: 0.2, signals: { visual: 0.1, lipsync: 0.2 } };
  if (age < 6000) return { state: "suspicious", score: 0.6, signals: { visual: 0.2, lipsync: 0.7, av_offset_ms: 380 } };
  return { state: "alert", score: 0.93, signals: { visual: 0.22, lipsync: 0.96, av_offset_ms: 400 } };
}
// The hello goes out at start, again every 5 s and whenever someone joins (rooms with notify_joining = true): a
// client that joined later would otherwise never see it (Janus relays no past data) and, without a pinned key,
// never trust the guard. A repeated hello carries the current seq, so it does not reopen the replay window.
const hello = () => send({ type: "deepfake-guard.hello", bot: { id: myid, display: NAME }, public_key: PUB,
  key_id: "21fe31dfa154a261", schema: "urn:deepfake-guard:wire:v1" });
let open = false;
const reload = (why) => { log("reloading: " + why); setTimeout(() => location.reload(), 1000); };
Janus.init({ debug: ["error"], callback() {
  const janus = new Janus({ server: SERVER, iceServers: [], error: reload, destroyed: () => reload("destroyed"),
    success() {
      janus.attach({ plugin: "janus.plugin.videoroom", opaqueId: "standin-guard",
        success(h) { handle = h; h.send({ message: { request: "join", room: ROOM, ptype: "publisher", display: NAME } }); },
        error: reload,
        onmessage(msg, jsep) {
          if (msg.error) reload(msg.error);
          if (msg.videoroom === "joined") {
            myid = String(msg.id); log("joined as " + myid);
            handle.createOffer({ tracks: [{ type: "data" }],
              success(j) { handle.send({ message: { request: "configure", audio: false, video: false, data: true }, jsep: j }); },
              error: (e) => reload("offer " + e) });
          }
          for (const p of msg.publishers || []) if (!present.has(String(p.id))) present.set(String(p.id), { display: p.display, since: Date.now() });
          if (msg.joining && open) setTimeout(hello, 1500); // once the newcomer has subscribed
          const gone = msg.unpublished ?? msg.leaving;
          if (gone !== undefined && gone !== "ok") present.delete(String(gone));
          if (jsep) handle.handleRemoteJsep({ jsep });
        },
        async ondataopen() {
          log("data channel open");
          open = true;
          setInterval(hello, 5000);
          await hello();
          let n = 0;
          setInterval(async () => {
            n++;
            for (const [id, p] of present) {
              const s = stateOf(p);
              const t = Date.now() - p.since;
              await send({ type: "deepfake-guard.verdict", participant: { id, display: p.display }, state: s.state, score: s.score,
                signals: s.signals, window: { start_ms: Math.max(0, t - 3200), end_ms: t } });
            }
            if (n % 2 === 0) await send({ type: "deepfake-guard.heartbeat", uptime_s: Math.round((Date.now() - started) / 1000),
              participants: [...present].map(([id, p]) => ({ id, display: p.display, state: stateOf(p).state, score: stateOf(p).score })) });
          }, 1000);
        },
        webrtcState(on) { if (!on) reload("pc down"); },
      });
    } });
} });
