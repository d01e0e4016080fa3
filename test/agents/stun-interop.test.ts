// The codec against a STUN implementation we did not write: @msimerson/stun (the maintained
// continuation of nodertc's `stun`). Their requests decode with ours; our responses decode with theirs.
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import test from "ava";
import { decodeStun, encodeStun, getAttribute } from "../../agents/stun/message.ts";
import { respond } from "../../agents/stun/responder.ts";

// The package ships no types: the part of its API used here.
interface TheirAddress {
	address: string;
	port: number;
	family: string;
}
interface TheirMessage {
	readonly type: number;
	readonly transactionId: Buffer;
	getAttribute(type: number): { value: unknown } | undefined;
	getXorAddress(): TheirAddress | undefined;
	getAddress(): TheirAddress | undefined;
	getSoftware(): string | undefined;
	getError(): { code: number; reason: string } | undefined;
	getUnknownAttributes(): number[] | undefined;
	getFingerprint(): number | undefined;
}
interface TheirRequest extends TheirMessage {
	addAttribute(type: number, ...values: unknown[]): unknown;
	addSoftware(text: string): unknown;
	addXorAddress(address: string, port: number): unknown;
	addAddress(address: string, port: number): unknown;
	addError(code: number, reason?: string): unknown;
	addUnknownAttributes(types: number[]): unknown;
	addFingerprint(): boolean;
	toBuffer(): Buffer;
}
interface TheirStun {
	createMessage(type: number, transactionId?: Buffer): TheirRequest;
	decode(bytes: Buffer): TheirMessage;
	validateFingerprint(message: TheirMessage): boolean;
	constants: Record<string, number>;
}

const stun = createRequire(import.meta.url)("@msimerson/stun") as TheirStun;
const c = stun.constants;
const server = { primary: "203.0.113.10", alternate: "203.0.113.11", port: 3478, altPort: 3479 };
const client = { address: "198.51.100.2", port: 40000 };

function ours(bytes: Buffer) {
	const result = decodeStun(bytes);
	if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
	return result.message;
}

test("their Binding request with SOFTWARE and FINGERPRINT decodes with ours (fingerprint verified)", (t) => {
	const request = stun.createMessage(c.STUN_BINDING_REQUEST);
	request.addSoftware("their client");
	t.true(request.addFingerprint());
	const message = ours(request.toBuffer());
	t.is(message.class, "request");
	t.is(message.method, 0x001);
	t.deepEqual(message.transactionId, request.transactionId);
	t.is(getAttribute(message, "SOFTWARE")?.text, "their client");
	t.is(getAttribute(message, "FINGERPRINT")?.crc, stun.decode(request.toBuffer()).getFingerprint());
});

for (const [flags, changeIp, changePort] of [[0x06, true, true], [0x04, true, false], [0x02, false, true]] as const) {
	test(`their request with CHANGE-REQUEST 0x${flags.toString(16).padStart(2, "0")} and RESPONSE-PORT decodes with ours, and our server honours it`, (t) => {
		const request = stun.createMessage(c.STUN_BINDING_REQUEST);
		request.addAttribute(c.STUN_ATTR_CHANGE_REQUEST, flags);
		request.addAttribute(c.STUN_ATTR_RESPONSE_PORT, 41000);
		request.addFingerprint();
		const message = ours(request.toBuffer());
		t.deepEqual(getAttribute(message, "CHANGE-REQUEST"), { type: "CHANGE-REQUEST", changeIp, changePort });
		t.is(getAttribute(message, "RESPONSE-PORT")?.port, 41000);
		const reply = respond(request.toBuffer(), { address: server.primary, port: server.port }, client, server);
		if (reply.kind === "drop") return t.fail(reply.detail);
		t.deepEqual(reply.from, { address: changeIp ? server.alternate : server.primary, port: changePort ? server.altPort : server.port });
		t.deepEqual(reply.to, { address: client.address, port: 41000 });
	});
}

test("our Binding response decodes with theirs: same XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE, valid FINGERPRINT", (t) => {
	const request = stun.createMessage(c.STUN_BINDING_REQUEST);
	request.addAttribute(c.STUN_ATTR_CHANGE_REQUEST, 0x02);
	const reply = respond(request.toBuffer(), { address: server.primary, port: server.port }, client, server);
	if (reply.kind === "drop") return t.fail(reply.detail);
	const theirs = stun.decode(reply.bytes);
	t.is(theirs.type, c.STUN_BINDING_RESPONSE);
	t.deepEqual(theirs.transactionId, request.transactionId);
	t.like(theirs.getXorAddress(), { ...client, family: "IPv4" });
	t.like(theirs.getAddress(), { ...client, family: "IPv4" });
	t.like(theirs.getAttribute(c.STUN_ATTR_RESPONSE_ORIGIN)?.value as TheirAddress, { address: server.primary, port: server.altPort });
	t.like(theirs.getAttribute(c.STUN_ATTR_OTHER_ADDRESS)?.value as TheirAddress, { address: server.alternate, port: server.altPort });
	t.is(theirs.getSoftware(), "testbed-stun");
	t.true(stun.validateFingerprint(theirs));
});

