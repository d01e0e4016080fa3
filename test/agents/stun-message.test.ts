// The STUN codec: round trips, the RFC 5769 test vectors, and malformed input (a reason, never a throw).
import { createHash, createHmac, randomBytes } from "node:crypto";
import test from "ava";
import { type DecodeReason, type StunAttribute, type StunMessage, attributeCodes, bindingRequest, decodeStun, encodeStun, fingerprintOf, getAttribute, looksLikeStun, messageType, unknownRequired } from "../../agents/stun/message.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");
const transactionId = hex("b7e7a701 bc34d686 fa87dfae");

// RFC 5769 section 2: the published test vectors (password for 2.1-2.3: "VOkJxbRl1RmTxUk/WvJxBt").
const sampleRequest = hex(`
	00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
	80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
	00 24 00 04 6e 00 01 ff
	80 29 00 08 93 2f f9 b1 51 26 3b 36
	00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
	00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
	80 28 00 04 e5 7a 3b cf`);
const sampleIpv4Response = hex(`
	01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
	80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
	00 20 00 08 00 01 a1 47 e1 12 a6 43
	00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
	80 28 00 04 c0 7d 4c 96`);
const sampleIpv6Response = hex(`
	01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
	80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
	00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
	00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
	80 28 00 04 c8 fb 0b 4c`);
const sampleLongTermRequest = hex(`
	00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
	00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
	00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
	00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
	00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66`);
const shortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";

function decoded(bytes: Uint8Array): StunMessage {
	const result = decodeStun(bytes);
	if (!result.ok) throw new Error(`expected a message, got ${result.reason}: ${result.detail}`);
	return result.message;
}

/** RFC 5389 15.4: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the length field ending at it. */
function integrityOf(bytes: Buffer, key: string | Buffer): Buffer {
	let offset = 20;
	while (bytes.readUInt16BE(offset) !== attributeCodes["MESSAGE-INTEGRITY"]) offset += 4 + Math.ceil(bytes.readUInt16BE(offset + 2) / 4) * 4;
	const covered = Buffer.from(bytes.subarray(0, offset));
	covered.writeUInt16BE(offset + 24 - 20, 2);
	return createHmac("sha1", key).update(covered).digest();
}

// ── known answers ────────────────────────────────────────────────────────────────────────────────

test("RFC 5769 2.1 sample request: header, SOFTWARE, unknown attributes kept, MESSAGE-INTEGRITY parsed, FINGERPRINT verified", (t) => {
	const message = decoded(sampleRequest);
	t.is(message.class, "request");
	t.is(message.method, 0x001);
	t.deepEqual(message.transactionId, transactionId);
	t.deepEqual(message.attributes.map((attribute) => (attribute.type === "unknown" ? attribute.code : attribute.type)), ["SOFTWARE", 0x0024, 0x8029, 0x0006, "MESSAGE-INTEGRITY", "FINGERPRINT"]);
	t.is(getAttribute(message, "SOFTWARE")?.text, "STUN test client");
	t.deepEqual((message.attributes[3] as { value: Buffer }).value, Buffer.from("evtj:h6vY"));
	t.is(getAttribute(message, "FINGERPRINT")?.crc, 0xe57a3bcf);
	t.deepEqual(unknownRequired(message), [0x0024, 0x0006], "PRIORITY and USERNAME are comprehension-required and unknown to this codec");
	t.deepEqual(getAttribute(message, "MESSAGE-INTEGRITY")?.hmac, integrityOf(sampleRequest, shortTermPassword), "the parsed HMAC is the one the RFC's password gives");
});

test("RFC 5769 2.2 sample IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853", (t) => {
	const message = decoded(sampleIpv4Response);
	t.is(message.class, "success");
	t.is(message.method, 0x001);
	t.deepEqual(message.transactionId, transactionId);
	t.deepEqual(getAttribute(message, "XOR-MAPPED-ADDRESS"), { type: "XOR-MAPPED-ADDRESS", family: "IPv4", address: "192.0.2.1", port: 32853 });
	t.is(getAttribute(message, "SOFTWARE")?.text, "test vector");
	t.is(getAttribute(message, "FINGERPRINT")?.crc, 0xc07d4c96);
	t.is(fingerprintOf(sampleIpv4Response.subarray(0, sampleIpv4Response.length - 8)), 0xc07d4c96);
	t.deepEqual(getAttribute(message, "MESSAGE-INTEGRITY")?.hmac, integrityOf(sampleIpv4Response, shortTermPassword));
});

