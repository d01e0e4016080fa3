// STUN messages on the wire (RFC 5389, with the RFC 5780 attributes for NAT behaviour discovery).
// Pure: bytes in, a typed message or a reason out. decodeStun never throws, whatever the bytes.
import { isIPv4, isIPv6 } from "node:net";
import { crc32 } from "node:zlib";

export const magicCookie = 0x2112a442;
export const fingerprintXor = 0x5354554e;
export const headerLength = 20;
export const bindingMethod = 0x001;

export type StunClass = "request" | "indication" | "success" | "error";

/** Attribute type codes, by their RFC names. */
export const attributeCodes = {
	"MAPPED-ADDRESS": 0x0001,
	"CHANGE-REQUEST": 0x0003,
	"MESSAGE-INTEGRITY": 0x0008,
	"ERROR-CODE": 0x0009,
	"UNKNOWN-ATTRIBUTES": 0x000a,
	"XOR-MAPPED-ADDRESS": 0x0020,
	"RESPONSE-PORT": 0x0027,
	SOFTWARE: 0x8022,
	FINGERPRINT: 0x8028,
	"RESPONSE-ORIGIN": 0x802b,
	"OTHER-ADDRESS": 0x802c,
} as const;

export type AddressAttributeType = "MAPPED-ADDRESS" | "XOR-MAPPED-ADDRESS" | "RESPONSE-ORIGIN" | "OTHER-ADDRESS";

export interface TransportAddress {
	family: "IPv4" | "IPv6";
	address: string;
	port: number;
}

/** One member per address attribute type, so that narrowing on `type` works. */
type AddressAttribute<T extends AddressAttributeType = AddressAttributeType> = T extends AddressAttributeType ? { type: T } & TransportAddress : never;

export type StunAttribute =
	| AddressAttribute
	| { type: "CHANGE-REQUEST"; changeIp: boolean; changePort: boolean }
	| { type: "RESPONSE-PORT"; port: number }
	| { type: "SOFTWARE"; text: string }
	| { type: "ERROR-CODE"; code: number; reason: string }
	| { type: "UNKNOWN-ATTRIBUTES"; types: number[] }
	/** Parsed, not checked: testbed uses no credentials. */
	| { type: "MESSAGE-INTEGRITY"; hmac: Buffer }
	/** On encode the CRC is computed (the value given is ignored); on decode it has been verified. */
	| { type: "FINGERPRINT"; crc: number }
	/** An attribute this codec does not interpret, kept as it came. */
	| { type: "unknown"; code: number; value: Buffer };

export type StunAttributeType = StunAttribute["type"];

export interface StunMessage {
	method: number;
	class: StunClass;
	/** 96 bits. */
	transactionId: Buffer;
	attributes: StunAttribute[];
}

/** Why a datagram is not a STUN message this codec accepts: a closed set, used as a counter key. */
export type DecodeReason =
	| "truncated-header"
	| "not-stun"
	| "bad-cookie"
	| "bad-length"
	| "length-mismatch"
	| "attribute-overrun"
	| "bad-attribute"
	| "fingerprint-not-last"
	| "bad-fingerprint";

export type DecodeResult = { ok: true; message: StunMessage } | { ok: false; reason: DecodeReason; detail: string };

