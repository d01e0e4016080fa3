// Hostile datagrams to the three wire formats (issue 5, point 6), property-based with fast-check:
// STUN (agents/stun/message.ts), hole punching (agents/punch/protocol.ts) and reach
// (agents/reach/protocol.ts). Random bytes never throw and never decode; mutated valid messages (bit flips,
// truncation, extension, byte swaps, splices, rewritten length fields) never throw and are either
// refused with a reason from the closed set or accepted in canonical form; and every valid message
// fast-check can build round-trips: decode(encode(m)) is m and encode(decode(x)) is x, byte for byte.
// The pure handlers behind the servers get the same input: the STUN responder and the rendezvous core
// never throw and never reach their "internal-error" path, and a punch session fed random peer
// messages never throws and only ever sends encodable messages.
//
// FUZZ_RUNS=N raises every property to at least N cases (`npm run soak`); FUZZ_SEED=S replays a run.
import test from "ava";
import { fcOptions, logSeed, runs } from "../helpers/fuzz.ts";
import fc from "fast-check";
import { type StunAttribute, type StunMessage, attributeCodes, decodeStun, encodeStun } from "../../agents/stun/message.ts";
import { respond, type ServerAddresses } from "../../agents/stun/responder.ts";
import { type ClientMessage, type DecodeReason, type Message, type PeerMessage, decode, encode, maxDatagram } from "../../agents/punch/protocol.ts";
import { RendezvousCore, defaultLimits } from "../../agents/punch/rendezvous-core.ts";
import { PunchStateMachine, relayVia } from "../../agents/punch/session.ts";
import { decodeReach, encodeReach, type ReachMessage } from "../../agents/reach/protocol.ts";

const options = fcOptions;

