// The hole punching wire format: one JSON object per UDP datagram, readable in a capture
// (`tcpdump -A`), versioned, size-capped and strictly validated. Every object starts with
// {"tbp":1,"t":TYPE,…}: "tbp" names the protocol (testbed punch) and carries its version.
//
//   peer → rendezvous   register  {tx, id, host, token?, claim?, mapped?}   register / refresh an id; learn the reflexive endpoint
//                       connect   {tx, id, token, target, interval, deadline, relay, keepalive?, lossAfter?, after?}
//                       start-ack {id, token, n}              stop the rendezvous resending "start"
//                       relay     {id, token, n, data}        forward `data` (a peer message) to the session's other peer
//                       unregister {id, token}
//   rendezvous → peer   registered {tx, id, token, reflexive}
//                       error     {tx?, code, message}        e.g. code "unknown-peer"
//                       start     {n, id, peer, host, srflx, role, interval, deadline, relay, at, keepalive?, lossAfter?, mapped?}   "punch now"
//                       relayed   {n, from, data}
//   peer ↔ peer         probe {n, from, tx} · ack {n, from, tx, seen} · ping {n, from, seq} · pong {n, from, seq} · ka {n, from}
//
// `n` is the session nonce (128 random bits, hex), known only to the two peers and the rendezvous;
// `tx` is a random per-probe id (64 bits, hex) that an ack must echo; `token` is the secret the
// rendezvous issues at an id's first registration. Endpoints are "a.b.c.d:port" or "[v6]:port".
//
// Held sessions: once connected, each side pings every `keepalive` ms (answered by a pong) and
// declares the path lost after `lossAfter` ms of silence; it then re-registers (with its token) and
// sends a connect with `after` = the nonce it lost: the rendezvous starts a new round (a new nonce,
// fresh candidates) unless a newer round for the pair already exists and nobody moved since, in
// which case the asker just joins that one. `claim` is a secret chosen by the endpoint's owner at
// its first registration: a later registration of the same id with the same claim, from anywhere,
// takes the id over (a restarted process), and the old token stops working.
//
// Port mapping: `mapped` is the public endpoint the peer's gateway granted it by PCP, NAT-PMP or
// UPnP-IGD (agents/portmap/); the rendezvous passes it to the other peer in "start", which punches it
// as a candidate of kind "mapped". Optional, so version 1 stays: a peer that asks for no mapping sends
// exactly what it sent before (every message is still checked against the one schema: an unknown key
// is refused).
// decode() never throws: anything else is a drop reason, counted by whoever received it.

import { isIPv6 } from "node:net";

export const protocolVersion = 1;
/** No datagram of this protocol is larger; bigger input is refused before parsing. */
export const maxDatagram = 1200;
export const maxHostCandidates = 8;
const maxMessageText = 200;

export type Endpoint = string;

export type PeerMessage =
	| { t: "probe"; n: string; from: string; tx: string }
	| { t: "ack"; n: string; from: string; tx: string; seen: Endpoint }
	| { t: "ping"; n: string; from: string; seq: number }
	| { t: "pong"; n: string; from: string; seq: number }
	| { t: "ka"; n: string; from: string };

export type ErrorCode = "unknown-peer" | "not-registered" | "self" | "table-full";

export type ServerMessage =
	| { t: "registered"; tx: string; id: string; token: string; reflexive: Endpoint }
	| { t: "error"; tx?: string; code: ErrorCode; message: string }
	| {
			t: "start";
			n: string;
			id: string;
			peer: string;
			host: Endpoint[];
			srflx: Endpoint;
			role: "initiator" | "responder";
			interval: number;
			deadline: number;
			relay: boolean;
			at: number;
			keepalive?: number;
			lossAfter?: number;
			/** The peer's port-mapped public endpoint, when its gateway granted one. */
			mapped?: Endpoint;
	  }
	| { t: "relayed"; n: string; from: string; data: PeerMessage };

export type ClientMessage =
	| { t: "register"; tx: string; id: string; host: Endpoint[]; token?: string; claim?: string; mapped?: Endpoint }
	| {
			t: "connect";
			tx: string;
			id: string;
			token: string;
			target: string;
			interval: number;
			deadline: number;
			relay: boolean;
			/** Held-session parameters, passed on to both peers in "start". */
			keepalive?: number;
			lossAfter?: number;
			/** A re-punch: the nonce of the session the asker lost (or whose round failed). */
			after?: string;
	  }
	| { t: "start-ack"; id: string; token: string; n: string }
	| { t: "relay"; id: string; token: string; n: string; data: PeerMessage }
	| { t: "unregister"; id: string; token: string };

export type Message = PeerMessage | ServerMessage | ClientMessage;
export type MessageType = Message["t"];

/** Why a datagram was refused by the codec. */
export type DecodeReason = "empty" | "oversized" | "not-protocol" | "truncated" | "bad-version" | "unknown-type" | "bad-field";