const classBits: Record<StunClass, number> = { request: 0b00, indication: 0b01, success: 0b10, error: 0b11 };
const classNames: StunClass[] = ["request", "indication", "success", "error"];
const namesByCode = new Map<number, Exclude<StunAttributeType, "unknown">>(Object.entries(attributeCodes).map(([name, code]) => [code, name as Exclude<StunAttributeType, "unknown">]));
const maxTextBytes = 763; // SOFTWARE and the ERROR-CODE reason: fewer than 128 characters, at most 763 bytes
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The 14-bit message type: method bits M0-M11 interleaved with class bits C0 (bit 4) and C1 (bit 8). */
export function messageType(method: number, stunClass: StunClass): number {
	const c = classBits[stunClass];
	return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

/** The first attribute of a type (RFC 5389: later duplicates are ignored). */
export function getAttribute<T extends StunAttributeType>(message: StunMessage, type: T): Extract<StunAttribute, { type: T }> | undefined {
	return message.attributes.find((attribute) => attribute.type === type) as Extract<StunAttribute, { type: T }> | undefined;
}

/** Comprehension-required attributes (type < 0x8000) this codec does not know: a server answers 420. */
export function unknownRequired(message: StunMessage): number[] {
	return message.attributes.flatMap((attribute) => (attribute.type === "unknown" && attribute.code < 0x8000 ? [attribute.code] : []));
}

/** A Binding request, optionally with CHANGE-REQUEST / RESPONSE-PORT. */
export function bindingRequest(transactionId: Buffer, options: { changeIp?: boolean; changePort?: boolean; responsePort?: number; software?: string; fingerprint?: boolean } = {}): StunMessage {
	const attributes: StunAttribute[] = [];
	if (options.software !== undefined) attributes.push({ type: "SOFTWARE", text: options.software });
	if (options.changeIp || options.changePort) attributes.push({ type: "CHANGE-REQUEST", changeIp: Boolean(options.changeIp), changePort: Boolean(options.changePort) });
	if (options.responsePort !== undefined) attributes.push({ type: "RESPONSE-PORT", port: options.responsePort });
	if (options.fingerprint) attributes.push({ type: "FINGERPRINT", crc: 0 });
	return { method: bindingMethod, class: "request", transactionId, attributes };
}

// ── encode ───────────────────────────────────────────────────────────────────────────────────────

/**
 * The bytes of a message. Throws on values that cannot be put on the wire (a programming error:
 * a bad address, a port out of range, a FINGERPRINT that is not last).
 */
export function encodeStun(message: StunMessage): Buffer {
	if (message.transactionId.length !== 12) throw new RangeError(`a transaction id is 12 bytes, not ${message.transactionId.length}`);
	const parts: Buffer[] = [];
	message.attributes.forEach((attribute, index) => {
		if (attribute.type === "FINGERPRINT" && index !== message.attributes.length - 1) throw new RangeError("FINGERPRINT must be the last attribute");
		const code = attribute.type === "unknown" ? attribute.code : attributeCodes[attribute.type];
		const value = attributeValue(attribute, message.transactionId);
		const header = Buffer.alloc(4);
		header.writeUInt16BE(code, 0);
		header.writeUInt16BE(value.length, 2);
		parts.push(header, value, Buffer.alloc(padding(value.length)));
	});
	const body = Buffer.concat(parts);
	const header = Buffer.alloc(headerLength);
	header.writeUInt16BE(messageType(message.method, message.class), 0);
	header.writeUInt16BE(body.length, 2);
	header.writeUInt32BE(magicCookie, 4);
	message.transactionId.copy(header, 8);
	const bytes = Buffer.concat([header, body]);
	if (message.attributes.at(-1)?.type === "FINGERPRINT") bytes.writeUInt32BE(fingerprintOf(bytes.subarray(0, bytes.length - 8)), bytes.length - 4);
	return bytes;
}

function attributeValue(attribute: StunAttribute, transactionId: Buffer): Buffer {
	switch (attribute.type) {
		case "MAPPED-ADDRESS":
		case "RESPONSE-ORIGIN":
		case "OTHER-ADDRESS":
			return addressValue(attribute, undefined);
		case "XOR-MAPPED-ADDRESS":
			return addressValue(attribute, transactionId);
		case "CHANGE-REQUEST":
			return uint32((attribute.changeIp ? 0x04 : 0) | (attribute.changePort ? 0x02 : 0));
		case "RESPONSE-PORT": {
			const value = Buffer.alloc(4);
			value.writeUInt16BE(checkPort(attribute.port), 0);
			return value;
		}
		case "SOFTWARE":
			return text(attribute.text, "SOFTWARE");
		case "ERROR-CODE": {
			if (!Number.isInteger(attribute.code) || attribute.code < 300 || attribute.code > 699) throw new RangeError(`error code ${attribute.code} is not 300-699`);
			const reason = text(attribute.reason, "ERROR-CODE reason");
			const value = Buffer.alloc(4 + reason.length);
			value.writeUInt8(Math.floor(attribute.code / 100), 2);
			value.writeUInt8(attribute.code % 100, 3);
			reason.copy(value, 4);
			return value;
		}
		case "UNKNOWN-ATTRIBUTES": {
			const value = Buffer.alloc(attribute.types.length * 2);
			attribute.types.forEach((type, index) => value.writeUInt16BE(type, index * 2));
			return value;
		}
		case "MESSAGE-INTEGRITY":
			if (attribute.hmac.length !== 20) throw new RangeError("MESSAGE-INTEGRITY is 20 bytes");
			return attribute.hmac;
		case "FINGERPRINT":
			return Buffer.alloc(4); // filled in once the whole message is known
		case "unknown":
			if (attribute.value.length > 0xffff) throw new RangeError("attribute value too long");
			return attribute.value;
	}
}

function addressValue(address: TransportAddress, xorWith: Buffer | undefined): Buffer {
	const ip = address.family === "IPv4" ? ipv4Bytes(address.address) : ipv6Bytes(address.address);
	if (!ip) throw new RangeError(`${address.address} is not an ${address.family} address`);
	const value = Buffer.alloc(4 + ip.length);
	value.writeUInt8(address.family === "IPv4" ? 1 : 2, 1);
	value.writeUInt16BE(checkPort(address.port), 2);
	ip.copy(value, 4);
	return xorWith ? xorAddress(value, xorWith) : value;
}

/** XOR the port with the cookie's top half and the address with cookie (+ transaction id for IPv6); its own inverse. */
function xorAddress(value: Buffer, transactionId: Buffer): Buffer {
	const key = Buffer.alloc(16);
	key.writeUInt32BE(magicCookie, 0);
	transactionId.copy(key, 4);
	const out = Buffer.from(value);
	out[2] ^= key[0];
	out[3] ^= key[1];
	for (let i = 4; i < out.length; i++) out[i] ^= key[i - 4];
	return out;
}

function uint32(value: number): Buffer {
	const buffer = Buffer.alloc(4);
	buffer.writeUInt32BE(value >>> 0, 0);
	return buffer;
}

function text(value: string, what: string): Buffer {
	const bytes = Buffer.from(value, "utf8");
	if (bytes.length > maxTextBytes || [...value].length >= 128) throw new RangeError(`${what} must be fewer than 128 characters`);
	return bytes;
}

function checkPort(port: number): number {
	if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`port ${port} is not 0-65535`);
	return port;
}