test.beforeEach((t) => logSeed(t));

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fail = (what: string, input: Uint8Array, detail: unknown = "") => {
	throw new Error(`${what} for datagram ${hex(input).slice(0, 400)} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
};

// ── mutations of valid datagrams ─────────────────────────────────────────────────────────────────

type Mutation =
	| { op: "flip"; at: number; bit: number }
	| { op: "set"; at: number; value: number }
	| { op: "truncate"; at: number }
	| { op: "extend"; bytes: Uint8Array }
	| { op: "swap"; at: number; other: number }
	| { op: "splice"; at: number; bytes: Uint8Array }
	| { op: "delete"; at: number; count: number }
	| { op: "length"; value: number }
	| { op: "fix-length" };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
	{ weight: 3, arbitrary: fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
	{ weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
	{ weight: 2, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
	{ weight: 2, arbitrary: fc.record({ op: fc.constant("extend" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
	{ weight: 2, arbitrary: fc.record({ op: fc.constant("swap" as const), at: fc.nat(), other: fc.nat() }) },
	{ weight: 2, arbitrary: fc.record({ op: fc.constant("splice" as const), at: fc.nat(), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...['"', "\\", "{", "}", ",", ":", "[", "]", "\u0000", '\\u0000', '"tbp":1,', '"t":"ka",', " ", "\n", "1e999", "-0", "null"].map((text) => new Uint8Array(Buffer.from(text, "latin1"))))) }) },
	{ weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }) },
	{ weight: 1, arbitrary: fc.record({ op: fc.constant("length" as const), value: fc.integer({ min: 0, max: 0xffff }) }) },
	{ weight: 1, arbitrary: fc.constant({ op: "fix-length" as const }) },
);

/** Apply mutations; `length` and `fix-length` rewrite a STUN header's length field (bytes 2-3). */
function mutate(input: Uint8Array, mutations: Mutation[]): Buffer {
	let bytes = Buffer.from(input);
	for (const m of mutations) {
		const at = bytes.length === 0 ? 0 : ("at" in m ? m.at : 0) % bytes.length;
		switch (m.op) {
			case "flip":
				if (bytes.length) bytes[at] ^= 1 << m.bit;
				break;
			case "set":
				if (bytes.length) bytes[at] = m.value;
				break;
			case "truncate":
				bytes = bytes.subarray(0, at);
				break;
			case "extend":
				bytes = Buffer.concat([bytes, m.bytes]);
				break;
			case "swap":
				if (bytes.length) [bytes[at], bytes[m.other % bytes.length]] = [bytes[m.other % bytes.length], bytes[at]];
				break;
			case "splice":
				bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
				break;
			case "delete":
				bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
				break;
			case "length":
				if (bytes.length >= 4) bytes.writeUInt16BE(m.value, 2);
				break;
			case "fix-length":
				if (bytes.length >= 20) bytes.writeUInt16BE(Math.min(0xffff, bytes.length - 20), 2);
				break;
		}
	}
	return Buffer.from(bytes);
}

const mutations = fc.array(mutation, { minLength: 1, maxLength: 5 });

/** Datagrams that are nothing in particular: random, empty, huge, text. */
const randomDatagram = fc.oneof(
	{ weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) },
	{ weight: 1, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 4000 }) },
	{ weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }).map((text) => new Uint8Array(Buffer.from(text))) },
	{ weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((text) => new Uint8Array(Buffer.from(text))) },
);

// ── STUN ─────────────────────────────────────────────────────────────────────────────────────────

const stunReasons = new Set(["truncated-header", "not-stun", "bad-cookie", "bad-length", "length-mismatch", "attribute-overrun", "bad-attribute", "fingerprint-not-last", "bad-fingerprint"]);
const knownAttributeCodes = new Set<number>(Object.values(attributeCodes));

const port = fc.integer({ min: 0, max: 0xffff });
/** Up to 127 code points and 763 bytes of UTF-8: what SOFTWARE and an ERROR-CODE reason may hold. */
const stunText = fc.string({ unit: "grapheme", maxLength: 60 }).filter((text) => [...text].length < 128 && Buffer.byteLength(text) <= 763);
const addressAttribute = fc.record({
	type: fc.constantFrom("MAPPED-ADDRESS" as const, "XOR-MAPPED-ADDRESS" as const, "RESPONSE-ORIGIN" as const, "OTHER-ADDRESS" as const),
	family: fc.constant("IPv4" as const),
	address: fc.ipV4(),
	port,
});
const address6Attribute = fc.record({
	type: fc.constantFrom("MAPPED-ADDRESS" as const, "XOR-MAPPED-ADDRESS" as const, "RESPONSE-ORIGIN" as const, "OTHER-ADDRESS" as const),
	family: fc.constant("IPv6" as const),
	address: fc.ipV6(),
	port,
});
const stunAttribute: fc.Arbitrary<StunAttribute> = fc.oneof(
	addressAttribute,
	address6Attribute,
	fc.record({ type: fc.constant("CHANGE-REQUEST" as const), changeIp: fc.boolean(), changePort: fc.boolean() }),
	fc.record({ type: fc.constant("RESPONSE-PORT" as const), port }),
	fc.record({ type: fc.constant("SOFTWARE" as const), text: stunText }),
	fc.record({ type: fc.constant("ERROR-CODE" as const), code: fc.integer({ min: 300, max: 699 }), reason: stunText }),
	fc.record({ type: fc.constant("UNKNOWN-ATTRIBUTES" as const), types: fc.array(port, { maxLength: 12 }) }),
	fc.record({ type: fc.constant("unknown" as const), code: port.filter((code) => !knownAttributeCodes.has(code)), value: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)) }),
);
const stunMessage: fc.Arbitrary<StunMessage> = fc
	.record({
		method: fc.integer({ min: 0, max: 0xfff }),
		class: fc.constantFrom("request" as const, "indication" as const, "success" as const, "error" as const),
		transactionId: fc.uint8Array({ minLength: 12, maxLength: 12 }).map((bytes) => Buffer.from(bytes)),
		attributes: fc.array(stunAttribute, { maxLength: 8 }),
		// MESSAGE-INTEGRITY last but for FINGERPRINT: anything after it is ignored on decode (RFC 5389 15.4).
		integrity: fc.option(fc.uint8Array({ minLength: 20, maxLength: 20 }).map((bytes) => Buffer.from(bytes)), { nil: undefined }),
		fingerprint: fc.boolean(),
	})
	.map(({ integrity, fingerprint, ...message }) => ({
		...message,
		attributes: [...message.attributes, ...(integrity ? [{ type: "MESSAGE-INTEGRITY" as const, hmac: integrity }] : []), ...(fingerprint ? [{ type: "FINGERPRINT" as const, crc: 0 }] : [])],
	}));

/** IPv6 text in one canonical form (WHATWG URL serialisation: RFC 5952), to compare addresses. */
const canonical6 = (address: string) => new URL(`http://[${address}]/`).hostname.slice(1, -1);

/** A message as plain data, comparable across encode/decode (the FINGERPRINT crc is computed on encode). */
function comparable(message: StunMessage): unknown {
	return {
		method: message.method,
		class: message.class,
		transactionId: hex(message.transactionId),
		attributes: message.attributes.map((attribute) => {
			if (attribute.type === "FINGERPRINT") return { type: "FINGERPRINT" };
			if (attribute.type === "MESSAGE-INTEGRITY") return { type: attribute.type, hmac: hex(attribute.hmac) };
			if (attribute.type === "unknown") return { type: attribute.type, code: attribute.code, value: hex(attribute.value) };
			if ("family" in attribute && attribute.family === "IPv6") return { ...attribute, address: canonical6(attribute.address) };
			return attribute;
		}),
	};
}

function checkStunDecode(bytes: Uint8Array): ReturnType<typeof decodeStun> {
	let result: ReturnType<typeof decodeStun>;
	try {
		result = decodeStun(bytes);
	} catch (error) {
		return fail(`decodeStun threw ${String(error)}`, bytes);
	}
	if (!result.ok && (!stunReasons.has(result.reason) || typeof result.detail !== "string")) fail("an unknown reason", bytes, result);
	if (!result.ok && result.detail.startsWith("unexpected:")) fail("decodeStun reached its last-resort catch", bytes, result.detail);
	return result;
}

const server: ServerAddresses = { primary: "203.0.113.10", alternate: "203.0.113.11", port: 3478, altPort: 3479 };
const dropReasons = new Set([...stunReasons, "not-a-request", "unsupported-method"]);

/** The server's handling of one datagram, as the stun-server agent does it (it counts a throw as internal-error). */
function checkResponder(bytes: Uint8Array): void {
	let reply: ReturnType<typeof respond>;
	try {
		reply = respond(bytes, { address: server.primary, port: server.port }, { address: "198.51.100.2", port: 40000 }, server);
	} catch (error) {
		return fail(`the STUN responder threw ${String(error)} (the server would count internal-error)`, bytes);
	}
	if (reply.kind === "drop") {
		if (!dropReasons.has(reply.reason)) fail("an unknown drop reason", bytes, reply);
		return;
	}
	const answer = decodeStun(reply.bytes);
	if (!answer.ok) fail("the responder sent an undecodable answer", bytes, answer);
	if (answer.ok && answer.message.class !== reply.kind) fail(`a ${reply.kind} reply encoded as ${answer.message.class}`, bytes);
}

test("STUN: random bytes never throw and never decode", (t) => {
	fc.assert(
		fc.property(randomDatagram, (bytes) => {
			const result = checkStunDecode(bytes);
			if (result.ok) fail("random bytes decoded", bytes);
			checkResponder(bytes);
		}),
		options(3000),
	);
	t.pass();
});

test("STUN: a valid header with a random body (the attribute parser's input) never throws", (t) => {
	const headed = fc.tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.array(fc.oneof(fc.uint8Array({ maxLength: 24 }), stunAttribute.map((attribute) => encodeStun({ method: 1, class: "request", transactionId: Buffer.alloc(12), attributes: [attribute] }).subarray(20))), { maxLength: 8 })).map(([type, id, parts]) => {
		const body = Buffer.concat(parts);
		const header = Buffer.alloc(20);
		header.writeUInt16BE(type, 0);
		header.writeUInt16BE(Math.min(body.length, 0xffff), 2);
		header.writeUInt32BE(0x2112a442, 4);
		Buffer.from(id).copy(header, 8);
		return Buffer.concat([header, body]);
	});
	let accepted = 0;
	fc.assert(
		fc.property(headed, (bytes) => {
			if (checkStunDecode(bytes).ok) accepted++;
			checkResponder(bytes);
		}),
		options(3000),
	);
	t.log(`${accepted} of ${runs(3000)} decoded`);
	t.true(accepted > 0, "some reach the end of the attribute parser");
});

test("STUN: valid messages round-trip: decode(encode(m)) is m, encode(decode(x)) is x", (t) => {
	fc.assert(
		fc.property(stunMessage, (message) => {
			const bytes = encodeStun(message);
			const result = checkStunDecode(bytes);
			if (!result.ok) return fail(`a valid message did not decode: ${result.reason} ${result.detail}`, bytes);
			t.deepEqual(comparable(result.message), comparable(message));
			const again = encodeStun(result.message);
			if (!again.equals(bytes)) fail("encode(decode(x)) differs from x", bytes, hex(again));
			checkResponder(bytes);
		}),
		options(2000),
	);
});

test("STUN: mutated valid messages (bit flips, truncation, extension, swaps, splices, length fields) never throw", (t) => {
	let accepted = 0;
	fc.assert(
		fc.property(stunMessage, mutations, (message, changes) => {
			const bytes = mutate(encodeStun(message), changes);
			const result = checkStunDecode(bytes);
			if (result.ok) accepted++;
			checkResponder(bytes);
		}),
		options(4000),
	);
	t.log(`${accepted} of ${runs(4000)} mutated messages still decode`);
	t.pass();
});

// ── hole punching ────────────────────────────────────────────────────────────────────────────────

const punchReasons = new Set<DecodeReason>(["empty", "oversized", "not-protocol", "truncated", "bad-version", "unknown-type", "bad-field"]);
const hexDigits = (length: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });
const nonce = hexDigits(32);
const tx = hexDigits(16);
const peerId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const endpoint = fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([address, portNumber]) => `${address}:${portNumber}`);
const hosts = fc.uniqueArray(endpoint, { maxLength: 8 });
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 200 });
const seq = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const interval = fc.integer({ min: 1, max: 10_000 });
const deadline = fc.integer({ min: 1, max: 600_000 });

const peerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
	fc.record({ t: fc.constant("probe" as const), n: nonce, from: peerId, tx }),
	fc.record({ t: fc.constant("ack" as const), n: nonce, from: peerId, tx, seen: endpoint }),
	fc.record({ t: fc.constant("ping" as const), n: nonce, from: peerId, seq }),
	fc.record({ t: fc.constant("pong" as const), n: nonce, from: peerId, seq }),
	fc.record({ t: fc.constant("ka" as const), n: nonce, from: peerId }),
);
const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
	fc.record({ t: fc.constant("register" as const), tx, id: peerId, host: hosts, token: nonce }, { requiredKeys: ["t", "tx", "id", "host"] }),
	fc.record({ t: fc.constant("connect" as const), tx, id: peerId, token: nonce, target: peerId, interval, deadline, relay: fc.boolean() }),
	fc.record({ t: fc.constant("start-ack" as const), id: peerId, token: nonce, n: nonce }),
	fc.record({ t: fc.constant("relay" as const), id: peerId, token: nonce, n: nonce, data: peerMessage }),
	fc.record({ t: fc.constant("unregister" as const), id: peerId, token: nonce }),
);
const punchMessage: fc.Arbitrary<Message> = fc.oneof(
	peerMessage,
	clientMessage,
	fc.record({ t: fc.constant("registered" as const), tx, id: peerId, token: nonce, reflexive: endpoint }),
	fc.record({ t: fc.constant("error" as const), tx, code: fc.constantFrom("unknown-peer" as const, "not-registered" as const, "self" as const, "table-full" as const), message: printable }, { requiredKeys: ["t", "code", "message"] }),
	fc.record({ t: fc.constant("start" as const), n: nonce, id: peerId, peer: peerId, host: hosts, srflx: endpoint, role: fc.constantFrom("initiator" as const, "responder" as const), interval, deadline, relay: fc.boolean(), at: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) }),
	fc.record({ t: fc.constant("relayed" as const), n: nonce, from: peerId, data: peerMessage }),
);