export type Decoded = { ok: true; message: Message } | { ok: false; reason: DecodeReason; detail?: string };

const magic = '{"tbp":';

// ── field checks ────────────────────────────────────────────────────────────

type Check = (value: unknown) => boolean;

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const hex32 = /^[0-9a-f]{32}$/;
const hex16 = /^[0-9a-f]{16}$/;
const endpointPattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d):([1-9]\d{0,4})$/;

const isString = (value: unknown): value is string => typeof value === "string";
export const isPeerId: Check = (value) => isString(value) && idPattern.test(value);
export const isNonce: Check = (value) => isString(value) && hex32.test(value);
const isToken = isNonce;
const isTx: Check = (value) => isString(value) && hex16.test(value);
const endpoint6Pattern = /^\[([0-9a-f:]{2,39})\]:([1-9]\d{0,4})$/;
/** "a.b.c.d:port", or "[v6]:port" (lowercase, no zone). */
export const isEndpoint: Check = (value) => {
	if (!isString(value) || Number(value.slice(value.lastIndexOf(":") + 1)) > 65535) return false;
	const v6 = endpoint6Pattern.exec(value);
	return v6 ? isIPv6(v6[1]) : endpointPattern.test(value);
};
const integer = (min: number, max: number): Check => (value) => typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
const isBoolean: Check = (value) => typeof value === "boolean";
const oneOf = (...values: string[]): Check => (value) => isString(value) && values.includes(value);
const isEndpointList: Check = (value) => Array.isArray(value) && value.length <= maxHostCandidates && value.every(isEndpoint) && new Set(value).size === value.length;
const isMessageText: Check = (value) => isString(value) && value.length <= maxMessageText && !/[\u0000-\u001f]/.test(value);
const isPeerData: Check = (value) => {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
	const type = (value as Record<string, unknown>).t;
	return isString(type) && peerTypes.has(type) && validFields(schemas[type as MessageType], value as Record<string, unknown>, false) === undefined;
};

interface Field {
	check: Check;
	optional?: boolean;
}

const req = (check: Check): Field => ({ check });
const opt = (check: Check): Field => ({ check, optional: true });

const interval = integer(1, 10_000);
const deadline = integer(1, 600_000);
const seq = integer(0, 2 ** 31 - 1);
/** The held-session parameters a connect may carry (ms). */
export const keepaliveLimits = { min: 10, max: 60_000 } as const;
export const lossAfterLimits = { min: 100, max: 600_000 } as const;
const keepalive = integer(keepaliveLimits.min, keepaliveLimits.max);
const lossAfter = integer(lossAfterLimits.min, lossAfterLimits.max);

/** Every type's fields, in the order they are encoded. No other keys are allowed. */
const schemas: Record<MessageType, Record<string, Field>> = {
	probe: { n: req(isNonce), from: req(isPeerId), tx: req(isTx) },
	ack: { n: req(isNonce), from: req(isPeerId), tx: req(isTx), seen: req(isEndpoint) },
	ping: { n: req(isNonce), from: req(isPeerId), seq: req(seq) },
	pong: { n: req(isNonce), from: req(isPeerId), seq: req(seq) },
	ka: { n: req(isNonce), from: req(isPeerId) },
	register: { tx: req(isTx), id: req(isPeerId), host: req(isEndpointList), token: opt(isToken), claim: opt(isToken), mapped: opt(isEndpoint) },
	connect: {
		tx: req(isTx),
		id: req(isPeerId),
		token: req(isToken),
		target: req(isPeerId),
		interval: req(interval),
		deadline: req(deadline),
		relay: req(isBoolean),
		keepalive: opt(keepalive),
		lossAfter: opt(lossAfter),
		after: opt(isNonce),
	},
	"start-ack": { id: req(isPeerId), token: req(isToken), n: req(isNonce) },
	relay: { id: req(isPeerId), token: req(isToken), n: req(isNonce), data: req(isPeerData) },
	unregister: { id: req(isPeerId), token: req(isToken) },
	registered: { tx: req(isTx), id: req(isPeerId), token: req(isToken), reflexive: req(isEndpoint) },
	error: { tx: opt(isTx), code: req(oneOf("unknown-peer", "not-registered", "self", "table-full")), message: req(isMessageText) },
	start: {
		n: req(isNonce),
		id: req(isPeerId),
		peer: req(isPeerId),
		host: req(isEndpointList),
		srflx: req(isEndpoint),
		role: req(oneOf("initiator", "responder")),
		interval: req(interval),
		deadline: req(deadline),
		relay: req(isBoolean),
		at: req(integer(0, Number.MAX_SAFE_INTEGER)),
		keepalive: opt(keepalive),
		lossAfter: opt(lossAfter),
		mapped: opt(isEndpoint),
	},
	relayed: { n: req(isNonce), from: req(isPeerId), data: req(isPeerData) },
};

