// The hole punching wire format: every message round-trips; anything else — random bytes,
// truncations, oversized datagrams, other versions, stray keys — is a reason, never a throw.
import { randomBytes } from "node:crypto";
import test from "ava";
import { type DecodeReason, type Message, decode, decodeMessage, encode, endpointOf, maxDatagram, splitEndpoint } from "../../agents/punch/protocol.ts";

const n = "0123456789abcdef0123456789abcdef";
const token = "fedcba9876543210fedcba9876543210";
const tx = "00112233aabbccdd";

const samples: Message[] = [
	{ t: "probe", n, from: "alice.3", tx },
	{ t: "ack", n, from: "bob.3", tx, seen: "198.51.100.2:40000" },
	{ t: "ping", n, from: "alice.3", seq: 1 },
	{ t: "pong", n, from: "bob.3", seq: 2 ** 31 - 1 },
	{ t: "ka", n, from: "alice.3" },
	{ t: "register", tx, id: "alice.3", host: ["192.168.1.2:40000", "10.0.0.1:40000"] },
	{ t: "register", tx, id: "alice.3", host: [], token },
	{ t: "register", tx, id: "alice.3", host: ["192.168.1.2:40000"], claim: token },
	{ t: "connect", tx, id: "alice.3", token, target: "bob.3", interval: 20, deadline: 5000, relay: true },
	{ t: "connect", tx, id: "alice.3", token, target: "bob.3", interval: 20, deadline: 5000, relay: false, keepalive: 250, lossAfter: 1500, after: n },
	{ t: "start-ack", id: "bob.3", token, n },
	{ t: "relay", id: "alice.3", token, n, data: { t: "probe", n, from: "alice.3", tx } },
	{ t: "unregister", id: "alice.3", token },
	{ t: "registered", tx, id: "alice.3", token, reflexive: "198.51.100.2:40000" },
	{ t: "error", tx, code: "unknown-peer", message: 'no peer registered as "carol.1"' },
	{ t: "error", code: "not-registered", message: "register first" },
	{ t: "start", n, id: "alice.3", peer: "bob.3", host: ["192.168.1.2:5000"], srflx: "198.51.100.6:5000", role: "initiator", interval: 20, deadline: 3000, relay: false, at: 1_700_000_000_000 },
	{ t: "start", n, id: "bob.3", peer: "alice.3", host: [], srflx: "198.51.100.2:5000", role: "responder", interval: 20, deadline: 3000, relay: true, at: 0, keepalive: 60_000, lossAfter: 600_000 },
	{ t: "relayed", n, from: "bob.3", data: { t: "ack", n, from: "bob.3", tx, seen: "203.0.113.10:7777" } },
	// Port mapping: the endpoint a peer's gateway granted it, registered and passed on in "start".
	{ t: "register", tx, id: "alice.3", host: ["192.168.1.2:40000"], claim: token, mapped: "11.0.0.2:40001" },
	{ t: "register", tx, id: "alice.3", host: [], token, mapped: "11.0.0.2:40001" },
	{ t: "start", n, id: "bob.3", peer: "alice.3", host: ["192.168.1.2:40000"], srflx: "11.0.0.2:20001", role: "responder", interval: 20, deadline: 3000, relay: true, at: 0, mapped: "11.0.0.2:40001" },
	{ t: "start", n, id: "bob.3", peer: "alice.3", host: [], srflx: "11.0.0.2:20001", role: "responder", interval: 20, deadline: 3000, relay: true, at: 0, keepalive: 250, lossAfter: 1500, mapped: "11.0.0.2:40001" },
];

for (const [index, message] of samples.entries()) {
	test(`round trip #${index + 1}: ${message.t}`, (t) => {
		const bytes = encode(message);
		t.truthy(bytes);
		t.true(bytes!.length <= maxDatagram);
		t.deepEqual(decodeMessage(bytes!), message);
	});
}

test("held-session fields are optional and come last, in schema order", (t) => {
	t.is(
		encode({ t: "connect", tx, id: "a", token, target: "b", interval: 20, deadline: 1000, relay: true, after: n, keepalive: 250 })!.toString(),
		`{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"keepalive":250,"after":"${n}"}`,
	);
	t.is(encode({ t: "register", tx, id: "a", host: [], claim: token, token })!.toString(), `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"token":"${token}","claim":"${token}"}`);
});

