// The STUN server's decisions, without sockets: which socket answers, what the answer says, what is dropped.
import { randomBytes } from "node:crypto";
import test from "ava";
import { bindingRequest, decodeStun, encodeStun, getAttribute } from "../../agents/stun/message.ts";
import { type DropReason, changedEndpoint, respond, serverEndpoints } from "../../agents/stun/responder.ts";

const server = { primary: "203.0.113.10", alternate: "203.0.113.11", port: 3478, altPort: 3479 };
const client = { address: "198.51.100.2", port: 40000 };
const at = (address: string, port: number) => ({ address, port });

test("four sockets: both addresses on both ports", (t) => {
	t.deepEqual(serverEndpoints(server), [at("203.0.113.10", 3478), at("203.0.113.10", 3479), at("203.0.113.11", 3478), at("203.0.113.11", 3479)]);
});

const changes: [string, { changeIp?: boolean; changePort?: boolean }, { address: string; port: number }][] = [
	["no CHANGE-REQUEST", {}, at("203.0.113.10", 3478)],
	["change-port", { changePort: true }, at("203.0.113.10", 3479)],
	["change-IP", { changeIp: true }, at("203.0.113.11", 3478)],
	["change-IP and change-port", { changeIp: true, changePort: true }, at("203.0.113.11", 3479)],
];

for (const [name, change, from] of changes) {
	test(`Binding to the primary with ${name}: answered from ${from.address}:${from.port}, with every attribute`, (t) => {
		const transactionId = randomBytes(12);
		const reply = respond(encodeStun(bindingRequest(transactionId, change)), at("203.0.113.10", 3478), client, server);
		if (reply.kind === "drop") return t.fail(reply.detail);
		t.is(reply.kind, "success");
		t.deepEqual(reply.from, from);
		t.deepEqual(reply.to, client);
		const decoded = decodeStun(reply.bytes);
		if (!decoded.ok) return t.fail(decoded.detail);
		const message = decoded.message;
		t.is(message.class, "success");
		t.deepEqual(message.transactionId, transactionId);
		t.deepEqual(message.attributes.map((attribute) => attribute.type), ["XOR-MAPPED-ADDRESS", "MAPPED-ADDRESS", "RESPONSE-ORIGIN", "OTHER-ADDRESS", "SOFTWARE", "FINGERPRINT"]);
		t.like(getAttribute(message, "XOR-MAPPED-ADDRESS"), client);
		t.like(getAttribute(message, "MAPPED-ADDRESS"), client);
		t.like(getAttribute(message, "RESPONSE-ORIGIN"), from);
		t.like(getAttribute(message, "OTHER-ADDRESS"), at("203.0.113.11", 3479));
	});
}

test("OTHER-ADDRESS and changes are relative to the socket that received the request", (t) => {
	t.deepEqual(changedEndpoint(server, at("203.0.113.11", 3479), true, true), at("203.0.113.10", 3478));
	t.deepEqual(changedEndpoint(server, at("203.0.113.11", 3478), false, true), at("203.0.113.11", 3479));
	t.deepEqual(changedEndpoint(server, at("203.0.113.10", 3479), true, false), at("203.0.113.11", 3479));
	const reply = respond(encodeStun(bindingRequest(randomBytes(12))), at("203.0.113.11", 3478), client, server);
	if (reply.kind === "drop") return t.fail();
	const decoded = decodeStun(reply.bytes);
	t.true(decoded.ok && getAttribute(decoded.message, "OTHER-ADDRESS")?.address === "203.0.113.10" && getAttribute(decoded.message, "OTHER-ADDRESS")?.port === 3479);
});

test("RESPONSE-PORT sends the answer to that port of the client's address", (t) => {
	const reply = respond(encodeStun(bindingRequest(randomBytes(12), { responsePort: 41234 })), at("203.0.113.10", 3478), client, server);
	t.is(reply.kind, "success");
	if (reply.kind !== "drop") t.deepEqual(reply.to, at(client.address, 41234));
	const zero = respond(encodeStun(bindingRequest(randomBytes(12), { responsePort: 0 })), at("203.0.113.10", 3478), client, server);
	t.is(zero.kind, "error");
});

test("an unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES; an unknown optional one is ignored", (t) => {
	const transactionId = randomBytes(12);
	const required = respond(encodeStun({ method: 1, class: "request", transactionId, attributes: [{ type: "unknown", code: 0x0024, value: Buffer.alloc(4) }] }), at("203.0.113.10", 3478), client, server);
	if (required.kind === "drop") return t.fail();
	t.is(required.kind, "error");
	t.deepEqual(required.from, at("203.0.113.10", 3478));
	const decoded = decodeStun(required.bytes);
	t.true(decoded.ok);
	if (!decoded.ok) return;
	t.is(decoded.message.class, "error");
	t.is(getAttribute(decoded.message, "ERROR-CODE")?.code, 420);
	t.deepEqual(getAttribute(decoded.message, "UNKNOWN-ATTRIBUTES")?.types, [0x0024]);
	const optional = respond(encodeStun({ method: 1, class: "request", transactionId, attributes: [{ type: "unknown", code: 0xc057, value: Buffer.alloc(4) }] }), at("203.0.113.10", 3478), client, server);
	t.is(optional.kind, "success");
});

const drops: [string, Buffer, DropReason][] = [
	["text", Buffer.from("hello, are you a STUN server?"), "not-stun"],
	["zeros", Buffer.alloc(40), "bad-cookie"],
	["a few bytes", Buffer.from([1, 2, 3]), "truncated-header"],
	["a Binding success response", encodeStun({ method: 1, class: "success", transactionId: randomBytes(12), attributes: [] }), "not-a-request"],
	["a Binding indication", encodeStun({ method: 1, class: "indication", transactionId: randomBytes(12), attributes: [] }), "not-a-request"],
	["an Allocate request (TURN)", encodeStun({ method: 3, class: "request", transactionId: randomBytes(12), attributes: [] }), "unsupported-method"],
	["a request with a bad fingerprint", (() => {
		const bytes = encodeStun(bindingRequest(randomBytes(12), { fingerprint: true }));
		bytes[bytes.length - 1] ^= 0xff;
		return bytes;
	})(), "bad-fingerprint"],
];

for (const [name, bytes, reason] of drops) {
	test(`dropped: ${name} (${reason})`, (t) => {
		const reply = respond(bytes, at("203.0.113.10", 3478), client, server);
		t.is(reply.kind, "drop");
		if (reply.kind === "drop") t.is(reply.reason, reason);
	});
}