function checkPunchDecode(bytes: Uint8Array): ReturnType<typeof decode> {
	let result: ReturnType<typeof decode>;
	try {
		result = decode(bytes);
	} catch (error) {
		return fail(`decode threw ${String(error)}`, bytes);
	}
	if (!result.ok && !punchReasons.has(result.reason)) fail("an unknown reason", bytes, result);
	if (!result.ok && result.detail === "internal") fail("decode reached its last-resort catch", bytes, result);
	if (result.ok) {
		// What is accepted is canonical: exactly the bytes encode() writes for it.
		const again = encode(result.message);
		if (!again || !again.equals(Buffer.from(bytes))) fail("an accepted datagram is not what encode() writes for it", bytes, again?.toString("latin1"));
	}
	return result;
}

test("punch: random bytes never throw and never decode", (t) => {
	fc.assert(
		fc.property(randomDatagram, (bytes) => {
			if (checkPunchDecode(bytes).ok) fail("random bytes decoded", bytes);
		}),
		options(3000),
	);
	t.pass();
});

test("punch: JSON objects of any shape behind the protocol's magic never throw; what decodes is canonical", (t) => {
	const types = ["probe", "ack", "ping", "pong", "ka", "register", "connect", "start-ack", "relay", "unregister", "registered", "error", "start", "relayed", "__proto__", "constructor", "toString"];
	const keys = fc.constantFrom("n", "from", "tx", "seen", "seq", "id", "host", "token", "target", "interval", "deadline", "relay", "data", "reflexive", "code", "message", "peer", "srflx", "role", "at", "tbp", "t", "__proto__", "constructor");
	const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), nonce, tx, peerId, endpoint, hosts, seq, peerMessage);
	const objects = fc.tuple(fc.constantFrom(...types), fc.dictionary(keys, value, { maxKeys: 8 }), fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 }), fc.dictionary(fc.constantFrom("toString", "valueOf", "toJSON", "x"), fc.jsonValue({ maxDepth: 0 }), { minKeys: 1, maxKeys: 2 }))).map(([type, fields, version]) => `{"tbp":${JSON.stringify(version) ?? 1},"t":${JSON.stringify(type)}${Object.keys(fields).length ? "," : ""}${JSON.stringify(fields).slice(1)}`);
	let accepted = 0;
	fc.assert(
		fc.property(objects, (text) => {
			if (checkPunchDecode(Buffer.from(text, "latin1")).ok) accepted++;
		}),
		options(3000),
	);
	t.log(`${accepted} decoded`);
	t.pass();
});