test("the mapped endpoint is optional and comes last; without it a message is byte for byte what it was", (t) => {
	t.is(encode({ t: "register", tx, id: "a", host: [], mapped: "11.0.0.2:40001", claim: token })!.toString(), `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"claim":"${token}","mapped":"11.0.0.2:40001"}`);
	t.is(encode({ t: "register", tx, id: "a", host: [], mapped: undefined })!.toString(), `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[]}`);
	t.is(encode({ t: "register", tx, id: "a", host: [], mapped: "11.0.0.2:0" }), undefined, "a bad mapped endpoint is refused by encode too");
});

test("the datagram is JSON text a person can read in a capture, protocol and version first", (t) => {
	t.is(encode({ t: "probe", n, from: "alice.3", tx })!.toString(), `{"tbp":1,"t":"probe","n":"${n}","from":"alice.3","tx":"${tx}"}`);
	t.is(encode({ t: "relay", id: "a", token, n, data: { t: "ka", n, from: "a" } })!.toString(), `{"tbp":1,"t":"relay","id":"a","token":"${token}","n":"${n}","data":{"t":"ka","n":"${n}","from":"a"}}`);
});

const refused: [string, Buffer | string, DecodeReason][] = [
	["empty", "", "empty"],
	["oversized", Buffer.alloc(maxDatagram + 1, 0x20), "oversized"],
	["oversized but otherwise valid", `{"tbp":1,"t":"ka","n":"${n}","from":"a"}${" ".repeat(maxDatagram)}`, "oversized"],
	["not our protocol", "hello", "not-protocol"],
	["a STUN binding request", Buffer.from("000100002112a442b7e7a701bc34d686fa87dfae", "hex"), "not-protocol"],
	["JSON of another shape", `{"t":"probe","tbp":1}`, "not-protocol"],
	["a prefix of the magic", `{"tb`, "truncated"],
	["version 2", `{"tbp":2,"t":"ka","n":"${n}","from":"a"}`, "bad-version"],
	["version as text", `{"tbp":"1","t":"ka","n":"${n}","from":"a"}`, "bad-version"],
	["unknown type", `{"tbp":1,"t":"hello"}`, "unknown-type"],
	["prototype key as type", `{"tbp":1,"t":"__proto__"}`, "unknown-type"],
	["missing field", `{"tbp":1,"t":"probe","n":"${n}","from":"a"}`, "bad-field"],
	["extra key", `{"tbp":1,"t":"ka","n":"${n}","from":"a","x":1}`, "bad-field"],
	["__proto__ key", `{"tbp":1,"t":"ka","n":"${n}","from":"a","__proto__":{"x":1}}`, "bad-field"],
	["duplicate key", `{"tbp":1,"t":"ka","n":"${n}","from":"a","from":"b"}`, "bad-field"],
	["key order", `{"tbp":1,"t":"ka","from":"a","n":"${n}"}`, "bad-field"],
	["whitespace", `{"tbp":1, "t":"ka","n":"${n}","from":"a"}`, "bad-field"],
	["short nonce", `{"tbp":1,"t":"ka","n":"0123","from":"a"}`, "bad-field"],
	["uppercase nonce", `{"tbp":1,"t":"ka","n":"${n.toUpperCase()}","from":"a"}`, "bad-field"],
	["hostile peer id", `{"tbp":1,"t":"ka","n":"${n}","from":"a;rm -rf"}`, "bad-field"],
	["peer id too long", `{"tbp":1,"t":"ka","n":"${n}","from":"${"a".repeat(65)}"}`, "bad-field"],
	["endpoint with port 0", `{"tbp":1,"t":"ack","n":"${n}","from":"a","tx":"${tx}","seen":"1.2.3.4:0"}`, "bad-field"],
	["endpoint with port 70000", `{"tbp":1,"t":"ack","n":"${n}","from":"a","tx":"${tx}","seen":"1.2.3.4:70000"}`, "bad-field"],
	["endpoint with octet 256", `{"tbp":1,"t":"ack","n":"${n}","from":"a","tx":"${tx}","seen":"1.2.3.256:80"}`, "bad-field"],
	["endpoint with leading zero", `{"tbp":1,"t":"ack","n":"${n}","from":"a","tx":"${tx}","seen":"01.2.3.4:80"}`, "bad-field"],
	["fractional seq", `{"tbp":1,"t":"ping","n":"${n}","from":"a","seq":1.5}`, "bad-field"],
	["negative seq", `{"tbp":1,"t":"ping","n":"${n}","from":"a","seq":-1}`, "bad-field"],
	["too many host candidates", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[${Array.from({ length: 9 }, (_, i) => `"10.0.0.${i + 1}:1"`).join(",")}]}`, "bad-field"],
	["duplicate host candidates", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":["10.0.0.1:1","10.0.0.1:1"]}`, "bad-field"],
	["relay of a relay", `{"tbp":1,"t":"relay","id":"a","token":"${token}","n":"${n}","data":{"t":"relay","id":"a","token":"${token}","n":"${n}","data":{"t":"ka","n":"${n}","from":"a"}}}`, "bad-field"],
	["relay of a register", `{"tbp":1,"t":"relay","id":"a","token":"${token}","n":"${n}","data":{"t":"register","tx":"${tx}","id":"a","host":[]}}`, "bad-field"],
	["error with control characters", `{"tbp":1,"t":"error","code":"self","message":"a\\u0007b"}`, "bad-field"],
	["error with an unknown code", `{"tbp":1,"t":"error","code":"oops","message":"x"}`, "bad-field"],
	["non-ASCII byte", Buffer.concat([Buffer.from(`{"tbp":1,"t":"ka","n":"${n}","from":"a`), Buffer.from([0xff]), Buffer.from(`"}`)]), "bad-field"],
	["an array", `[1,2,3]`, "not-protocol"],
	["keepalive of 9 ms", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"keepalive":9}`, "bad-field"],
	["keepalive over a minute", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"keepalive":60001}`, "bad-field"],
	["loss timeout of 99 ms", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"lossAfter":99}`, "bad-field"],
	["after that is not a nonce", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"after":"x"}`, "bad-field"],
	["held-session fields out of order", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"lossAfter":1500,"keepalive":250}`, "bad-field"],
	["a claim that is not 32 hex digits", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"claim":"${token.toUpperCase()}"}`, "bad-field"],
	["a keepalive in a register", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"keepalive":250}`, "bad-field"],
	["a mapped endpoint with port 0", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"mapped":"11.0.0.2:0"}`, "bad-field"],
	["a mapped endpoint without a port", `{"tbp":1,"t":"register","tx":"${tx}","id":"a","host":[],"mapped":"11.0.0.2"}`, "bad-field"],
	["a mapped endpoint as a number", `{"tbp":1,"t":"start","n":"${n}","id":"a","peer":"b","host":[],"srflx":"1.2.3.4:5","role":"initiator","interval":20,"deadline":1000,"relay":true,"at":0,"mapped":1234}`, "bad-field"],
	["a list of mapped endpoints", `{"tbp":1,"t":"start","n":"${n}","id":"a","peer":"b","host":[],"srflx":"1.2.3.4:5","role":"initiator","interval":20,"deadline":1000,"relay":true,"at":0,"mapped":["11.0.0.2:1"]}`, "bad-field"],
	["mapped before the held-session fields", `{"tbp":1,"t":"start","n":"${n}","id":"a","peer":"b","host":[],"srflx":"1.2.3.4:5","role":"initiator","interval":20,"deadline":1000,"relay":true,"at":0,"mapped":"11.0.0.2:1","keepalive":250}`, "bad-field"],
	["a mapped endpoint in a connect", `{"tbp":1,"t":"connect","tx":"${tx}","id":"a","token":"${token}","target":"b","interval":20,"deadline":1000,"relay":true,"mapped":"11.0.0.2:1"}`, "bad-field"],
	["a fractional keepalive in a start", `{"tbp":1,"t":"start","n":"${n}","id":"a","peer":"b","host":[],"srflx":"1.2.3.4:5","role":"initiator","interval":20,"deadline":1000,"relay":true,"at":0,"keepalive":250.5}`, "bad-field"],
];

