// `punch`: UDP or TCP hole punching between lab nodes. One rendezvous agent on a public host (or on a
// temporary host attached for the purpose) and, lazily, one peer agent per node; every punch uses
// fresh endpoints ("alice.7", "bob.7"), so runs and pairs are independent of each other.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { attachHost, type AttachedHost } from "../apply/attach.ts";
import { appendJournal } from "../apply/journal.ts";
import { LabStateError } from "../errors.ts";
import { AgentProcess, agentPlace, type AgentEvent } from "./agent-process.ts";
import { ask, PeerAgent, peerNode, type PortMappingReport } from "./peer-agent.ts";
import { primaryAddress6, publicRouter, rendezvousHost } from "./rendezvous-host.ts";
import { pathRank, rendezvousPort, type PunchOutcome, type PunchProto } from "../vocabulary/punch.ts";
import { askingOrder, type PortMappingProtocol } from "../vocabulary/port-mapping.ts";

/** A path that went through a port mapping: whose (the node whose gateway granted it), by which method, its public endpoint. */
export interface MappedVia {
	node: string;
	method: PortMappingProtocol;
	external: string;
}

export interface PunchResult {
	/** The two nodes; a started the session, b was told by the rendezvous. */
	a: string;
	b: string;
	outcome: PunchOutcome;
	/** From the rendezvous' start signal to the first confirmed path (the later of both sides); null when failed. */
	timeToConnectMs: number | null;
	/** Datagrams both sides sent in the session until their outcome. */
	packetsSent: number;
	/** Median RTT over the chosen path, measured by a; null when failed. */
	rttMs: number | null;
	/** The remote endpoint each side talks to (the rendezvous' for a relayed path). */
	remote?: { a: string; b: string };
	/** What kind of candidate of the other side each side's path goes to: host, mapped, srflx, prflx or relay. */
	candidates?: { a: string; b: string };
	/** With portMapping: what each side's gateway granted, or why not (null: the side never got to ask). */
	portMapping?: { a: PortMappingReport | null; b: PortMappingReport | null };
	/** The port mappings the path went through (empty or absent: none). */
	mappedVia?: MappedVia[];
	error?: string;
	/** 1 for the first punch of this pair in the session, 2 for the next… */
	run: number;
}

/** How a connect paces its probes, when it gives up, and whether it may fall back to the relay. */
export type Pacing = Required<Pick<PunchOptions, "intervalMs" | "deadlineMs" | "relay">>;

export interface PunchOptions {
	/** Between two rounds of probes (default 20). */
	intervalMs?: number;
	/** Direct attempts give up after this long, and so does the relay after that (default 3000). */
	deadlineMs?: number;
	/** Fall back to the rendezvous relay when no direct path confirms (default true). */
	relay?: boolean;
	/** UDP datagrams (default), or TCP simultaneous open (each node gets a second peer agent). */
	proto?: PunchProto;
	/** IPv4 (default), or IPv6: through the gateways' firewalls, to the rendezvous' IPv6 address. */
	family?: 4 | 6;
	/**
	 * Both peers first ask their gateway for a port mapping of their endpoint (true: PCP, NAT-PMP,
	 * UPnP, in that order; or the methods to try, in order) and offer what it grants as a candidate.
	 */
	portMapping?: boolean | readonly PortMappingProtocol[];
}

/** PunchOptions' portMapping as the methods to ask with, in order (none: []). */
export const portMappingMethods = (option: PunchOptions["portMapping"]): readonly PortMappingProtocol[] => (option === true ? askingOrder : option === false || option === undefined ? [] : option);

interface Attempt {
	a: string;
	b: string;
	endpointA: string;
	endpointB: string;
	run: number;
	error?: string;
	events?: [AgentEvent | undefined, AgentEvent | undefined];
	/** With port mapping: each side's report from its open. */
	mapping?: { a: PortMappingReport | null; b: PortMappingReport | null };
}

