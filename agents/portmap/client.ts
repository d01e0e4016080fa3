// The port-mapping client: ask the gateway, with PCP, NAT-PMP or UPnP-IGD, to forward an external
// port to one of ours; renew and delete it; and find out which of the three the gateway answers.
//
//   discover(gateway)            all three at once (PCP ANNOUNCE, the NAT-PMP external-address request,
//                                SSDP M-SEARCH → root description → GetExternalIPAddress): who answered, what
//   requestMapping({gateway, internalPort, protocol, lifetimeS, methods})
//                                discovers the methods asked for at once, then maps with the first one (in
//                                the given order) that answered; the first grant wins, the others' failures
//                                are reported. A gateway that answers nothing costs one timeout (~2 s), not three.
//   refreshMapping(mapping)      the same mapping again (PCP: same nonce; UPnP: same external port)
//   deleteMapping(mapping)       lifetime 0 (PCP, NAT-PMP) or DeletePortMapping (UPnP); best effort
//
// PCP and NAT-PMP requests go from a fresh UDP socket connected to gateway:5351, so only the gateway's
// answers arrive and an ICMP "port unreachable" ends the wait at once; they are resent after 250,
// 500 and 1000 ms (RFC 6886's schedule, cut short) and given up after timeoutMs (default 2 s).
// Everything that comes back is decoded strictly (pcp.ts, nat-pmp.ts, upnp.ts); nothing throws.
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { request as httpRequest } from "node:http";
import { askingOrder, portMappingPorts, type PortMappingProtocol } from "../../src/vocabulary/port-mapping.ts";
import * as pcp from "./pcp.ts";
import * as pmp from "./nat-pmp.ts";
import * as upnp from "./upnp.ts";

export type MapProtocol = "udp" | "tcp";

/** Where the protocols are reached on the gateway (tests point them elsewhere). */
export interface PortMappingTargets {
	/** PCP and NAT-PMP (UDP). */
	pmpPort: number;
	/** Where the M-SEARCH goes. */
	ssdp: { address: string; port: number };
}
export const defaultTargets: PortMappingTargets = { pmpPort: portMappingPorts.pmp, ssdp: { address: upnp.ssdpAddress, port: portMappingPorts.ssdp } };

export interface Timing {
	/** One PCP or NAT-PMP exchange, or one HTTP request, gives up after this (default 2000 ms). */
	timeoutMs?: number;
	/** How long SSDP answers are awaited (default 1200 ms: the gateway waits up to MX = 1 s before it answers). */
	ssdpWaitMs?: number;
	targets?: Partial<PortMappingTargets>;
}

export interface MappingRequest extends Timing {
	gateway: string;
	internalPort: number;
	protocol: MapProtocol;
	/** Seconds asked for (default 600); the gateway may grant less or more. */
	lifetimeS?: number;
	/** Tried in this order (default: pcp, nat-pmp, upnp). */
	methods?: readonly PortMappingProtocol[];
	/** UPnP's NewPortMappingDescription. */
	description?: string;
}

/** A granted mapping: what the peer tells others, and what renewing or deleting it needs. */
export interface Mapping {
	method: PortMappingProtocol;
	gateway: string;
	protocol: MapProtocol;
	/** Our address toward the gateway and the mapped port: "a.b.c.d:port". */
	internal: string;
	/** The public endpoint: "a.b.c.d:port". */
	external: string;
	/** Granted seconds (UPnP: as asked, 0 = until deleted). */
	lifetimeS: number;
	/** PCP: the mapping nonce (24 hex digits). */
	nonce?: string;
	/** UPnP: the service and its control URL. */
	control?: { serviceType: string; url: string };
	/** PCP and NAT-PMP: the gateway's epoch (seconds since it started or lost its mappings). */
	epoch?: number;
	/** UPnP: the description it was added with (a renewal adds it again). */
	description?: string;
}

export interface MethodFailure {
	method: PortMappingProtocol;
	/** A short reason a person can read: "no answer within 2000 ms", "PCP result 8 NO_RESOURCES", "UPnP error 718 ConflictInMappingEntry". */
	reason: string;
}