for (const [name, input, reason] of refused) {
	test(`refused (${reason}): ${name}`, (t) => {
		const decoded = decode(typeof input === "string" ? Buffer.from(input, "latin1") : input);
		t.false(decoded.ok);
		if (!decoded.ok) t.is(decoded.reason, reason);
	});
}

test("every truncation of every sample is refused as truncated or a bad field", (t) => {
	for (const message of samples) {
		const bytes = encode(message)!;
		for (let length = 1; length < bytes.length; length++) {
			const decoded = decode(bytes.subarray(0, length));
			t.false(decoded.ok, `${message.t} cut at ${length}`);
			if (!decoded.ok) t.true(["truncated", "not-protocol", "bad-field"].includes(decoded.reason), `${message.t} cut at ${length}: ${decoded.reason}`);
		}
	}
});

test("random bytes (10,000 datagrams) never decode and never throw", (t) => {
	for (let i = 0; i < 10_000; i++) {
		const decoded = decode(randomBytes(Math.floor(Math.random() * 1400)));
		if (decoded.ok) t.fail("random bytes decoded");
	}
	t.pass();
});

test("random bytes after the magic (10,000 datagrams) never decode and never throw", (t) => {
	for (let i = 0; i < 10_000; i++) {
		const decoded = decode(Buffer.concat([Buffer.from('{"tbp":1,"t":"'), randomBytes(Math.floor(Math.random() * 200))]));
		if (decoded.ok) t.fail("random bytes decoded");
	}
	t.pass();
});