/** Which peer agent of a node: one per protocol and family (UDP over IPv4 keyed by the node's name alone). */
const peerKey = (node: string, proto: PunchProto, family: 4 | 6) => (proto === "udp" && family === 4 ? node : `${node}/${proto}/${family}`);

export class PunchSession {
	private readonly peers = new Map<string, Promise<PeerAgent>>();
	private readonly runs = new Map<string, number>();
	private nextEndpoint = 0;
	private closed = false;

	private constructor(
		readonly lab: Lab,
		/** The rendezvous host, its "ip:port" (and "[ipv6]:port" where it has IPv6), and whether it was attached for this session. */
		readonly rendezvous: { node: LabNode; endpoint: string; endpoint6?: string; temporary: boolean },
		private readonly server: AgentProcess,
		private readonly attached: AttachedHost | undefined,
	) {}

	/** Start the rendezvous (attaching a temporary public host when the lab has none). */
	static async start(lab: Lab): Promise<PunchSession> {
		let host = rendezvousHost(lab);
		let attached: AttachedHost | undefined;
		let server: AgentProcess | undefined;
		try {
			if (!host) {
				const router = publicRouter(lab);
				if (!router) throw new LabStateError(`lab "${lab.name}" has no public host to run a rendezvous on and no public router to attach one to`, "NO_RENDEZVOUS_HOST");
				attached = await attachHost(lab, router, "tb-rdv", 1);
				host = { node: attached.node, address: attached.addresses[0] };
			}
			const address6 = primaryAddress6(host.node);
			server = new AgentProcess(agentPlace(lab.name, host.node), host.node.name, "rendezvous", ["--address", host.address, ...(address6 ? ["--address6", address6] : []), "--port", String(rendezvousPort)]);
			await server.started();
			return new PunchSession(lab, { node: host.node, endpoint: `${host.address}:${rendezvousPort}`, ...(address6 ? { endpoint6: `[${address6}]:${rendezvousPort}` } : {}), temporary: Boolean(attached) }, server, attached);
		} catch (error) {
			await server?.stop().catch(() => undefined);
			await attached?.detach().catch(() => undefined);
			throw error;
		}
	}

	/** Fresh endpoint names for a pair, and the run number of the pair in this session. */
	newEndpoints(a: string, b: string): { endpointA: string; endpointB: string; run: number } {
		const n = ++this.nextEndpoint;
		const key = `${a}\u0000${b}`;
		const run = (this.runs.get(key) ?? 0) + 1;
		this.runs.set(key, run);
		return { endpointA: `${a}.${n}`, endpointB: a === b ? `${b}.${n}.b` : `${b}.${n}`, run };
	}

	/** Stop a node's peer agent (if it runs) and start a fresh one in its place. */
	async replacePeer(name: string, proto: PunchProto = "udp", family: 4 | 6 = 4): Promise<PeerAgent> {
		if (this.closed) throw new Error("the punch session is closed");
		const node = peerNode(this.lab, name);
		const key = peerKey(node.name, proto, family);
		const old = this.peers.get(key);
		this.peers.delete(key);
		if (old) await old.then((agent) => agent.stop()).catch(() => undefined);
		return this.peer(node.name, proto, family);
	}

	/** The peer agent of a node for a protocol and family, started on first use. */
	peer(name: string, proto: PunchProto = "udp", family: 4 | 6 = 4): Promise<PeerAgent> {
		if (this.closed) return Promise.reject(new Error("the punch session is closed"));
		const node = peerNode(this.lab, name);
		const key = peerKey(node.name, proto, family);
		let agent = this.peers.get(key);
		if (!agent) {
			if (family === 6 && !node.ipv6) return Promise.reject(new LabStateError(`node "${name}" of lab "${this.lab.name}" has no IPv6 address to punch from`, "NO_IPV6"));
			if (family === 6 && !this.rendezvous.endpoint6) return Promise.reject(new LabStateError(`lab "${this.lab.name}" has no public host with an IPv6 address to run the rendezvous on`, "NO_RENDEZVOUS_HOST"));
			agent = PeerAgent.start(node, family === 6 ? this.rendezvous.endpoint6! : this.rendezvous.endpoint, this.lab.name, proto);
			agent.catch(() => this.peers.delete(key));
			this.peers.set(key, agent);
		}
		return agent;
	}

