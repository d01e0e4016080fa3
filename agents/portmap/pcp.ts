// PCP, the Port Control Protocol (RFC 6887), as a client speaks it over IPv4: MAP requests (ask the
// gateway to forward an external port to one of ours; lifetime 0 deletes) and ANNOUNCE (is a PCP
// server there, and its epoch). Pure: bytes in, bytes out. decodeResponse() never throws; anything
// that is not exactly the answer to our request is a reason.
//
//   request header (24 bytes)   version=2 · R=0|opcode · reserved(16) · requested lifetime(32) · client address(128)
//   MAP request data (36)       nonce(96) · protocol(8) · reserved(24) · internal port(16) · suggested external port(16) · suggested external address(128)
//   response header (24)        version=2 · R=1|opcode · reserved(8) · result code(8) · lifetime(32) · epoch(32) · reserved(96)
//   MAP response data (36)      nonce(96) · protocol(8) · reserved(24) · internal port(16) · assigned external port(16) · assigned external address(128)
//   options (after the data)    code(8) · reserved(8) · length(16) · data padded to a multiple of 4
//
// Addresses are IPv6; an IPv4 address is IPv4-mapped (::ffff:a.b.c.d), "any" IPv4 is ::ffff:0.0.0.0.

export const pcpVersion = 2;
export const pcpPort = 5351;
/** No PCP message is larger (RFC 6887 §7). */
export const maxPcpMessage = 1100;
const headerBytes = 24;
const mapBytes = 36;

export const pcpOpcodes = { announce: 0, map: 1, peer: 2 } as const;
export type PcpOpcode = keyof typeof pcpOpcodes;

/** Result codes by number (RFC 6887 §7.4). */
export const pcpResultNames: Record<number, string> = {
	0: "SUCCESS",
	1: "UNSUPP_VERSION",
	2: "NOT_AUTHORIZED",
	3: "MALFORMED_REQUEST",
	4: "UNSUPP_OPCODE",
	5: "UNSUPP_OPTION",
	6: "MALFORMED_OPTION",
	7: "NETWORK_FAILURE",
	8: "NO_RESOURCES",
	9: "UNSUPP_PROTOCOL",
	10: "USER_EX_QUOTA",
	11: "CANNOT_PROVIDE_EXTERNAL",
	12: "ADDRESS_MISMATCH",
	13: "EXCESSIVE_REMOTE_PEERS",
};
export const pcpResultName = (code: number): string => pcpResultNames[code] ?? `result ${code}`;

export const ipProtocols = { tcp: 6, udp: 17 } as const;
export type MapProtocol = keyof typeof ipProtocols;

export interface PcpMapRequest {
	/** Our IPv4 address as the gateway sees it (the source address of the request). */
	client: string;
	/** 12 random bytes: the same nonce renews or deletes the mapping. */
	nonce: Buffer;
	protocol: MapProtocol;
	internalPort: number;
	/** 0: any. */
	suggestedPort: number;
	/** "0.0.0.0": any. */
	suggestedAddress?: string;
	/** Seconds; 0 deletes. */
	lifetimeS: number;
}

export type PcpResponse =
	| { opcode: "announce"; result: number; resultName: string; lifetimeS: number; epoch: number }
	| { opcode: "map"; result: number; resultName: string; lifetimeS: number; epoch: number; nonce: Buffer; protocol: number; internalPort: number; externalPort: number; externalAddress: string };

export type PcpDecoded = { ok: true; response: PcpResponse } | { ok: false; reason: string };

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4Text = (text: string): boolean => ipv4Pattern.test(text);
const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;
const isLifetime = (value: number) => Number.isInteger(value) && value >= 0 && value <= 0xffffffff;

/** a.b.c.d → the 16 bytes of ::ffff:a.b.c.d. */
export function mappedIPv4(address: string): Buffer {
	if (!isIPv4Text(address)) throw new RangeError(`not an IPv4 address: ${address}`);
	const bytes = Buffer.alloc(16);
	bytes.writeUInt16BE(0xffff, 10);
	address.split(".").forEach((octet, index) => (bytes[12 + index] = Number(octet)));
	return bytes;
}

/** 16 bytes → "a.b.c.d" when they are an IPv4-mapped address, else undefined. */
export function unmappedIPv4(bytes: Uint8Array): string | undefined {
	if (bytes.length !== 16) return undefined;
	for (let index = 0; index < 10; index++) if (bytes[index] !== 0) return undefined;
	if (bytes[10] !== 0xff || bytes[11] !== 0xff) return undefined;
	return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
}

function header(opcode: number, lifetimeS: number, client: string): Buffer {
	const bytes = Buffer.alloc(headerBytes);
	bytes[0] = pcpVersion;
	bytes[1] = opcode & 0x7f;
	bytes.writeUInt32BE(lifetimeS, 4);
	mappedIPv4(client).copy(bytes, 8);
	return bytes;
}

/** An ANNOUNCE request (24 bytes): a PCP server answers it with SUCCESS and its epoch. */
export function encodeAnnounce(client: string): Buffer {
	return header(pcpOpcodes.announce, 0, client);
}

