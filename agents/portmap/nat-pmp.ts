// NAT-PMP (RFC 6886), the client's side: the external-address request and UDP/TCP map requests
// (lifetime 0 deletes), and their responses. Pure: bytes in, bytes out. decodeResponse() never
// throws; anything that is not exactly the answer to our request is a reason.
//
//   external address request (2 bytes)   version=0 · opcode=0
//   its response (12)                    version=0 · 128 · result(16) · epoch(32) · external address(32)
//   map request (12)                     version=0 · opcode 1 (UDP) / 2 (TCP) · reserved(16) · internal port(16) · suggested external port(16) · lifetime(32)
//   its response (16)                    version=0 · 128+opcode · result(16) · epoch(32) · internal port(16) · mapped external port(16) · lifetime(32)

export const natPmpVersion = 0;
export const natPmpPort = 5351;

export const natPmpResultNames: Record<number, string> = {
	0: "Success",
	1: "Unsupported Version",
	2: "Not Authorized/Refused",
	3: "Network Failure",
	4: "Out of resources",
	5: "Unsupported opcode",
};
export const natPmpResultName = (code: number): string => natPmpResultNames[code] ?? `result ${code}`;

export type NatPmpProtocol = "udp" | "tcp";
const mapOpcodes: Record<NatPmpProtocol, number> = { udp: 1, tcp: 2 };

export type NatPmpResponse =
	| { opcode: "address"; result: number; resultName: string; epoch: number; externalAddress: string }
	| { opcode: "map"; protocol: NatPmpProtocol; result: number; resultName: string; epoch: number; internalPort: number; externalPort: number; lifetimeS: number };

export type NatPmpDecoded = { ok: true; response: NatPmpResponse } | { ok: false; reason: string };

const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;

/** The external address request. */
export function encodeAddressRequest(): Buffer {
	return Buffer.from([natPmpVersion, 0]);
}

/** A map request; lifetime 0 with suggested port 0 deletes. Throws RangeError on values out of range (our own input). */
export function encodeMapRequest(request: { protocol: NatPmpProtocol; internalPort: number; suggestedPort: number; lifetimeS: number }): Buffer {
	if (!isPort(request.internalPort) || request.internalPort === 0) throw new RangeError(`internal port ${request.internalPort}`);
	if (!isPort(request.suggestedPort)) throw new RangeError(`suggested port ${request.suggestedPort}`);
	if (!Number.isInteger(request.lifetimeS) || request.lifetimeS < 0 || request.lifetimeS > 0xffffffff) throw new RangeError(`lifetime ${request.lifetimeS}`);
	const bytes = Buffer.alloc(12);
	bytes[0] = natPmpVersion;
	bytes[1] = mapOpcodes[request.protocol];
	bytes.writeUInt16BE(request.internalPort, 4);
	bytes.writeUInt16BE(request.suggestedPort, 6);
	bytes.writeUInt32BE(request.lifetimeS, 8);
	return bytes;
}

/**
 * The response to our request (`expect`: the address request, or a map request's protocol and
 * internal port). An error answer may be as short as the header (RFC 6886 §3.5). Never throws.
 */
export function decodeResponse(data: Uint8Array, expect: { opcode: "address" } | { opcode: "map"; protocol: NatPmpProtocol; internalPort: number }): NatPmpDecoded {
	try {
		const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
		if (bytes.length === 0) return { ok: false, reason: "empty" };
		if (bytes.length > 16) return { ok: false, reason: `oversized (${bytes.length} bytes)` };
		if (bytes[0] !== natPmpVersion) return { ok: false, reason: `version ${bytes[0]}, not ${natPmpVersion}` };
		if (bytes.length < 8) return { ok: false, reason: `truncated (${bytes.length} bytes)` };
		const opcode = bytes[1];
		const wanted = expect.opcode === "address" ? 128 : 128 + mapOpcodes[expect.protocol];
		if (opcode !== wanted) return { ok: false, reason: opcode < 128 ? "a request, not a response" : `opcode ${opcode}, not ${wanted}` };
		const result = bytes.readUInt16BE(2);
		const epoch = bytes.readUInt32BE(4);
		const resultName = natPmpResultName(result);
		if (expect.opcode === "address") {
			if (bytes.length !== 12) {
				if (result !== 0 && bytes.length === 8) return { ok: true, response: { opcode: "address", result, resultName, epoch, externalAddress: "0.0.0.0" } };
				return { ok: false, reason: `an address response has 12 bytes, not ${bytes.length}` };
			}
			const externalAddress = `${bytes[8]}.${bytes[9]}.${bytes[10]}.${bytes[11]}`;
			if (result === 0 && externalAddress === "0.0.0.0") return { ok: false, reason: "Success without an external address" };
			return { ok: true, response: { opcode: "address", result, resultName, epoch, externalAddress } };
		}
		if (bytes.length !== 16) {
			if (result !== 0 && bytes.length === 8) return { ok: true, response: { opcode: "map", protocol: expect.protocol, result, resultName, epoch, internalPort: expect.internalPort, externalPort: 0, lifetimeS: 0 } };
			return { ok: false, reason: `a map response has 16 bytes, not ${bytes.length}` };
		}
		const internalPort = bytes.readUInt16BE(8);
		if (internalPort !== expect.internalPort) return { ok: false, reason: `internal port ${internalPort}, not ${expect.internalPort}` };
		const externalPort = bytes.readUInt16BE(10);
		const lifetimeS = bytes.readUInt32BE(12);
		if (result === 0 && lifetimeS > 0 && externalPort === 0) return { ok: false, reason: "Success without an external port" };
		return { ok: true, response: { opcode: "map", protocol: expect.protocol, result, resultName, epoch, internalPort, externalPort, lifetimeS } };
	} catch {
		return { ok: false, reason: "internal" };
	}
}