	/** The rendezvous' counters: registrations, sessions, relayed datagrams, drops by reason. */
	rendezvousStats(): Promise<AgentEvent> {
		return ask(this.server, { cmd: "stats" });
	}

	/** Punch a hole between nodes a and b (a starts, b is told by the rendezvous). */
	async punch(a: string, b: string, options: PunchOptions = {}): Promise<PunchResult> {
		return (await this.punchMany([[a, b]], options))[0];
	}

	/** Punch all pairs at once: every endpoint is opened first, then every connect goes out together. */
	async punchMany(pairs: [string, string][], options: PunchOptions = {}): Promise<PunchResult[]> {
		const settings = { intervalMs: options.intervalMs ?? 20, deadlineMs: options.deadlineMs ?? 3000, relay: options.relay ?? true };
		const proto = options.proto ?? "udp";
		const family = options.family ?? 4;
		const portMapping = portMappingMethods(options.portMapping);
		if (portMapping.length > 0 && family === 6) throw new LabStateError("port mapping asks the nodes' IPv4 gateways: punch over IPv4 to use it", "NO_IPV6");
		for (const name of pairs.flat()) peerNode(this.lab, name);
		const attempts: Attempt[] = pairs.map(([a, b]) => ({ a, b, ...this.newEndpoints(a, b), ...(portMapping.length ? { mapping: { a: null, b: null } } : {}) }));
		for (const { a, b, run } of attempts) appendJournal(this.lab.name, { kind: "punch-started", a, b, run });
		const opened: { agent: PeerAgent; endpoint: string }[] = [];
		try {
			// Open every endpoint (registering it with the rendezvous).
			await Promise.all(
				attempts.map(async (attempt) => {
					try {
						const [agentA, agentB] = await Promise.all([this.peer(attempt.a, proto, family), this.peer(attempt.b, proto, family)]);
						await Promise.all(
							(
								[
									[agentA, attempt.endpointA, "a"],
									[agentB, attempt.endpointB, "b"],
								] as const
							).map(async ([agent, endpoint, side]) => {
								const registered = await agent.open(endpoint, portMapping.length ? { portMapping } : {});
								opened.push({ agent, endpoint });
								if (attempt.mapping) attempt.mapping[side] = registered.portMapping ?? null;
							}),
						);
					} catch (error) {
						attempt.error = String((error as Error)?.message ?? error);
					}
				}),
			);
			// Then connect them all at once, and wait for both sides' outcomes.
			const waitMs = 2 * settings.deadlineMs + 10_000;
			await Promise.all(
				attempts.map(async (attempt) => {
					if (attempt.error) return;
					const [agentA, agentB] = await Promise.all([this.peer(attempt.a, proto, family), this.peer(attempt.b, proto, family)]);
					const reply = await agentA.connect(attempt.endpointA, attempt.endpointB, settings);
					if (reply.event !== "started") {
						attempt.error = String(reply.error ?? `unexpected reply ${reply.event}`);
						return;
					}
					attempt.events = await Promise.all([agentA.outcome(attempt.endpointA, waitMs), agentB.outcome(attempt.endpointB, waitMs)]);
				}),
			);
		} finally {
			await Promise.all(opened.map(({ agent, endpoint }) => agent.close(endpoint).catch(() => undefined)));
		}
		const results = attempts.map(result);
		for (const { a, b, run, outcome, timeToConnectMs, rttMs, error } of results) appendJournal(this.lab.name, { kind: "punch-ended", a, b, run, outcome, timeToConnectMs, rttMs, ...(error ? { error } : {}) });
		return results;
	}

