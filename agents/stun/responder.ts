// What a STUN server does with one datagram: answer it (and from which of its four sockets), or drop
// it and say why. Pure, so the server's behaviour is tested without sockets.
import { type DecodeReason, type StunAttribute, bindingMethod, decodeStun, encodeStun, getAttribute, unknownRequired } from "./message.ts";
import type { Endpoint } from "./discovery.ts";

export interface ServerAddresses {
	primary: string;
	alternate: string;
	port: number;
	altPort: number;
}

export type DropReason = DecodeReason | "not-a-request" | "unsupported-method";

export type Reply =
	| { kind: "drop"; reason: DropReason; detail: string }
	/** Send `bytes` from the socket bound to `from`, to `to`. */
	| { kind: "success" | "error"; from: Endpoint; to: Endpoint; bytes: Buffer; code?: number };

export const defaultSoftware = "testbed-stun";

/** The four sockets a server binds: primary/alternate address × port/alt-port. */
export function serverEndpoints(server: ServerAddresses): Endpoint[] {
	return [server.primary, server.alternate].flatMap((address) => [server.port, server.altPort].map((port) => ({ address, port })));
}

/** The endpoint a response leaves from: the receiving one with IP and/or port changed (RFC 5780 CHANGE-REQUEST). */
export function changedEndpoint(server: ServerAddresses, receivedOn: Endpoint, changeIp: boolean, changePort: boolean): Endpoint {
	const otherAddress = receivedOn.address === server.primary ? server.alternate : server.primary;
	const otherPort = receivedOn.port === server.port ? server.altPort : server.port;
	return { address: changeIp ? otherAddress : receivedOn.address, port: changePort ? otherPort : receivedOn.port };
}

/**
 * The reply to one datagram that arrived on `receivedOn` from `client`. Binding requests get a
 * success response with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS,
 * SOFTWARE and FINGERPRINT; unknown comprehension-required attributes get 420, a RESPONSE-PORT of 0
 * gets 400. Everything else is dropped with a reason.
 */
export function respond(data: Uint8Array, receivedOn: Endpoint, client: Endpoint, server: ServerAddresses, software = defaultSoftware): Reply {
	const decoded = decodeStun(data);
	if (!decoded.ok) return { kind: "drop", reason: decoded.reason, detail: decoded.detail };
	const request = decoded.message;
	if (request.class !== "request") return { kind: "drop", reason: "not-a-request", detail: `a ${request.class}, not a request` };
	if (request.method !== bindingMethod) return { kind: "drop", reason: "unsupported-method", detail: `method 0x${request.method.toString(16)} is not Binding` };

	const errorReply = (code: number, reason: string, extra: StunAttribute[] = []): Reply => ({
		kind: "error",
		code,
		from: receivedOn,
		to: client,
		bytes: encodeStun({ method: bindingMethod, class: "error", transactionId: request.transactionId, attributes: [{ type: "ERROR-CODE", code, reason }, ...extra, { type: "SOFTWARE", text: software }, { type: "FINGERPRINT", crc: 0 }] }),
	});
	const unknown = unknownRequired(request);
	if (unknown.length > 0) return errorReply(420, "Unknown Attribute", [{ type: "UNKNOWN-ATTRIBUTES", types: unknown }]);
	const responsePort = getAttribute(request, "RESPONSE-PORT")?.port;
	if (responsePort === 0) return errorReply(400, "Bad Request: RESPONSE-PORT 0");

	const change = getAttribute(request, "CHANGE-REQUEST");
	const from = changedEndpoint(server, receivedOn, change?.changeIp ?? false, change?.changePort ?? false);
	const other = changedEndpoint(server, receivedOn, true, true);
	const family = client.address.includes(":") ? ("IPv6" as const) : ("IPv4" as const);
	const bytes = encodeStun({
		method: bindingMethod,
		class: "success",
		transactionId: request.transactionId,
		attributes: [
			{ type: "XOR-MAPPED-ADDRESS", family, address: client.address, port: client.port },
			{ type: "MAPPED-ADDRESS", family, address: client.address, port: client.port },
			{ type: "RESPONSE-ORIGIN", family, address: from.address, port: from.port },
			{ type: "OTHER-ADDRESS", family, address: other.address, port: other.port },
			{ type: "SOFTWARE", text: software },
			{ type: "FINGERPRINT", crc: 0 },
		],
	});
	return { kind: "success", from, to: { address: client.address, port: responsePort ?? client.port }, bytes };
}