/** A MAP request (60 bytes). Throws RangeError on values out of range (our own input, not the network's). */
export function encodeMap(request: PcpMapRequest): Buffer {
	if (request.nonce.length !== 12) throw new RangeError("a PCP nonce has 12 bytes");
	if (!isPort(request.internalPort) || request.internalPort === 0) throw new RangeError(`internal port ${request.internalPort}`);
	if (!isPort(request.suggestedPort)) throw new RangeError(`suggested port ${request.suggestedPort}`);
	if (!isLifetime(request.lifetimeS)) throw new RangeError(`lifetime ${request.lifetimeS}`);
	const data = Buffer.alloc(mapBytes);
	request.nonce.copy(data, 0);
	data[12] = ipProtocols[request.protocol];
	data.writeUInt16BE(request.internalPort, 16);
	data.writeUInt16BE(request.suggestedPort, 18);
	mappedIPv4(request.suggestedAddress ?? "0.0.0.0").copy(data, 20);
	return Buffer.concat([header(pcpOpcodes.map, request.lifetimeS, request.client), data]);
}

/** Walk the options after the opcode data: well-formed TLVs that end exactly at the end, or a reason. */
function checkOptions(bytes: Buffer, offset: number): string | undefined {
	let at = offset;
	for (let count = 0; at < bytes.length; count++) {
		if (count >= 64) return "too many options";
		if (at + 4 > bytes.length) return "truncated option";
		const length = bytes.readUInt16BE(at + 2);
		const padded = (length + 3) & ~3;
		if (at + 4 + padded > bytes.length) return "truncated option";
		at += 4 + padded;
	}
	return undefined;
}

/**
 * A response to one of our requests; `expect` says which: the opcode, and for MAP the nonce,
 * protocol and internal port it must echo. Never throws.
 */
export function decodeResponse(data: Uint8Array, expect: { opcode: "announce" } | { opcode: "map"; nonce: Buffer; protocol: MapProtocol; internalPort: number }): PcpDecoded {
	try {
		const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
		if (bytes.length === 0) return { ok: false, reason: "empty" };
		if (bytes.length > maxPcpMessage) return { ok: false, reason: `oversized (${bytes.length} bytes)` };
		if (bytes[0] !== pcpVersion) return { ok: false, reason: `version ${bytes[0]}, not ${pcpVersion}` };
		if (bytes.length < headerBytes) return { ok: false, reason: `truncated (${bytes.length} bytes)` };
		if (bytes.length % 4 !== 0) return { ok: false, reason: `length ${bytes.length} is not a multiple of 4` };
		if (!(bytes[1] & 0x80)) return { ok: false, reason: "a request, not a response" };
		const opcode = bytes[1] & 0x7f;
		const result = bytes[3];
		const base = { result, resultName: pcpResultName(result), lifetimeS: bytes.readUInt32BE(4), epoch: bytes.readUInt32BE(8) };
		if (expect.opcode === "announce") {
			if (opcode !== pcpOpcodes.announce) return { ok: false, reason: `opcode ${opcode}, not ANNOUNCE` };
			const problem = checkOptions(bytes, headerBytes);
			return problem ? { ok: false, reason: problem } : { ok: true, response: { opcode: "announce", ...base } };
		}
		if (opcode !== pcpOpcodes.map) return { ok: false, reason: `opcode ${opcode}, not MAP` };
		// An error answer may come without the opcode data (the server could not parse it): the result code still counts.
		if (bytes.length < headerBytes + mapBytes) {
			if (result !== 0 && bytes.length === headerBytes) return { ok: true, response: { opcode: "map", ...base, nonce: expect.nonce, protocol: ipProtocols[expect.protocol], internalPort: expect.internalPort, externalPort: 0, externalAddress: "0.0.0.0" } };
			return { ok: false, reason: `truncated MAP response (${bytes.length} bytes)` };
		}
		const nonce = Buffer.from(bytes.subarray(headerBytes, headerBytes + 12));
		if (!nonce.equals(expect.nonce)) return { ok: false, reason: "another mapping's nonce" };
		const protocol = bytes[headerBytes + 12];
		if (protocol !== ipProtocols[expect.protocol]) return { ok: false, reason: `protocol ${protocol}, not ${ipProtocols[expect.protocol]}` };
		const internalPort = bytes.readUInt16BE(headerBytes + 16);
		if (internalPort !== expect.internalPort) return { ok: false, reason: `internal port ${internalPort}, not ${expect.internalPort}` };
		const externalPort = bytes.readUInt16BE(headerBytes + 18);
		const externalAddress = unmappedIPv4(bytes.subarray(headerBytes + 20, headerBytes + 36));
		if (externalAddress === undefined) return { ok: false, reason: "the external address is not IPv4" };
		const problem = checkOptions(bytes, headerBytes + mapBytes);
		if (problem) return { ok: false, reason: problem };
		// A grant names its external endpoint; a delete's answer (lifetime 0) need not.
		if (result === 0 && base.lifetimeS > 0 && (externalPort === 0 || externalAddress === "0.0.0.0")) return { ok: false, reason: "SUCCESS without an external endpoint" };
		return { ok: true, response: { opcode: "map", ...base, nonce, protocol, internalPort, externalPort, externalAddress } };
	} catch {
		return { ok: false, reason: "internal" };
	}
}