test("RFC 5769 2.3 sample IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853", (t) => {
	const message = decoded(sampleIpv6Response);
	t.deepEqual(getAttribute(message, "XOR-MAPPED-ADDRESS"), { type: "XOR-MAPPED-ADDRESS", family: "IPv6", address: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 });
	t.is(getAttribute(message, "FINGERPRINT")?.crc, 0xc8fb0b4c);
});

test("RFC 5769 2.4 long-term request: no FINGERPRINT, USERNAME/NONCE/REALM kept as unknown, MESSAGE-INTEGRITY parsed", (t) => {
	const message = decoded(sampleLongTermRequest);
	t.is(message.class, "request");
	t.deepEqual(message.attributes.map((attribute) => (attribute.type === "unknown" ? attribute.code : attribute.type)), [0x0006, 0x0015, 0x0014, "MESSAGE-INTEGRITY"]);
	t.is((message.attributes[0] as { value: Buffer }).value.toString("utf8"), "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9");
	t.is(getAttribute(message, "FINGERPRINT"), undefined);
	const key = createHash("md5").update("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9:example.org:TheMatrIX").digest();
	t.deepEqual(getAttribute(message, "MESSAGE-INTEGRITY")?.hmac, integrityOf(sampleLongTermRequest, key));
});

test("the encoder writes the RFC 5769 XOR-MAPPED-ADDRESS bytes for IPv4 and IPv6", (t) => {
	const encode = (address: string, family: "IPv4" | "IPv6") => encodeStun({ method: 1, class: "success", transactionId, attributes: [{ type: "XOR-MAPPED-ADDRESS", family, address, port: 32853 }] }).subarray(20);
	t.deepEqual(encode("192.0.2.1", "IPv4"), sampleIpv4Response.subarray(36, 48));
	t.deepEqual(encode("2001:db8:1234:5678:11:2233:4455:6677", "IPv6"), sampleIpv6Response.subarray(36, 60));
});

test("message types: the class bits are interleaved with the method bits", (t) => {
	t.is(messageType(0x001, "request"), 0x0001);
	t.is(messageType(0x001, "indication"), 0x0011);
	t.is(messageType(0x001, "success"), 0x0101);
	t.is(messageType(0x001, "error"), 0x0111);
	t.is(messageType(0xfff, "error"), 0x3fff);
	for (const method of [0x001, 0x003, 0x07f, 0x080, 0xabc, 0xfff]) {
		for (const stunClass of ["request", "indication", "success", "error"] as const) {
			const message = decoded(encodeStun({ method, class: stunClass, transactionId, attributes: [] }));
			t.deepEqual([message.method, message.class], [method, stunClass]);
		}
	}
});

// ── round trips ──────────────────────────────────────────────────────────────────────────────────

const roundTrips: [string, StunAttribute][] = [
	["MAPPED-ADDRESS", { type: "MAPPED-ADDRESS", family: "IPv4", address: "198.51.100.2", port: 40000 }],
	["MAPPED-ADDRESS IPv6", { type: "MAPPED-ADDRESS", family: "IPv6", address: "2001:db8::1", port: 1 }],
	["XOR-MAPPED-ADDRESS", { type: "XOR-MAPPED-ADDRESS", family: "IPv4", address: "203.0.113.10", port: 65535 }],
	["XOR-MAPPED-ADDRESS IPv6", { type: "XOR-MAPPED-ADDRESS", family: "IPv6", address: "fe80::1:2:0:0:3", port: 0 }],
	["XOR-MAPPED-ADDRESS IPv4-mapped IPv6", { type: "XOR-MAPPED-ADDRESS", family: "IPv6", address: "::ffff:c000:201", port: 5 }],
	["RESPONSE-ORIGIN", { type: "RESPONSE-ORIGIN", family: "IPv4", address: "203.0.113.11", port: 3479 }],
	["OTHER-ADDRESS", { type: "OTHER-ADDRESS", family: "IPv4", address: "0.0.0.0", port: 3479 }],
	["CHANGE-REQUEST change-IP", { type: "CHANGE-REQUEST", changeIp: true, changePort: false }],
	["CHANGE-REQUEST change-port", { type: "CHANGE-REQUEST", changeIp: false, changePort: true }],
	["CHANGE-REQUEST both", { type: "CHANGE-REQUEST", changeIp: true, changePort: true }],
	["CHANGE-REQUEST none", { type: "CHANGE-REQUEST", changeIp: false, changePort: false }],
	["RESPONSE-PORT", { type: "RESPONSE-PORT", port: 50123 }],
	["SOFTWARE", { type: "SOFTWARE", text: "testbed ✓ 1.0" }],
	["SOFTWARE empty", { type: "SOFTWARE", text: "" }],
	["ERROR-CODE", { type: "ERROR-CODE", code: 420, reason: "Unknown Attribute" }],
	["ERROR-CODE 699", { type: "ERROR-CODE", code: 699, reason: "" }],
	["UNKNOWN-ATTRIBUTES", { type: "UNKNOWN-ATTRIBUTES", types: [0x0024, 0x0006, 0x7fff] }],
	["MESSAGE-INTEGRITY", { type: "MESSAGE-INTEGRITY", hmac: Buffer.alloc(20, 7) }],
	["unknown comprehension-optional", { type: "unknown", code: 0xc057, value: Buffer.from([1, 2, 3]) }],
	["unknown comprehension-required", { type: "unknown", code: 0x0024, value: Buffer.from([0x6e, 0, 1, 0xff]) }],
];