export type MappingOutcome = { ok: true; mapping: Mapping; failures: MethodFailure[] } | { ok: false; failures: MethodFailure[] };

/** What discover() learned of one protocol: whether the gateway answered at all, and whether it said yes. */
export type Discovered =
	| { method: PortMappingProtocol; answered: true; ok: true; external?: string; epoch?: number; location?: string; server?: string }
	| { method: PortMappingProtocol; answered: boolean; ok: false; reason: string };

export interface Discovery {
	gateway: string;
	/** The methods whose server said yes, in the order asked. */
	answered: PortMappingProtocol[];
	methods: Discovered[];
}

const retransmitAfterMs = [250, 500, 1000];
const defaultLifetimeS = 600;
const defaultTimeoutMs = 2000;
const defaultSsdpWaitMs = 1200;

const targetsOf = (timing: Timing): PortMappingTargets => ({ ...defaultTargets, ...timing.targets });
const message = (error: unknown) => String((error as Error)?.message ?? error);

// ── UDP exchanges (PCP, NAT-PMP) ────────────────────────────────────────────

type Verdict<T> = { value: T } | { ignore: string } | { fail: string };

/** An exchange's end: the first finish() resolves, clears its timers and closes its socket; later ones do nothing. */
function ending<R>(resolve: (result: R) => void, close: () => void) {
	let settled = false;
	const timers: NodeJS.Timeout[] = [];
	return {
		timers,
		settled: () => settled,
		finish(result: R): void {
			if (settled) return;
			settled = true;
			for (const timer of timers) clearTimeout(timer);
			try {
				close();
			} catch {}
			resolve(result);
		},
	};
}

/**
 * One request/answer over a fresh UDP socket connected to gateway:port: `build` makes the request
 * from our local address; `judge` says what an answer is. Resent on RFC 6886's schedule until
 * timeoutMs. Never rejects.
 */
