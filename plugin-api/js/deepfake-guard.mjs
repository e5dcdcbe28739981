// deepfake-guard wire format v1: parse and verify the guard's data-channel messages in a web client.
//
// Any participant of a call can publish data, so a client must tell the guard's messages from a spoof.
// Every message is signed with the guard's Ed25519 key: the signed bytes are the message without its
// final "sig" member (see ../README.md, "The signing contract"). This module checks that signature with
// WebCrypto (browsers, Node >= 20) and hands back only what was signed.
//
//   import { GuardVerifier } from "./deepfake-guard.mjs";
//   const guard = await GuardVerifier.fromPublicKey("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
//   channel.onmessage = async (e) => {
//     const r = await guard.accept(e.data);
//     if (r.ok) show(r.message); else console.warn("rejected:", r.reason);
//   };
//
// Where the key comes from is the client's decision: pin it (the guard prints it at start), or trust the
// key of the first self-signed hello that comes from the participant id the media server names as the
// guard (`GuardVerifier.fromHello`).

export const WIRE_VERSION = 1;
export const TYPES = Object.freeze({
  hello: "deepfake-guard.hello",
  verdict: "deepfake-guard.verdict",
  heartbeat: "deepfake-guard.heartbeat",
});

// Exactly the texts the Rust `split_signed` accepts: the signature is the last member.
const SIGNED = /^(\{[\s\S]*),"sig":"([A-Za-z0-9+/]{86}==)"\}$/;

function b64decode(s) {
  if (typeof atob === "function") {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(s, "base64"));
}

// Why the guard does not judge a participant now (a verdict's or heartbeat entry's `not_judged`, sent with
// state "no-face"), in words for a badge. A reason this version does not know reads as "other".
export const NOT_JUDGED = Object.freeze({
  "too-few-frames": "frames missing from the video",
  "over-capacity": "guard over its capacity",
  "camera-off": "camera off (no video)",
  "unsupported-codec": "video codec the guard does not decode",
  other: "cannot be judged now",
});
export function notJudgedText(reason) {
  return typeof reason === "string" && Object.hasOwn(NOT_JUDGED, reason) ? NOT_JUDGED[reason] : NOT_JUDGED.other;
}

/** Split a wire text into the signed payload text and the signature bytes; null if it is not signed. */
export function splitSigned(wire) {
  if (typeof wire !== "string") return null;
  const m = SIGNED.exec(wire);
  return m ? { payload: m[1] + "}", sig: b64decode(m[2]) } : null;
}

/** Import a raw Ed25519 public key given as standard base64 (44 characters). */
export async function importPublicKey(publicKeyB64) {
  if (typeof publicKeyB64 !== "string" || !/^[A-Za-z0-9+/]{43}=$/.test(publicKeyB64)) {
    throw new Error("deepfake-guard: the public key must be 32 bytes in padded standard base64");
  }
  return crypto.subtle.importKey("raw", b64decode(publicKeyB64), { name: "Ed25519" }, false, ["verify"]);
}

/** `key_id` of a public key: the first 8 bytes of its SHA-256, lowercase hex. */
export async function keyId(publicKeyB64) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", b64decode(publicKeyB64)));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Verify `wire` against `key` (a CryptoKey); returns {ok, message} or {ok: false, reason}. */
export async function verify(wire, key) {
  const parts = splitSigned(wire);
  if (!parts) return { ok: false, reason: "unsigned" };
  const payload = new TextEncoder().encode(parts.payload);
  let good = false;
  try {
    good = await crypto.subtle.verify({ name: "Ed25519" }, key, parts.sig, payload);
  } catch (e) {
    return { ok: false, reason: "bad-signature" };
  }
  if (!good) return { ok: false, reason: "bad-signature" };
  let message;
  try {
    message = JSON.parse(parts.payload); // the signed bytes, never the wire text around them
  } catch (e) {
    return { ok: false, reason: "not-json" };
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    return { ok: false, reason: "not-an-object" };
  }
  if (!Object.values(TYPES).includes(message.type)) return { ok: false, reason: "unknown-type" };
  if (message.v !== WIRE_VERSION) return { ok: false, reason: "unsupported-version" };
  return { ok: true, message };
}

/** A client's view of one guard: its key, the last sequence number and the latest `sent_at` seen. A message
 * whose `seq` is not above the last one is rejected as a replay, except a hello that is newer than
 * everything seen so far (the guard restarted and counts from 0 again). */
export class GuardVerifier {
  constructor(key, publicKeyB64) {
    this.key = key;
    this.publicKey = publicKeyB64;
    this.lastSeq = -1;
    this.lastSentAt = "";
  }

  /** Trust a pinned key. */
  static async fromPublicKey(publicKeyB64) {
    return new GuardVerifier(await importPublicKey(publicKeyB64), publicKeyB64);
  }

  /**
   * Trust the key of a hello that is signed by the key it carries. Pass `expect.keyId` to accept only a
   * known key, and `expect.botId` to accept it only for the participant the media server says sent it.
   * Returns null when the hello is not acceptable.
   */
  static async fromHello(wire, expect = {}) {
    const parts = splitSigned(wire);
    if (!parts) return null;
    let hello;
    try {
      hello = JSON.parse(parts.payload);
    } catch (e) {
      return null;
    }
    if (!hello || hello.type !== TYPES.hello || typeof hello.public_key !== "string") return null;
    if (expect.botId !== undefined && (!hello.bot || hello.bot.id !== expect.botId)) return null;
    if (expect.keyId !== undefined && (await keyId(hello.public_key)) !== expect.keyId) return null;
    let v;
    try {
      v = await GuardVerifier.fromPublicKey(hello.public_key);
    } catch (e) {
      return null;
    }
    return (await v.accept(wire)).ok ? v : null;
  }

  /** Verify one data-channel message: {ok, message} or {ok: false, reason}. */
  async accept(wire) {
    const r = await verify(wire, this.key);
    if (!r.ok) return r;
    const m = r.message;
    if (typeof m.seq !== "number") return { ok: false, reason: "no-seq" };
    const sentAt = typeof m.sent_at === "string" ? m.sent_at : "";
    // sent_at is RFC 3339 UTC with milliseconds: its text order is its time order.
    const restarted = m.type === TYPES.hello && sentAt > this.lastSentAt;
    if (m.seq <= this.lastSeq && !restarted) return { ok: false, reason: "replayed" };
    this.lastSeq = m.seq;
    if (sentAt > this.lastSentAt) this.lastSentAt = sentAt;
    return r;
  }
}