test("our 420 error response decodes with theirs: ERROR-CODE and UNKNOWN-ATTRIBUTES", (t) => {
	const request = stun.createMessage(c.STUN_BINDING_REQUEST);
	request.addAttribute(c.STUN_ATTR_PRIORITY, 1234);
	const reply = respond(request.toBuffer(), { address: server.primary, port: server.port }, client, server);
	if (reply.kind === "drop") return t.fail(reply.detail);
	const theirs = stun.decode(reply.bytes);
	t.is(theirs.type, c.STUN_BINDING_ERROR_RESPONSE);
	t.like(theirs.getError(), { code: 420, reason: "Unknown Attribute" });
	t.deepEqual(theirs.getUnknownAttributes(), [c.STUN_ATTR_PRIORITY]);
	t.true(stun.validateFingerprint(theirs));
});

test("their Binding response and error response decode with ours", (t) => {
	const response = stun.createMessage(c.STUN_BINDING_RESPONSE);
	response.addXorAddress("192.0.2.1", 32853);
	response.addAddress("192.0.2.1", 32853);
	response.addAttribute(c.STUN_ATTR_RESPONSE_ORIGIN, "203.0.113.11", 3479);
	response.addAttribute(c.STUN_ATTR_OTHER_ADDRESS, "203.0.113.11", 3479);
	response.addSoftware("their server");
	response.addFingerprint();
	const message = ours(response.toBuffer());
	t.is(message.class, "success");
	t.like(getAttribute(message, "XOR-MAPPED-ADDRESS"), { address: "192.0.2.1", port: 32853 });
	t.like(getAttribute(message, "MAPPED-ADDRESS"), { address: "192.0.2.1", port: 32853 });
	t.like(getAttribute(message, "RESPONSE-ORIGIN"), { address: "203.0.113.11", port: 3479 });
	t.like(getAttribute(message, "OTHER-ADDRESS"), { address: "203.0.113.11", port: 3479 });
	t.is(getAttribute(message, "SOFTWARE")?.text, "their server");

	const error = stun.createMessage(c.STUN_BINDING_ERROR_RESPONSE);
	error.addError(420);
	error.addUnknownAttributes([0x0024, 0x0006]);
	error.addFingerprint();
	const failed = ours(error.toBuffer());
	t.is(failed.class, "error");
	t.like(getAttribute(failed, "ERROR-CODE"), { code: 420, reason: "Unknown Attribute" });
	t.deepEqual(getAttribute(failed, "UNKNOWN-ATTRIBUTES")?.types, [0x0024, 0x0006]);
});

test("byte for byte: both encoders write the same response", (t) => {
	const transactionId = randomBytes(12);
	const response = stun.createMessage(c.STUN_BINDING_RESPONSE, transactionId);
	response.addXorAddress("198.51.100.77", 61000);
	response.addAddress("198.51.100.77", 61000);
	response.addAttribute(c.STUN_ATTR_OTHER_ADDRESS, "203.0.113.11", 3479);
	response.addSoftware("same bytes?");
	response.addFingerprint();
	const mine = encodeStun({
		method: 1,
		class: "success",
		transactionId,
		attributes: [
			{ type: "XOR-MAPPED-ADDRESS", family: "IPv4", address: "198.51.100.77", port: 61000 },
			{ type: "MAPPED-ADDRESS", family: "IPv4", address: "198.51.100.77", port: 61000 },
			{ type: "OTHER-ADDRESS", family: "IPv4", address: "203.0.113.11", port: 3479 },
			{ type: "SOFTWARE", text: "same bytes?" },
			{ type: "FINGERPRINT", crc: 0 },
		],
	});
	t.deepEqual(mine, response.toBuffer());
});

// IPv4 only: their decoder un-XORs IPv6 addresses with a zero transaction id (it parses attributes
// before it has read the header), so it misreads the RFC 5769 2.3 vector; ours reads that vector
// right (stun-message.test.ts).
test("1,000 random mapped IPv4 addresses: theirs reads what ours writes, ours reads what theirs writes", (t) => {
	for (let i = 0; i < 1000; i++) {
		const address = [...randomBytes(4)].join(".");
		const port = randomBytes(2).readUInt16BE(0);
		const transactionId = randomBytes(12);
		const theirs = stun.decode(encodeStun({ method: 1, class: "success", transactionId, attributes: [{ type: "XOR-MAPPED-ADDRESS", family: "IPv4", address, port }, { type: "FINGERPRINT", crc: 0 }] }));
		const read = theirs.getXorAddress();
		const response = stun.createMessage(c.STUN_BINDING_RESPONSE, transactionId);
		response.addXorAddress(address, port);
		response.addFingerprint();
		const back = getAttribute(ours(response.toBuffer()), "XOR-MAPPED-ADDRESS");
		const ok = stun.validateFingerprint(theirs) && read?.address === address && read.port === port && back?.address === address && back.port === port;
		if (!ok) return t.fail(`${address} port ${port}: theirs read ${JSON.stringify(read)}, ours read back ${JSON.stringify(back)}`);
	}
	t.pass();
});