test("mutations of valid datagrams (one byte flipped, 10,000 of them) never throw, and what decodes is valid", (t) => {
	for (let i = 0; i < 10_000; i++) {
		const bytes = Buffer.from(encode(samples[i % samples.length])!);
		bytes[Math.floor(Math.random() * bytes.length)] = Math.floor(Math.random() * 256);
		const decoded = decode(bytes);
		// A flip inside a hex id or a name can still be a valid message; then it must re-encode to the same bytes.
		if (decoded.ok) t.deepEqual(encode(decoded.message), bytes);
	}
	t.pass();
});

test("encode refuses what would not decode, and never throws", (t) => {
	t.is(encode({ t: "ka", n: "short", from: "a" }), undefined);
	t.is(encode({ t: "probe", n, from: "bad id!", tx }), undefined);
	t.is(encode({ t: "nope" } as unknown as Message), undefined);
	t.is(encode(null as unknown as Message), undefined);
	const cyclic: Record<string, unknown> = { t: "relay", id: "a", token, n };
	cyclic.data = cyclic;
	t.is(encode(cyclic as unknown as Message), undefined);
	t.is(encode({ t: "error", code: "self", message: "x".repeat(201) }), undefined);
	t.is(encode({ t: "ping", n, from: "a", seq: BigInt(1) as unknown as number }), undefined);
});

test("endpoints of either family: [v6]:port in brackets, lowercase, no zone; the text round-trips", (t) => {
	t.is(endpointOf("2001:db8:1:1::2", 40000), "[2001:db8:1:1::2]:40000");
	t.is(endpointOf("192.168.1.2", 40000), "192.168.1.2:40000");
	t.deepEqual(splitEndpoint("[2001:db8:1:1::2]:40000"), { address: "2001:db8:1:1::2", port: 40000 });
	t.deepEqual(splitEndpoint("192.168.1.2:40000"), { address: "192.168.1.2", port: 40000 });
	for (const bad of ["2001:db8::1:40000", "[2001:db8::1]", "[2001:db8::1]:0", "[2001:db8::1]:65536", "[fe80::1%eth0]:5", "[2001:DB8::1]:5", "[::ffff:1.2.3.4]:5", "[1.2.3.4]:5", "[2001:db8::1]:05"])
		t.is(splitEndpoint(bad), undefined, bad);
	const register = encode({ t: "register", tx: "0123456789abcdef", id: "alice.1", host: ["[2001:db8:1:1::2]:40000", "192.168.1.2:40000"] });
	t.truthy(register, "a registration may carry host candidates of both families");
	t.deepEqual(decode(register!), { ok: true, message: { t: "register", tx: "0123456789abcdef", id: "alice.1", host: ["[2001:db8:1:1::2]:40000", "192.168.1.2:40000"] } });
});