for (const [name, attribute] of roundTrips) {
	test(`round trip: ${name}, with and without FINGERPRINT`, (t) => {
		for (const fingerprint of [false, true]) {
			const message: StunMessage = { method: 1, class: "success", transactionId: randomBytes(12), attributes: fingerprint ? [attribute, { type: "FINGERPRINT", crc: 0 }] : [attribute] };
			const bytes = encodeStun(message);
			t.is(bytes.length % 4, 0);
			t.true(looksLikeStun(bytes));
			const back = decoded(bytes);
			t.deepEqual(back.attributes[0], attribute);
			t.deepEqual(back.transactionId, message.transactionId);
			t.deepEqual(encodeStun(back), bytes, "encode(decode(x)) is x");
		}
	});
}

test("round trip: every attribute in one message", (t) => {
	const attributes = roundTrips.map(([, attribute]) => attribute).filter((attribute) => attribute.type !== "MESSAGE-INTEGRITY");
	const message: StunMessage = { method: 1, class: "request", transactionId, attributes: [...attributes, { type: "FINGERPRINT", crc: 0 }] };
	const back = decoded(encodeStun(message));
	t.deepEqual(back.attributes.slice(0, -1), attributes);
	t.is(back.attributes.at(-1)?.type, "FINGERPRINT");
});

test("bindingRequest builds CHANGE-REQUEST and RESPONSE-PORT", (t) => {
	const message = decoded(encodeStun(bindingRequest(transactionId, { changeIp: true, changePort: true, responsePort: 4000, fingerprint: true })));
	t.deepEqual(getAttribute(message, "CHANGE-REQUEST"), { type: "CHANGE-REQUEST", changeIp: true, changePort: true });
	t.deepEqual(getAttribute(message, "RESPONSE-PORT"), { type: "RESPONSE-PORT", port: 4000 });
	t.deepEqual(encodeStun(bindingRequest(transactionId)), hex("0001 0000 2112a442 b7e7a701 bc34d686 fa87dfae"));
});

test("the encoder refuses what cannot go on the wire", (t) => {
	const message = (attributes: StunAttribute[], id = transactionId): StunMessage => ({ method: 1, class: "success", transactionId: id, attributes });
	t.throws(() => encodeStun(message([], Buffer.alloc(11))), { message: /12 bytes/ });
	t.throws(() => encodeStun(message([{ type: "FINGERPRINT", crc: 0 }, { type: "SOFTWARE", text: "x" }])), { message: /last/ });
	t.throws(() => encodeStun(message([{ type: "MAPPED-ADDRESS", family: "IPv4", address: "256.1.1.1", port: 1 }])), { message: /not an IPv4/ });
	t.throws(() => encodeStun(message([{ type: "MAPPED-ADDRESS", family: "IPv6", address: "1.2.3.4", port: 1 }])), { message: /not an IPv6/ });
	t.throws(() => encodeStun(message([{ type: "MAPPED-ADDRESS", family: "IPv4", address: "1.2.3.4", port: 65536 }])), { message: /port/ });
	t.throws(() => encodeStun(message([{ type: "ERROR-CODE", code: 200, reason: "" }])), { message: /300-699/ });
	t.throws(() => encodeStun(message([{ type: "SOFTWARE", text: "x".repeat(128) }])), { message: /128/ });
});