test("punch: a version field that is an object with a non-function toString is refused without reaching decode()'s last-resort catch", (t) => {
	// String(object.tbp) throws "Cannot convert object to primitive value"; decode() survives only
	// through its catch-all, and reports the datagram as bad-field with detail "internal".
	const bytes = Buffer.from('{"tbp":{"toString":0},"t":"probe"}', "latin1");
	const result = decode(bytes);
	t.false(result.ok);
	if (!result.ok) t.is(result.reason, "bad-version", `reason ${result.reason}, detail ${result.detail}`);
});

test("punch: valid messages round-trip: decode(encode(m)) is m, encode(decode(x)) is x", (t) => {
	fc.assert(
		fc.property(punchMessage, (message) => {
			const bytes = encode(message);
			if (!bytes) throw new Error(`encode refused a valid message ${JSON.stringify(message)}`);
			if (bytes.length > maxDatagram) throw new Error(`an encoded message of ${bytes.length} bytes`);
			const result = checkPunchDecode(bytes);
			if (!result.ok) return fail(`a valid message did not decode: ${result.reason} ${result.detail ?? ""}`, bytes);
			t.deepEqual(result.message, message);
		}),
		options(3000),
	);
});

test("punch: mutated valid messages never throw; what still decodes is canonical", (t) => {
	let accepted = 0;
	fc.assert(
		fc.property(punchMessage, mutations, (message, changes) => {
			const bytes = mutate(encode(message)!, changes.filter((change) => change.op !== "length" && change.op !== "fix-length"));
			if (checkPunchDecode(bytes).ok) accepted++;
		}),
		options(4000),
	);
	t.log(`${accepted} of ${runs(4000)} mutated messages still decode`);
	t.pass();
});