const peerTypes = new Set<string>(["probe", "ack", "ping", "pong", "ka"]);
export const isPeerMessage = (message: Message): message is PeerMessage => peerTypes.has(message.t);

/** The first problem with an object's fields, or undefined. `top`: the object carries "tbp". */
function validFields(schema: Record<string, Field>, object: Record<string, unknown>, top: boolean): string | undefined {
	for (const key of Object.keys(object)) if (!(key in schema) && key !== "t" && !(top && key === "tbp")) return `unknown key ${JSON.stringify(key.slice(0, 20))}`;
	for (const [key, field] of Object.entries(schema)) {
		if (!Object.hasOwn(object, key)) {
			if (field.optional) continue;
			return `missing ${key}`;
		}
		if (!field.check(object[key])) return `bad ${key}`;
	}
	return undefined;
}

// ── encode / decode ────────────────────────────────────────────────────────

/** The datagram for a message; undefined when the message is not valid (e.g. too large). Never throws. */
export function encode(message: Message): Buffer | undefined {
	try {
		const text = canonical(message as unknown as Record<string, unknown>);
		if (text === undefined || text.length > maxDatagram) return undefined;
		const bytes = Buffer.from(text, "latin1");
		return decode(bytes).ok ? bytes : undefined;
	} catch {
		return undefined;
	}
}

/**
 * The one text a message may have on the wire: "tbp" first (top level only), then "t", then the
 * schema's keys in order, no whitespace. decode() accepts nothing else, so duplicate keys, odd key
 * order or padding cannot smuggle anything past validation.
 */
function canonical(message: Record<string, unknown>, top = true): string | undefined {
	const type = message.t;
	if (typeof type !== "string" || !Object.hasOwn(schemas, type)) return undefined;
	const ordered: Record<string, unknown> = top ? { tbp: protocolVersion, t: type } : { t: type };
	for (const key of Object.keys(schemas[type as MessageType])) {
		const value = message[key];
		if (value === undefined) continue;
		if (key === "data") {
			if (typeof value !== "object" || value === null) return undefined;
			const inner = canonical(value as Record<string, unknown>, false);
			if (inner === undefined) return undefined;
			ordered[key] = JSON.parse(inner);
		} else ordered[key] = value;
	}
	return JSON.stringify(ordered);
}

/** Decode one datagram; anything that is not exactly a message of this protocol is a reason. Never throws. */
export function decode(data: Uint8Array): Decoded {
	try {
		if (data.length === 0) return { ok: false, reason: "empty" };
		if (data.length > maxDatagram) return { ok: false, reason: "oversized" };
		const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("latin1");
		if (!text.startsWith(magic)) return { ok: false, reason: text.length < magic.length && magic.startsWith(text) ? "truncated" : "not-protocol" };
		// Only printable ASCII: the format is plain JSON text (no escapes beyond \" and \\ are ever produced).
		if (/[^\x20-\x7e]/.test(text)) return { ok: false, reason: "bad-field", detail: "non-ASCII byte" };
		let parsed: unknown;
		try {
			parsed = JSON.parse(text);
		} catch {
			return { ok: false, reason: text.endsWith("}") ? "bad-field" : "truncated", detail: "not JSON" };
		}
		if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { ok: false, reason: "not-protocol" };
		const object = parsed as Record<string, unknown>;
		if (object.tbp !== protocolVersion) return { ok: false, reason: "bad-version", detail: `version ${typeof object.tbp === "number" ? object.tbp : typeof object.tbp}` };
		const type = object.t;
		if (!isString(type) || !Object.hasOwn(schemas, type)) return { ok: false, reason: "unknown-type" };
		const problem = validFields(schemas[type as MessageType], object, true);
		if (problem) return { ok: false, reason: "bad-field", detail: `${type}: ${problem}` };
		if (canonical(object) !== text) return { ok: false, reason: "bad-field", detail: `${type}: not in canonical form` };
		const { tbp: _version, ...message } = object;
		return { ok: true, message: message as unknown as Message };
	} catch {
		return { ok: false, reason: "bad-field", detail: "internal" };
	}
}

/** decode() for callers that only want the message. */
export function decodeMessage(data: Uint8Array): Message | undefined {
	const decoded = decode(data);
	return decoded.ok ? decoded.message : undefined;
}

/** "ip:port" or "[v6]:port" → parts; undefined for anything else. */
export function splitEndpoint(endpoint: string): { address: string; port: number } | undefined {
	if (!isEndpoint(endpoint)) return undefined;
	const colon = endpoint.lastIndexOf(":");
	return { address: endpoint.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(endpoint.slice(colon + 1)) };
}

/** An endpoint's text: "a.b.c.d:port", an IPv6 address in brackets. */
export const endpointOf = (address: string, port: number): Endpoint => (address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);