// ── malformed input ──────────────────────────────────────────────────────────────────────────────

const valid = encodeStun({
	method: 1,
	class: "success",
	transactionId,
	attributes: [
		{ type: "XOR-MAPPED-ADDRESS", family: "IPv4", address: "198.51.100.2", port: 40000 },
		{ type: "SOFTWARE", text: "abc" },
		{ type: "FINGERPRINT", crc: 0 },
	],
});

function patched(bytes: Buffer, edit: (copy: Buffer) => void): Buffer {
	const copy = Buffer.from(bytes);
	edit(copy);
	return copy;
}

/** A message with these raw attribute bytes (and a correct length field). */
function withBody(body: Buffer, type = 0x0101): Buffer {
	const header = Buffer.alloc(20);
	header.writeUInt16BE(type, 0);
	header.writeUInt16BE(body.length, 2);
	header.writeUInt32BE(0x2112a442, 4);
	transactionId.copy(header, 8);
	return Buffer.concat([header, body]);
}

const malformed: [string, Buffer, DecodeReason, RegExp?][] = [
	["empty datagram", Buffer.alloc(0), "truncated-header", /0 bytes/],
	["19 bytes", valid.subarray(0, 19), "truncated-header", /19 bytes/],
	["first two bits set", patched(valid, (b) => (b[0] |= 0x80)), "not-stun"],
	["bad magic cookie", patched(valid, (b) => b.writeUInt32BE(0x2112a443, 4)), "bad-cookie", /0x2112a443/],
	["RFC 3489 message (no cookie)", patched(valid, (b) => b.writeUInt32BE(0x12345678, 4)), "bad-cookie"],
	["length not a multiple of 4", patched(valid, (b) => b.writeUInt16BE(b.readUInt16BE(2) - 1, 2)), "bad-length"],
	["datagram cut short", valid.subarray(0, valid.length - 4), "length-mismatch"],
	["trailing bytes", Buffer.concat([valid, Buffer.alloc(4)]), "length-mismatch"],
	["attribute overruns the message", withBody(hex("8022 0009 61626364")), "attribute-overrun", /0x8022/],
	["attribute padding missing (message length 9)", withBody(hex("8022 0005 61626364 65")), "bad-length"],
	["padding runs past the end", withBody(hex("8022 0003 616263 00 8022 0005 61626364")), "attribute-overrun"],
	["bad fingerprint", patched(valid, (b) => (b[b.length - 1] ^= 1)), "bad-fingerprint"],
	["body changed under the fingerprint", patched(valid, (b) => (b[30] ^= 1)), "bad-fingerprint"],
	["fingerprint not last", withBody(hex("8028 0004 00000000 8022 0000")), "fingerprint-not-last"],
	["fingerprint with length 8", withBody(hex("8028 0008 00000000 00000000")), "bad-attribute"],
	["address family 3", withBody(hex("0001 0008 0003 1234 01020304")), "bad-attribute", /family 3/],
	["IPv4 address with length 12", withBody(hex("0020 000c 0001 1234 01020304 00000000")), "bad-attribute"],
	["IPv6 family with IPv4 length", withBody(hex("802c 0008 0002 1234 01020304")), "bad-attribute"],
	["empty address attribute", withBody(hex("802b 0000")), "bad-attribute"],
	["CHANGE-REQUEST with length 2", withBody(hex("0003 0002 0006 0000")), "bad-attribute"],
	["RESPONSE-PORT with length 3", withBody(hex("0027 0003 123400 00")), "bad-attribute"],
	["RESPONSE-PORT with length 8", withBody(hex("0027 0008 1234 0000 00000000")), "bad-attribute"],
	["SOFTWARE not UTF-8", withBody(hex("8022 0002 c328 0000")), "bad-attribute", /UTF-8/],
	["ERROR-CODE class 2", withBody(hex("0009 0004 0000 0200")), "bad-attribute", /class 2/],
	["ERROR-CODE number 100", withBody(hex("0009 0004 0000 0464")), "bad-attribute"],
	["ERROR-CODE too short", withBody(hex("0009 0002 0004 0000")), "bad-attribute"],
	["UNKNOWN-ATTRIBUTES odd length", withBody(hex("000a 0003 002400 00")), "bad-attribute"],
	["MESSAGE-INTEGRITY with length 16", withBody(Buffer.concat([hex("0008 0010"), Buffer.alloc(16)])), "bad-attribute"],
];