test("rendezvous core: random and mutated datagrams never reach internal-error, and all it sends decodes", (t) => {
	const core = new RendezvousCore({ ...defaultLimits, burst: 1e9, perSecond: 1e9 });
	// Real registrations and a session, so that tokens, ids and nonces exist to be spoofed.
	let now = 1000;
	const tokens = new Map<string, string>();
	for (const [id, from] of [
		["alice.1", "198.51.100.2:40000"],
		["bob.1", "198.51.100.6:40000"],
	] as const) {
		const [reply] = core.handle(encode({ t: "register", tx: "0123456789abcdef", id, host: ["192.168.1.2:40000"] })!, from, now);
		const decoded = decode(reply.bytes);
		if (decoded.ok && decoded.message.t === "registered") tokens.set(id, decoded.message.token);
	}
	t.is(tokens.size, 2);
	core.handle(encode({ t: "connect", tx: "0123456789abcdef", id: "alice.1", token: tokens.get("alice.1")!, target: "bob.1", interval: 20, deadline: 1000, relay: true })!, "198.51.100.2:40000", now);
	const source = fc.constantFrom("198.51.100.2:40000", "198.51.100.6:40000", "203.0.113.99:1234", "192.168.1.2:40000");
	const datagram = fc.oneof(
		randomDatagram,
		fc.tuple(clientMessage, mutations).map(([message, changes]) => mutate(encode(message) ?? Buffer.alloc(0), changes.filter((change) => change.op !== "length" && change.op !== "fix-length"))),
		clientMessage.map((message) => encode(message) ?? new Uint8Array()),
		// Real ids and tokens in otherwise random messages.
		fc.tuple(clientMessage, fc.constantFrom("alice.1", "bob.1"), fc.boolean()).map(([message, id, withToken]) => encode({ ...message, id, ...("token" in message && withToken ? { token: tokens.get(id)! } : {}) } as Message) ?? new Uint8Array()),
	);
	let sent = 0;
	fc.assert(
		fc.property(datagram, source, (bytes, from) => {
			now += 7;
			const out = [...core.handle(bytes, from, now), ...core.tick(now)];
			for (const { to, bytes: reply } of out) {
				sent++;
				if (!/^\d+\.\d+\.\d+\.\d+:\d+$/.test(to)) fail(`a reply to ${to}`, bytes);
				if (!decode(reply).ok) fail("the rendezvous sent an undecodable datagram", bytes, reply.toString("latin1"));
			}
		}),
		options(4000),
	);
	const stats = core.stats();
	t.log(`received ${stats.received}, sent ${sent}, dropped ${JSON.stringify(stats.dropped)}`);
	t.is(stats.dropped["internal-error"], undefined);
	t.true(stats.droppedTotal > 0);
});

