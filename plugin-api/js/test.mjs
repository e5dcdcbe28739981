// Tests of deepfake-guard.mjs against the signed examples of ../schema/examples (RFC 8032 test key).
// Run: node --test plugin-api/js/test.mjs   (part of the test command through plugin-api/tests/js_module.rs)
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { GuardVerifier, importPublicKey, keyId, splitSigned, verify, TYPES } from "./deepfake-guard.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, "..", "schema", "examples");
const wire = (name) => readFileSync(join(examples, name), "utf8").replace(/\n$/, "");
const TEST_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="; // RFC 8032 7.1 test 1: public, tests only

function b64(bytes) {
  return Buffer.from(bytes).toString("base64");
}

async function signWith(privateKey, payload) {
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, new TextEncoder().encode(payload)));
  return payload.slice(0, -1) + ',"sig":"' + b64(sig) + '"}';
}

test("every valid example verifies with the guard's key", async () => {
  const key = await importPublicKey(TEST_KEY);
  const names = readdirSync(examples).filter((n) => n.endsWith(".json"));
  assert.ok(names.length >= 4);
  for (const name of names) {
    const r = await verify(wire(name), key);
    assert.equal(r.ok, true, `${name}: ${r.reason}`);
    assert.ok(Object.values(TYPES).includes(r.message.type));
    assert.equal(r.message.sig, undefined, "the message is the signed payload, without sig");
  }
});

test("key_id is the first 8 bytes of SHA-256 of the key", async () => {
  assert.equal(await keyId(TEST_KEY), "21fe31dfa154a261");
});

test("unsigned, tampered and wrongly signed messages are rejected", async () => {
  const key = await importPublicKey(TEST_KEY);
  const good = wire("verdict.json");
  assert.equal((await verify(readFileSync(join(examples, "invalid", "verdict-missing-sig.json"), "utf8").trim(), key)).reason, "unsigned");
  // one changed byte in the payload: the state of the participant
  const tampered = good.replace('"state":"alert"', '"state":"clear"');
  assert.notEqual(tampered, good);
  assert.equal((await verify(tampered, key)).reason, "bad-signature");
  // text around a signed message is not accepted
  assert.equal((await verify(good + " ", key)).reason, "unsigned");
  assert.equal(splitSigned(good + "\n"), null);
  // a participant forging a verdict with its own key
  const forger = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const { payload } = splitSigned(good);
  const forged = await signWith(forger.privateKey, payload.replace('"state":"alert"', '"state":"clear"'));
  assert.equal((await verify(forged, key)).reason, "bad-signature");
  assert.equal((await verify(forged, forger.publicKey)).ok, true, "the forger's own signature is well formed");
  // not a string at all
  assert.equal((await verify(new ArrayBuffer(8), key)).reason, "unsigned");
});

test("a pinned verifier follows the sequence and rejects replays", async () => {
  const guard = await GuardVerifier.fromPublicKey(TEST_KEY);
  assert.equal((await guard.accept(wire("hello.json"))).ok, true);
  assert.equal((await guard.accept(wire("verdict.json"))).ok, true); // seq 17
  assert.equal((await guard.accept(wire("verdict.json"))).reason, "replayed");
  assert.equal((await guard.accept(wire("heartbeat.json"))).ok, true); // seq 18
  // An old hello replayed by someone in the call does not restart the sequence (nor let old messages in).
  assert.equal((await guard.accept(wire("hello.json"))).reason, "replayed");
  assert.equal((await guard.accept(wire("verdict.json"))).reason, "replayed");
});

test("trust on a self-signed hello only from the expected bot and key", async () => {
  const hello = wire("hello.json");
  assert.ok(await GuardVerifier.fromHello(hello));
  assert.ok(await GuardVerifier.fromHello(hello, { botId: "9001", keyId: "21fe31dfa154a261" }));
  assert.equal(await GuardVerifier.fromHello(hello, { botId: "4401" }), null);
  assert.equal(await GuardVerifier.fromHello(hello, { keyId: "0000000000000000" }), null);
  assert.equal(await GuardVerifier.fromHello(wire("verdict.json")), null);
  // a hello whose public_key is not the key that signed it
  const other = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const { payload } = splitSigned(hello);
  const swapped = await signWith(other.privateKey, payload);
  assert.equal(await GuardVerifier.fromHello(swapped), null);
});

test("not-judged reasons read as words, unknown ones as 'other'", async () => {
  const { notJudgedText, NOT_JUDGED } = await import("./deepfake-guard.mjs");
  assert.equal(notJudgedText("camera-off"), NOT_JUDGED["camera-off"]);
  assert.equal(notJudgedText("unsupported-codec"), NOT_JUDGED["unsupported-codec"]);
  for (const odd of ["tab-hidden", "__proto__", "constructor", undefined, 7]) assert.equal(notJudgedText(odd), NOT_JUDGED.other);
  const key = await importPublicKey(TEST_KEY);
  const r = await verify(wire("verdict-not-judged.json"), key);
  assert.equal(r.ok, true);
  assert.equal(notJudgedText(r.message.not_judged), NOT_JUDGED["camera-off"]);
});