function udpExchange<T>(gateway: string, port: number, timeoutMs: number, build: (local: string) => Buffer, judge: (data: Buffer) => Verdict<T>): Promise<{ ok: true; value: T; local: string } | { ok: false; reason: string; answered: boolean }> {
	return new Promise((resolve) => {
		let socket: Socket | undefined;
		let local = "";
		let lastIgnored: string | undefined;
		const { timers, settled, finish } = ending(resolve, () => socket?.close());
		try {
			socket = createSocket("udp4");
		} catch (error) {
			return resolve({ ok: false, reason: `cannot open a UDP socket: ${message(error)}`, answered: false });
		}
		socket.on("error", (error: NodeJS.ErrnoException) =>
			finish({ ok: false, reason: error.code === "ECONNREFUSED" ? "refused (ICMP port unreachable: nothing listens there)" : `socket error: ${error.code ?? message(error)}`, answered: false }),
		);
		socket.on("message", (data) => {
			const verdict = judge(data);
			if ("value" in verdict) finish({ ok: true, value: verdict.value, local });
			else if ("fail" in verdict) finish({ ok: false, reason: verdict.fail, answered: true });
			else lastIgnored = verdict.ignore;
		});
		socket.connect(port, gateway, () => {
			let request: Buffer;
			try {
				local = socket.address().address;
				request = build(local);
			} catch (error) {
				return finish({ ok: false, reason: message(error), answered: false });
			}
			const send = () => {
				if (!settled()) socket!.send(request, (error) => error && finish({ ok: false, reason: `cannot send: ${(error as NodeJS.ErrnoException).code ?? message(error)}`, answered: false }));
			};
			send();
			let at = 0;
			for (const gap of retransmitAfterMs) {
				at += gap;
				if (at < timeoutMs) timers.push(setTimeout(send, at));
			}
			timers.push(setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms${lastIgnored ? ` (refused an answer: ${lastIgnored})` : ""}`, answered: lastIgnored !== undefined }), timeoutMs));
		});
	});
}

/** A PCP answer in NAT-PMP's format (version 0): the gateway speaks NAT-PMP only. */
const pcpVerdict = <T>(data: Buffer, decoded: pcp.PcpDecoded, value: (response: pcp.PcpResponse) => Verdict<T>): Verdict<T> => {
	if (!decoded.ok) return data.length >= 2 && data[0] === 0 ? { fail: "the gateway answered in NAT-PMP (version 0): no PCP" } : { ignore: decoded.reason };
	return value(decoded.response);
};

async function pcpAnnounce(gateway: string, timing: Timing): Promise<Discovered> {
	const result = await udpExchange(gateway, targetsOf(timing).pmpPort, timing.timeoutMs ?? defaultTimeoutMs, (local) => pcp.encodeAnnounce(local), (data) =>
		pcpVerdict(data, pcp.decodeResponse(data, { opcode: "announce" }), (response) => ({ value: response })),
	);
	if (!result.ok) return { method: "pcp", answered: result.answered, ok: false, reason: result.reason };
	const response = result.value;
	if (response.result !== 0) return { method: "pcp", answered: true, ok: false, reason: `PCP result ${response.result} ${response.resultName}` };
	return { method: "pcp", answered: true, ok: true, epoch: response.epoch };
}

async function pcpMap(gateway: string, options: { protocol: MapProtocol; internalPort: number; suggested?: string; lifetimeS: number; nonce?: Buffer }, timing: Timing): Promise<{ ok: true; mapping: Mapping } | { ok: false; reason: string }> {
	const nonce = options.nonce ?? randomBytes(12);
	const suggested = options.suggested ? splitHostPort(options.suggested) : undefined;
	const result = await udpExchange(
		gateway,
		targetsOf(timing).pmpPort,
		timing.timeoutMs ?? defaultTimeoutMs,
		(client) => pcp.encodeMap({ client, nonce, protocol: options.protocol, internalPort: options.internalPort, suggestedPort: suggested?.port ?? options.internalPort, suggestedAddress: suggested?.address ?? "0.0.0.0", lifetimeS: options.lifetimeS }),
		(data) => pcpVerdict(data, pcp.decodeResponse(data, { opcode: "map", nonce, protocol: options.protocol, internalPort: options.internalPort }), (response) => ({ value: response })),
	);
	if (!result.ok) return result;
	const response = result.value as Extract<pcp.PcpResponse, { opcode: "map" }>;
	if (response.result !== 0) return { ok: false, reason: `PCP result ${response.result} ${response.resultName}` };
	return {
		ok: true,
		mapping: {
			method: "pcp",
			gateway,
			protocol: options.protocol,
			internal: `${result.local}:${options.internalPort}`,
			external: `${response.externalAddress}:${response.externalPort}`,
			lifetimeS: response.lifetimeS,
			nonce: nonce.toString("hex"),
			epoch: response.epoch,
		},
	};
}

async function pmpAddress(gateway: string, timing: Timing): Promise<Discovered & { method: "nat-pmp" }> {
	const result = await udpExchange(gateway, targetsOf(timing).pmpPort, timing.timeoutMs ?? defaultTimeoutMs, () => pmp.encodeAddressRequest(), (data) => {
		const decoded = pmp.decodeResponse(data, { opcode: "address" });
		return decoded.ok ? { value: decoded.response } : { ignore: decoded.reason };
	});
	if (!result.ok) return { method: "nat-pmp", answered: result.answered, ok: false, reason: result.reason };
	const response = result.value as Extract<pmp.NatPmpResponse, { opcode: "address" }>;
	if (response.result !== 0) return { method: "nat-pmp", answered: true, ok: false, reason: `NAT-PMP result ${response.result} ${response.resultName}` };
	return { method: "nat-pmp", answered: true, ok: true, external: response.externalAddress, epoch: response.epoch };
}

async function pmpMap(gateway: string, external: string, options: { protocol: MapProtocol; internalPort: number; suggestedPort?: number; lifetimeS: number }, timing: Timing): Promise<{ ok: true; mapping: Mapping } | { ok: false; reason: string }> {
	const result = await udpExchange(
		gateway,
		targetsOf(timing).pmpPort,
		timing.timeoutMs ?? defaultTimeoutMs,
		() => pmp.encodeMapRequest({ protocol: options.protocol, internalPort: options.internalPort, suggestedPort: options.lifetimeS === 0 ? 0 : (options.suggestedPort ?? options.internalPort), lifetimeS: options.lifetimeS }),
		(data) => {
			const decoded = pmp.decodeResponse(data, { opcode: "map", protocol: options.protocol, internalPort: options.internalPort });
			return decoded.ok ? { value: decoded.response } : { ignore: decoded.reason };
		},
	);
	if (!result.ok) return result;
	const response = result.value as Extract<pmp.NatPmpResponse, { opcode: "map" }>;
	if (response.result !== 0) return { ok: false, reason: `NAT-PMP result ${response.result} ${response.resultName}` };
	return {
		ok: true,
		mapping: { method: "nat-pmp", gateway, protocol: options.protocol, internal: `${result.local}:${options.internalPort}`, external: `${external}:${response.externalPort}`, lifetimeS: response.lifetimeS, epoch: response.epoch },
	};
}

// ── UPnP-IGD ────────────────────────────────────────────────────────────────

/** Our IPv4 address toward `gateway` (the kernel's choice of source address; nothing is sent). */
function localAddressToward(gateway: string, port: number): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = createSocket("udp4");
		socket.on("error", (error) => {
			socket.close();
			reject(error);
		});
		socket.connect(port, gateway, () => {
			const { address } = socket.address();
			socket.close();
			resolve(address);
		});
	});
}

/** M-SEARCH for an Internet gateway; the first valid answer from `gateway` (its LOCATION), or why none came. */
function ssdpSearch(gateway: string, timing: Timing): Promise<{ ok: true; location: string; server?: string } | { ok: false; reason: string; answered: boolean }> {
	const target = targetsOf(timing).ssdp;
	const waitMs = timing.ssdpWaitMs ?? defaultSsdpWaitMs;
	return new Promise((resolve) => {
		const socket = createSocket("udp4");
		let refused: string | undefined;
		let others = 0;
		const { timers, settled, finish } = ending(resolve, () => socket.close());
		socket.on("error", (error: NodeJS.ErrnoException) => finish({ ok: false, reason: `SSDP socket error: ${error.code ?? message(error)}`, answered: false }));
		socket.on("message", (data, from) => {
			if (from.address !== gateway) return void others++;
			const answer = upnp.parseSsdpAnswer(data, gateway);
			if (answer.ok) finish({ ok: true, location: answer.location, ...(answer.server ? { server: answer.server } : {}) });
			else refused = answer.reason;
		});
		socket.bind(0, async () => {
			try {
				socket.setMulticastTTL(2);
				socket.setMulticastInterface(await localAddressToward(gateway, target.port));
			} catch {}
			const search = upnp.mSearch();
			const send = () => !settled() && socket.send(search, target.port, target.address, (error) => error && finish({ ok: false, reason: `cannot send the M-SEARCH: ${(error as NodeJS.ErrnoException).code ?? message(error)}`, answered: false }));
			send();
			timers.push(setTimeout(send, 250));
			timers.push(
				setTimeout(() => {
					const detail = refused ? ` (refused the gateway's answer: ${refused})` : others ? ` (${others} answer${others === 1 ? "" : "s"} from other hosts ignored)` : "";
					finish({ ok: false, reason: `no SSDP answer from ${gateway} within ${waitMs} ms${detail}`, answered: refused !== undefined });
				}, waitMs),
			);
		});
	});
}