	/** Stop every agent; detach the temporary rendezvous host if there is one. Safe to call twice. */
	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		try {
			const agents = await Promise.allSettled([...this.peers.values()]);
			await Promise.all(agents.map((agent) => (agent.status === "fulfilled" ? agent.value.stop().catch(() => undefined) : undefined)));
			await this.server.stop().catch(() => undefined);
		} finally {
			await this.attached?.detach();
		}
	}
}

/** A pair's path is the worse of its two sides' paths (the relay is worse than direct). */
export function worsePath(a: PunchOutcome, b: PunchOutcome): PunchOutcome {
	return pathRank[b] > pathRank[a] ? b : a;
}

/**
 * The port mappings a connected pair's path went through: a side whose path goes to the other's
 * "mapped" candidate uses the other's mapping; a side the other sees at its own granted endpoint
 * (the ack's `seenAs`) uses its own.
 */
export function mappedVia(nodes: { a: string; b: string }, events: { a: AgentEvent; b: AgentEvent }, mapping: { a: PortMappingReport | null; b: PortMappingReport | null }): MappedVia[] {
	const via: MappedVia[] = [];
	const add = (owner: "a" | "b", external: string) => {
		const granted = mapping[owner]?.granted;
		if (granted && granted.external === external && !via.some((entry) => entry.node === nodes[owner])) via.push({ node: nodes[owner], method: granted.method, external });
	};
	for (const [side, other] of [["a", "b"], ["b", "a"]] as const) {
		if (events[side].candidate === "mapped") add(other, String(events[side].remote));
		if (typeof events[side].seenAs === "string") add(side, events[side].seenAs as string);
	}
	return via;
}

/** Both sides' events → one result. The pair's path is the worse of the two sides' paths. */
function result(attempt: Attempt): PunchResult {
	const base = { a: attempt.a, b: attempt.b, run: attempt.run, ...(attempt.mapping ? { portMapping: attempt.mapping } : {}) };
	if (attempt.error || !attempt.events) return { ...base, outcome: "failed", timeToConnectMs: null, packetsSent: 0, rttMs: null, error: attempt.error ?? "no outcome" };
	const [eventA, eventB] = attempt.events;
	const packetsSent = Number(eventA?.packetsSent ?? 0) + Number(eventB?.packetsSent ?? 0);
	if (eventA?.event === "connected" && eventB?.event === "connected") {
		const [pathA, pathB] = [eventA.path as PunchOutcome, eventB.path as PunchOutcome];
		return {
			...base,
			outcome: worsePath(pathA, pathB),
			timeToConnectMs: Math.max(Number(eventA.timeToConnectMs), Number(eventB.timeToConnectMs)),
			packetsSent,
			rttMs: (eventA.rttMs as number | null) ?? (eventB.rttMs as number | null) ?? null,
			remote: { a: String(eventA.remote), b: String(eventB.remote) },
			candidates: { a: String(eventA.candidate), b: String(eventB.candidate) },
			...(attempt.mapping ? { mappedVia: mappedVia({ a: attempt.a, b: attempt.b }, { a: eventA, b: eventB }, attempt.mapping) } : {}),
		};
	}
	const why = (endpoint: string, event: AgentEvent | undefined) =>
		event === undefined ? `${endpoint}: no outcome in time` : event.event === "failed" ? `${endpoint}: ${String(event.reason)}` : undefined;
	const error = [why(attempt.endpointA, eventA), why(attempt.endpointB, eventB)].filter(Boolean).join("; ");
	return { ...base, outcome: "failed", timeToConnectMs: null, packetsSent, rttMs: null, error };
}

/** Punch between a and b `runs` times (default 1) in one session, then stop every agent. */
export async function punch(lab: Lab, a: string, b: string, options: PunchOptions & { runs?: number } = {}): Promise<PunchResult[]> {
	peerNode(lab, a);
	peerNode(lab, b);
	const session = await PunchSession.start(lab);
	try {
		const results: PunchResult[] = [];
		for (let run = 0; run < (options.runs ?? 1); run++) results.push(await session.punch(a, b, options));
		return results;
	} finally {
		await session.close();
	}
}