for (const [name, bytes, reason, detail] of malformed) {
	test(`malformed: ${name} → ${reason}`, (t) => {
		const result = decodeStun(bytes);
		t.false(result.ok);
		if (result.ok) return;
		t.is(result.reason, reason, result.detail);
		if (detail) t.regex(result.detail, detail);
	});
}

test("attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored (RFC 5389 15.4)", (t) => {
	const message = decoded(withBody(Buffer.concat([hex("0008 0014"), Buffer.alloc(20), hex("8022 0001 41000000")])));
	t.deepEqual(message.attributes.map((attribute) => attribute.type), ["MESSAGE-INTEGRITY"]);
});

test("the reserved first byte of an address is ignored; unused CHANGE-REQUEST bits too", (t) => {
	const message = decoded(withBody(hex("0001 0008 ff01 1234 01020304 0003 0004 fffffff9")));
	t.deepEqual(getAttribute(message, "MAPPED-ADDRESS"), { type: "MAPPED-ADDRESS", family: "IPv4", address: "1.2.3.4", port: 0x1234 });
	t.deepEqual(getAttribute(message, "CHANGE-REQUEST"), { type: "CHANGE-REQUEST", changeIp: false, changePort: false });
});

test("RESPONSE-PORT is read with length 4 (port and padding) and with length 2", (t) => {
	t.deepEqual(getAttribute(decoded(withBody(hex("0027 0004 1234 0000"))), "RESPONSE-PORT"), { type: "RESPONSE-PORT", port: 0x1234 });
	t.deepEqual(getAttribute(decoded(withBody(hex("0027 0002 1234 0000"))), "RESPONSE-PORT"), { type: "RESPONSE-PORT", port: 0x1234 });
});

test("decode reads a Uint8Array view at an offset, not the whole underlying buffer", (t) => {
	const big = new Uint8Array(valid.length + 10);
	big.set(valid, 7);
	t.true(decodeStun(big.subarray(7, 7 + valid.length)).ok);
});

/** A small deterministic generator, so that a failure can be replayed. */
function generator(seed: number) {
	let state = seed >>> 0 || 1;
	return () => {
		state ^= state << 13;
		state ^= state >>> 17;
		state ^= state << 5;
		return (state >>> 0) / 0x100000000;
	};
}

test("random bytes, 20,000 datagrams: decode never throws and every rejection has a reason", (t) => {
	const random = generator(5389);
	const reasons = new Map<string, number>();
	for (let i = 0; i < 20_000; i++) {
		const length = Math.floor(random() * 120);
		const bytes = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
		if (i % 2 === 0 && length >= 20) {
			// half of them get past the header checks, so that the attribute walk is exercised too
			bytes[0] &= 0x3f;
			bytes.writeUInt32BE(0x2112a442, 4);
			bytes.writeUInt16BE((length - 20) & ~3, 2);
		}
		const result = decodeStun(bytes);
		if (!result.ok) {
			t.true(typeof result.detail === "string" && result.detail.length > 0);
			reasons.set(result.reason, (reasons.get(result.reason) ?? 0) + 1);
		}
	}
	t.true(reasons.size >= 5, `several reasons seen: ${[...reasons.keys()].join(", ")}`);
});

test("mutated valid messages, 20,000 of them: decode never throws; a changed byte under the fingerprint never passes", (t) => {
	const random = generator(5780);
	const bases = [valid, sampleRequest, sampleIpv4Response, sampleIpv6Response, sampleLongTermRequest];
	let acceptedWithFingerprint = 0;
	for (let i = 0; i < 20_000; i++) {
		const base = bases[i % bases.length];
		const bytes = Buffer.from(base);
		const flips = 1 + Math.floor(random() * 3);
		for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] ^= 1 + Math.floor(random() * 255);
		const cut = random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
		const result = decodeStun(cut);
		if (result.ok && getAttribute(result.message, "FINGERPRINT") && !cut.equals(base)) acceptedWithFingerprint++;
	}
	t.is(acceptedWithFingerprint, 0);
});