/** One HTTP request to the gateway: status and body (capped), or why not. Never rejects. */
function httpExchange(url: string, options: { method: "GET" | "POST"; headers?: Record<string, string>; body?: string; timeoutMs: number; maxBytes: number }): Promise<{ ok: true; status: number; body: string } | { ok: false; reason: string }> {
	return new Promise((resolve) => {
		let settled = false;
		const finish = (result: { ok: true; status: number; body: string } | { ok: false; reason: string }) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			request.destroy();
			resolve(result);
		};
		const body = options.body === undefined ? undefined : Buffer.from(options.body, "utf8");
		const request = httpRequest(url, { method: options.method, agent: false, headers: { ...options.headers, ...(body ? { "Content-Length": String(body.length) } : {}), Connection: "close" } }, (response) => {
			const chunks: Buffer[] = [];
			let size = 0;
			response.on("data", (chunk: Buffer) => {
				size += chunk.length;
				if (size > options.maxBytes) return finish({ ok: false, reason: `answer larger than ${options.maxBytes} bytes` });
				chunks.push(chunk);
			});
			response.on("end", () => finish({ ok: true, status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
			response.on("error", (error) => finish({ ok: false, reason: `HTTP: ${message(error)}` }));
		});
		const timer = setTimeout(() => finish({ ok: false, reason: `no HTTP answer within ${options.timeoutMs} ms` }), options.timeoutMs);
		request.on("error", (error: NodeJS.ErrnoException) => finish({ ok: false, reason: `HTTP: ${error.code ?? message(error)}` }));
		request.end(body);
	});
}

async function soap(control: { serviceType: string; url: string }, action: upnp.SoapAction, args: [string, string | number][], timing: Timing): Promise<upnp.SoapResult> {
	const answer = await httpExchange(control.url, {
		method: "POST",
		headers: { "Content-Type": 'text/xml; charset="utf-8"', SOAPAction: upnp.soapActionHeader(control.serviceType, action) },
		body: upnp.soapBody(control.serviceType, action, args),
		timeoutMs: timing.timeoutMs ?? defaultTimeoutMs,
		maxBytes: upnp.maxSoapResponse,
	});
	if (!answer.ok) return answer;
	return upnp.parseSoapResponse(answer.status, answer.body, action);
}

/** SSDP, the root description, GetExternalIPAddress: the gateway's UPnP control point and public address. */
async function upnpDiscover(gateway: string, timing: Timing): Promise<Discovered & { control?: { serviceType: string; url: string } }> {
	const failed = (reason: string, answered: boolean) => ({ method: "upnp" as const, answered, ok: false as const, reason });
	const found = await ssdpSearch(gateway, timing);
	if (!found.ok) return failed(found.reason, found.answered);
	const description = await httpExchange(found.location, { method: "GET", timeoutMs: timing.timeoutMs ?? defaultTimeoutMs, maxBytes: upnp.maxDescription });
	if (!description.ok) return failed(`root description ${found.location}: ${description.reason}`, true);
	if (description.status !== 200) return failed(`root description ${found.location}: HTTP ${description.status}`, true);
	const parsed = upnp.parseDescription(description.body, found.location, gateway);
	if (!parsed.ok) return failed(`root description ${found.location}: ${parsed.reason}`, true);
	const control = { serviceType: parsed.serviceType, url: parsed.controlUrl };
	const external = await soap(control, "GetExternalIPAddress", [], timing);
	if (!external.ok) return failed(`GetExternalIPAddress: ${external.reason}`, true);
	const address = external.values.NewExternalIPAddress ?? "";
	if (!pcp.isIPv4Text(address) || address === "0.0.0.0") return failed(`GetExternalIPAddress: no usable address (${JSON.stringify(address.slice(0, 40))})`, true);
	return { method: "upnp", answered: true, ok: true, external: address, location: found.location, ...(found.server ? { server: found.server } : {}), control };
}

const randomPort = () => 1024 + randomBytes(2).readUInt16BE(0) % (65536 - 1024);

async function upnpMap(gateway: string, found: { external: string; control: { serviceType: string; url: string } }, options: { protocol: MapProtocol; internalPort: number; externalPort?: number; lifetimeS: number; description: string }, timing: Timing): Promise<{ ok: true; mapping: Mapping } | { ok: false; reason: string }> {
	let internalClient: string;
	try {
		internalClient = await localAddressToward(gateway, 9);
	} catch (error) {
		return { ok: false, reason: `no local address toward ${gateway}: ${message(error)}` };
	}
	// The same external port as ours first; another (at random) when that one is taken, twice.
	const ports = options.externalPort !== undefined ? [options.externalPort] : [options.internalPort, randomPort(), randomPort()];
	let leaseS = options.lifetimeS;
	let last = "";
	for (let index = 0; index < ports.length; index++) {
		const answer = await soap(found.control, "AddPortMapping", upnp.addPortMappingArgs({ externalPort: ports[index], protocol: options.protocol, internalPort: options.internalPort, internalClient, description: options.description, leaseS }), timing);
		if (answer.ok)
			return {
				ok: true,
				mapping: { method: "upnp", gateway, protocol: options.protocol, internal: `${internalClient}:${options.internalPort}`, external: `${found.external}:${ports[index]}`, lifetimeS: leaseS, control: found.control, description: options.description },
			};
		last = `AddPortMapping: ${answer.reason}`;
		if (answer.code === 725 && leaseS !== 0) {
			leaseS = 0; // OnlyPermanentLeasesSupported: ask again for a permanent one (deleted on close)
			index--;
			continue;
		}
		if (answer.code !== 718) break;
	}
	return { ok: false, reason: last };
}

// ── the API ─────────────────────────────────────────────────────────────────

/** Ask all the methods at once which answer: PCP ANNOUNCE, NAT-PMP's external address, UPnP's discovery. Never rejects. */
export async function discover(gateway: string, options: Timing & { methods?: readonly PortMappingProtocol[] } = {}): Promise<Discovery> {
	const methods = orderedMethods(options.methods);
	const found = await Promise.all(methods.map((method) => discoverOne(gateway, method, options)));
	return { gateway, answered: found.filter((entry) => entry.ok).map((entry) => entry.method), methods: found.map(({ control: _control, ...entry }) => entry as Discovered) };
}

async function discoverOne(gateway: string, method: PortMappingProtocol, timing: Timing): Promise<Discovered & { control?: { serviceType: string; url: string } }> {
	try {
		if (method === "pcp") return await pcpAnnounce(gateway, timing);
		if (method === "nat-pmp") return await pmpAddress(gateway, timing);
		return await upnpDiscover(gateway, timing);
	} catch (error) {
		return { method, answered: false, ok: false, reason: `internal: ${message(error)}` };
	}
}

/** The methods asked for, known ones only, each once, in the order given (default: pcp, nat-pmp, upnp). */
function orderedMethods(methods: readonly PortMappingProtocol[] | undefined): PortMappingProtocol[] {
	return [...new Set(methods ?? askingOrder)].filter((method) => askingOrder.includes(method));
}

/**
 * A mapping of our `internalPort` from the first method (in order) that grants one; each method
 * before it says why it did not. Never rejects.
 */
export async function requestMapping(request: MappingRequest): Promise<MappingOutcome> {
	const failures: MethodFailure[] = [];
	const methods = orderedMethods(request.methods);
	if (!pcp.isIPv4Text(request.gateway)) return { ok: false, failures: methods.map((method) => ({ method, reason: `no IPv4 gateway to ask (${JSON.stringify(request.gateway)})` })) };
	if (!Number.isInteger(request.internalPort) || request.internalPort < 1 || request.internalPort > 65535) return { ok: false, failures: methods.map((method) => ({ method, reason: `bad internal port ${request.internalPort}` })) };
	const lifetimeS = request.lifetimeS ?? defaultLifetimeS;
	const found = await Promise.all(methods.map((method) => discoverOne(request.gateway, method, request)));
	for (const entry of found) {
		if (!entry.ok) {
			failures.push({ method: entry.method, reason: entry.reason });
			continue;
		}
		let granted: { ok: true; mapping: Mapping } | { ok: false; reason: string };
		try {
			if (entry.method === "pcp") granted = await pcpMap(request.gateway, { protocol: request.protocol, internalPort: request.internalPort, lifetimeS }, request);
			else if (entry.method === "nat-pmp") granted = await pmpMap(request.gateway, entry.external!, { protocol: request.protocol, internalPort: request.internalPort, lifetimeS }, request);
			else granted = await upnpMap(request.gateway, { external: entry.external!, control: entry.control! }, { protocol: request.protocol, internalPort: request.internalPort, lifetimeS, description: request.description ?? "testbed peer" }, request);
		} catch (error) {
			granted = { ok: false, reason: `internal: ${message(error)}` };
		}
		if (granted.ok) return { ok: true, mapping: granted.mapping, failures };
		failures.push({ method: entry.method, reason: granted.reason });
	}
	return { ok: false, failures };
}

/** Renew a mapping for its lifetime again (PCP: the same nonce; NAT-PMP and UPnP: the same external port). Never rejects. */
export async function refreshMapping(mapping: Mapping, timing: Timing = {}): Promise<{ ok: true; mapping: Mapping } | { ok: false; reason: string }> {
	try {
		const internalPort = splitHostPort(mapping.internal)!.port;
		const external = splitHostPort(mapping.external)!;
		const lifetimeS = mapping.lifetimeS || defaultLifetimeS;
		if (mapping.method === "pcp") return await pcpMap(mapping.gateway, { protocol: mapping.protocol, internalPort, suggested: mapping.external, lifetimeS, nonce: Buffer.from(mapping.nonce ?? "", "hex") }, timing);
		if (mapping.method === "nat-pmp") return await pmpMap(mapping.gateway, external.address, { protocol: mapping.protocol, internalPort, suggestedPort: external.port, lifetimeS }, timing);
		return await upnpMap(mapping.gateway, { external: external.address, control: mapping.control! }, { protocol: mapping.protocol, internalPort, externalPort: external.port, lifetimeS: mapping.lifetimeS, description: mapping.description ?? "testbed peer" }, timing);
	} catch (error) {
		return { ok: false, reason: `internal: ${message(error)}` };
	}
}

/** Delete a mapping (best effort: its lease ends anyway). Never rejects. */
export async function deleteMapping(mapping: Mapping, timing: Timing = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
	try {
		const internalPort = splitHostPort(mapping.internal)!.port;
		const external = splitHostPort(mapping.external)!;
		if (mapping.method === "pcp") {
			const result = await pcpMap(mapping.gateway, { protocol: mapping.protocol, internalPort, suggested: mapping.external, lifetimeS: 0, nonce: Buffer.from(mapping.nonce ?? "", "hex") }, timing);
			return result.ok ? { ok: true } : result;
		}
		if (mapping.method === "nat-pmp") {
			const result = await pmpMap(mapping.gateway, external.address, { protocol: mapping.protocol, internalPort, lifetimeS: 0 }, timing);
			return result.ok ? { ok: true } : result;
		}
		const answer = await soap(mapping.control!, "DeletePortMapping", upnp.deletePortMappingArgs({ externalPort: external.port, protocol: mapping.protocol }), timing);
		return answer.ok ? { ok: true } : { ok: false, reason: `DeletePortMapping: ${answer.reason}` };
	} catch (error) {
		return { ok: false, reason: `internal: ${message(error)}` };
	}
}

/** "a.b.c.d:port" → parts, or undefined. */
export function splitHostPort(text: string): { address: string; port: number } | undefined {
	const colon = text.lastIndexOf(":");
	const address = text.slice(0, colon);
	const port = Number(text.slice(colon + 1));
	return colon > 0 && pcp.isIPv4Text(address) && Number.isInteger(port) && port >= 1 && port <= 65535 ? { address, port } : undefined;
}

/** A failure list as one line: "pcp: no answer within 2000 ms; nat-pmp: …". */
export const failureText = (failures: readonly MethodFailure[]): string => failures.map((failure) => `${failure.method}: ${failure.reason}`).join("; ");