function padding(length: number): number {
	return (4 - (length % 4)) % 4;
}

/** CRC-32 of the message up to the FINGERPRINT attribute, XOR 0x5354554e (RFC 5389 15.5). */
export function fingerprintOf(bytes: Uint8Array): number {
	return (crc32(bytes) ^ fingerprintXor) >>> 0;
}

// ── decode ───────────────────────────────────────────────────────────────────────────────────────

/** A quick look, for demultiplexing: could these bytes be a STUN message at all? */
export function looksLikeStun(data: Uint8Array): boolean {
	return data.length >= headerLength && (data[0] & 0xc0) === 0 && data[4] === 0x21 && data[5] === 0x12 && data[6] === 0xa4 && data[7] === 0x42;
}

/** A typed message, or the reason the bytes are not one. Never throws. */
export function decodeStun(data: Uint8Array): DecodeResult {
	try {
		return decode(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
	} catch (error) {
		// Unreachable by construction; a last guard so that no input can crash a server.
		return { ok: false, reason: "bad-attribute", detail: `unexpected: ${String(error)}` };
	}
}

function fail(reason: DecodeReason, detail: string): DecodeResult {
	return { ok: false, reason, detail };
}

function decode(data: Buffer): DecodeResult {
	if (data.length < headerLength) return fail("truncated-header", `${data.length} bytes; a STUN header is ${headerLength}`);
	const type = data.readUInt16BE(0);
	if (type & 0xc000) return fail("not-stun", `the first two bits are not zero (type 0x${type.toString(16).padStart(4, "0")})`);
	const cookie = data.readUInt32BE(4);
	if (cookie !== magicCookie) return fail("bad-cookie", `magic cookie 0x${cookie.toString(16).padStart(8, "0")}, not 0x2112a442`);
	const length = data.readUInt16BE(2);
	if (length % 4 !== 0) return fail("bad-length", `message length ${length} is not a multiple of 4`);
	if (headerLength + length !== data.length) return fail("length-mismatch", `message length ${length} says ${headerLength + length} bytes, the datagram has ${data.length}`);
	const transactionId = Buffer.from(data.subarray(8, 20));
	const attributes: StunAttribute[] = [];
	let afterIntegrity = false;
	for (let offset = headerLength; offset < data.length; ) {
		const code = data.readUInt16BE(offset);
		const valueLength = data.readUInt16BE(offset + 2);
		const start = offset + 4;
		const end = start + valueLength;
		if (end + padding(valueLength) > data.length) return fail("attribute-overrun", `attribute 0x${hex(code)} at byte ${offset} (length ${valueLength}) runs past the end of the message`);
		const value = data.subarray(start, end);
		offset = end + padding(valueLength);
		if (code === attributeCodes.FINGERPRINT) {
			if (offset !== data.length) return fail("fingerprint-not-last", `FINGERPRINT at byte ${start - 4} is followed by more attributes`);
			if (valueLength !== 4) return fail("bad-attribute", `FINGERPRINT has length ${valueLength}, not 4`);
			const crc = value.readUInt32BE(0);
			const expected = fingerprintOf(data.subarray(0, start - 4));
			if (crc !== expected) return fail("bad-fingerprint", `FINGERPRINT 0x${hex(crc, 8)}, expected 0x${hex(expected, 8)}`);
			attributes.push({ type: "FINGERPRINT", crc });
			continue;
		}
		if (afterIntegrity) continue; // RFC 5389 15.4: everything after MESSAGE-INTEGRITY but FINGERPRINT is ignored
		const attribute = decodeAttribute(code, value, transactionId);
		if (typeof attribute === "string") return fail("bad-attribute", attribute);
		attributes.push(attribute);
		if (attribute.type === "MESSAGE-INTEGRITY") afterIntegrity = true;
	}
	const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
	const stunClass = classNames[((type >> 4) & 1) | ((type >> 7) & 2)];
	return { ok: true, message: { method, class: stunClass, transactionId, attributes } };
}

/** An attribute, or what is wrong with it. */
function decodeAttribute(code: number, value: Buffer, transactionId: Buffer): StunAttribute | string {
	const name = namesByCode.get(code);
	switch (name) {
		case "MAPPED-ADDRESS":
		case "RESPONSE-ORIGIN":
		case "OTHER-ADDRESS":
		case "XOR-MAPPED-ADDRESS": {
			const family = value.length >= 2 ? value[1] : 0;
			if (!((family === 1 && value.length === 8) || (family === 2 && value.length === 20))) return `${name}: family ${family} with length ${value.length} (IPv4 is family 1, length 8; IPv6 family 2, length 20)`;
			const plain = name === "XOR-MAPPED-ADDRESS" ? xorAddress(value, transactionId) : value;
			const ip = plain.subarray(4);
			return { type: name, family: family === 1 ? "IPv4" : "IPv6", address: family === 1 ? [...ip].join(".") : formatIpv6(ip), port: plain.readUInt16BE(2) };
		}
		case "CHANGE-REQUEST": {
			if (value.length !== 4) return `CHANGE-REQUEST has length ${value.length}, not 4`;
			const flags = value.readUInt32BE(0);
			return { type: name, changeIp: (flags & 0x04) !== 0, changePort: (flags & 0x02) !== 0 };
		}
		case "RESPONSE-PORT":
			// RFC 5780 draws the port and 2 bytes of padding in one 32-bit word; some clients send
			// length 4, others length 2 (the padding then being the attribute's own). Both are taken.
			if (value.length !== 4 && value.length !== 2) return `RESPONSE-PORT has length ${value.length}, not 2 or 4`;
			return { type: name, port: value.readUInt16BE(0) };
		case "SOFTWARE": {
			const decoded = decodeText(value);
			return decoded === undefined ? `SOFTWARE is not UTF-8 of at most ${maxTextBytes} bytes` : { type: name, text: decoded };
		}
		case "ERROR-CODE": {
			if (value.length < 4) return `ERROR-CODE has length ${value.length}, less than 4`;
			const errorClass = value[2] & 0x07;
			const number = value[3];
			if (errorClass < 3 || errorClass > 6 || number > 99) return `ERROR-CODE class ${errorClass} number ${number} is not 300-699`;
			const reason = decodeText(value.subarray(4));
			return reason === undefined ? "ERROR-CODE reason is not UTF-8" : { type: name, code: errorClass * 100 + number, reason };
		}
		case "UNKNOWN-ATTRIBUTES": {
			if (value.length % 2 !== 0) return `UNKNOWN-ATTRIBUTES has odd length ${value.length}`;
			return { type: name, types: Array.from({ length: value.length / 2 }, (_, index) => value.readUInt16BE(index * 2)) };
		}
		case "MESSAGE-INTEGRITY":
			if (value.length !== 20) return `MESSAGE-INTEGRITY has length ${value.length}, not 20`;
			return { type: name, hmac: Buffer.from(value) };
		default:
			return { type: "unknown", code, value: Buffer.from(value) };
	}
}

function decodeText(value: Buffer): string | undefined {
	if (value.length > maxTextBytes) return undefined;
	try {
		return utf8.decode(value);
	} catch {
		return undefined;
	}
}

function hex(value: number, digits = 4): string {
	return value.toString(16).padStart(digits, "0");
}

// ── addresses ────────────────────────────────────────────────────────────────────────────────────

function ipv4Bytes(address: string): Buffer | undefined {
	return isIPv4(address) ? Buffer.from(address.split(".").map(Number)) : undefined;
}

function ipv6Bytes(address: string): Buffer | undefined {
	if (!isIPv6(address) || address.includes("%")) return undefined;
	let text = address;
	const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text); // "::ffff:192.0.2.1" → "::ffff:c000:201"
	if (dotted) {
		const v4 = ipv4Bytes(dotted[1]);
		if (!v4) return undefined;
		text = `${text.slice(0, dotted.index)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
	}
	const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
	const halves = text.split("::");
	const left = parse(halves[0]);
	const right = halves.length > 1 ? parse(halves[1]) : [];
	const groups = halves.length > 1 ? [...left, ...new Array<number>(Math.max(8 - left.length - right.length, 0)).fill(0), ...right] : left;
	if (groups.length !== 8) return undefined;
	const bytes = Buffer.alloc(16);
	groups.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
	return bytes;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIpv6(bytes: Buffer): string {
	const groups = Array.from({ length: 8 }, (_, index) => bytes.readUInt16BE(index * 2));
	let bestStart = -1;
	let bestLength = 1;
	for (let start = 0; start < 8; start++) {
		let length = 0;
		while (start + length < 8 && groups[start + length] === 0) length++;
		if (length > bestLength) [bestStart, bestLength] = [start, length];
	}
	const text = groups.map((group) => group.toString(16));
	if (bestStart < 0) return text.join(":");
	return `${text.slice(0, bestStart).join(":")}::${text.slice(bestStart + bestLength).join(":")}`;
}