test("punch session: random peer messages (right and wrong nonce, any source, the relay) never throw; every send encodes", (t) => {
	const sessionNonce = "0123456789abcdef0123456789abcdef";
	const ours = peerMessage.map((message) => ({ ...message, n: sessionNonce, from: "bob.1" }) as PeerMessage);
	// Our tx ids are a counter, so acks can echo them.
	const acks = fc.tuple(fc.integer({ min: 0, max: 40 }), endpoint).map(([id, seen]) => ({ t: "ack" as const, n: sessionNonce, from: "bob.1", tx: id.toString(16).padStart(16, "0"), seen }));
	const message = fc.oneof({ weight: 1, arbitrary: peerMessage }, { weight: 3, arbitrary: ours }, { weight: 3, arbitrary: acks });
	const from = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("192.168.1.2:40000", "198.51.100.6:40000", relayVia) }, { weight: 1, arbitrary: endpoint });
	const phases = new Map<string, number>();
	let actions = 0;
	fc.assert(
		fc.property(fc.array(fc.tuple(message, from, fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 40 }), fc.boolean(), (steps, relay) => {
			let counter = 0;
			let now = 0;
			const session = new PunchStateMachine({
				self: "alice.1",
				peer: "bob.1",
				nonce: sessionNonce,
				peerHost: ["192.168.1.2:40000"],
				peerReflexive: "198.51.100.6:40000",
				selfReflexive: "198.51.100.2:40000",
				intervalMs: 20,
				deadlineMs: 1000,
				relay,
				startedAt: 0,
				newTx: () => (counter++).toString(16).padStart(16, "0"),
			});
			for (const [received, source, advance] of steps) {
				now += advance;
				const result = session.receive(now, source, received);
				for (const action of [...result.actions, ...session.tick(now)]) {
					actions++;
					if (action.kind === "send" && !encode(action.message)) throw new Error(`the session sends an unencodable ${JSON.stringify(action.message)}`);
				}
			}
			phases.set(session.phase, (phases.get(session.phase) ?? 0) + 1);
		}),
		options(1500),
	);
	t.log(`${actions} actions; final phases ${JSON.stringify(Object.fromEntries(phases))}`);
	t.true((phases.get("connected") ?? 0) + (phases.get("measuring") ?? 0) > 0, "some sessions get as far as a confirmed path");
});

// ── reach ────────────────────────────────────────────────────────────────────────────────────────

const reachMessage: fc.Arbitrary<ReachMessage> = fc.oneof(
	fc.record({ type: fc.constant("ping" as const), nonce: hexDigits(16) }),
	fc.record({ type: fc.constant("pong" as const), nonce: hexDigits(16), node: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/) }),
);

function checkReachDecode(bytes: Uint8Array): ReachMessage | undefined {
	let message: ReachMessage | undefined;
	try {
		message = decodeReach(Buffer.from(bytes));
	} catch (error) {
		return fail(`decodeReach threw ${String(error)}`, bytes);
	}
	if (message && !encodeReach(message).equals(Buffer.from(bytes))) fail("an accepted datagram is not what encodeReach() writes for it", bytes, message);
	return message;
}

test("reach: random bytes never throw and never decode", (t) => {
	fc.assert(
		fc.property(randomDatagram, (bytes) => {
			if (checkReachDecode(bytes) !== undefined) fail("random bytes decoded", bytes);
		}),
		options(3000),
	);
	t.pass();
});

test("reach: valid messages round-trip; mutated ones never throw, and what still decodes is canonical", (t) => {
	let accepted = 0;
	fc.assert(
		fc.property(reachMessage, mutations, (message, changes) => {
			const bytes = encodeReach(message);
			t.deepEqual(checkReachDecode(bytes), message);
			if (checkReachDecode(mutate(bytes, changes.filter((change) => change.op !== "length" && change.op !== "fix-length")))) accepted++;
		}),
		options(3000),
	);
	t.log(`${accepted} of ${runs(3000)} mutated messages still decode`);
});
