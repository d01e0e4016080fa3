// Hole punching logic without sockets: path classification, candidates, the handshake state
// machine (driven by a simulated network and clock), and the rendezvous core (registration,
// tokens, start signals, relay, drops and rate limiting).
import { randomBytes } from "node:crypto";
import test from "ava";
import { type Message, type PeerMessage, type ServerMessage, decodeMessage, encode, isPeerMessage } from "../../agents/punch/protocol.ts";
import {
	PunchStateMachine,
	type RoundParams,
	type SessionAction,
	type SessionParams,
	type Via,
	classifyPath,
	initialCandidates,
	keepaliveMs,
	median,
	relayVia,
	repunchBackoff,
} from "../../agents/punch/session.ts";
import { RendezvousCore, defaultLimits } from "../../agents/punch/rendezvous-core.ts";
import { holdTiming } from "../../src/drivers/held-session.ts";
import { punch } from "../../src/drivers/punch.ts";
import { rendezvousHost } from "../../src/drivers/rendezvous-host.ts";
import { LabStateError, loadLab, loadLabText } from "../../src/index.ts";

const nonce = "0123456789abcdef0123456789abcdef";
let txCounter = 0;
const newTx = () => (++txCounter).toString(16).padStart(16, "0");

// ── pure helpers ────────────────────────────────────────────────────────────

test("classifyPath: host candidate → lan; same public address → hairpin; else direct; relay → relayed", (t) => {
	const peerHost = ["192.168.1.3:4000"];
	t.is(classifyPath("192.168.1.3:4000", peerHost, "198.51.100.2:4001", "198.51.100.2:5000"), "lan");
	t.is(classifyPath("198.51.100.2:4001", peerHost, "198.51.100.2:4001", "198.51.100.2:5000"), "hairpin");
	t.is(classifyPath("198.51.100.6:4001", peerHost, "198.51.100.6:4001", "198.51.100.2:5000"), "direct");
	t.is(classifyPath("198.51.100.6:4999", peerHost, "198.51.100.6:4001", "198.51.100.2:5000"), "direct", "a peer-reflexive remote");
	t.is(classifyPath(relayVia, peerHost, "198.51.100.6:4001", "198.51.100.2:5000"), "relayed");
	// A public peer: its host candidate is its reflexive one, so it is not "lan".
	t.is(classifyPath("203.0.113.10:4000", ["203.0.113.10:4000"], "203.0.113.10:4000", "198.51.100.2:5000"), "direct");
});

test("initialCandidates: host candidates first, then the reflexive one, without duplicates", (t) => {
	t.deepEqual([...initialCandidates(["192.168.1.2:1", "10.0.0.2:1"], "198.51.100.2:9")], [
		["192.168.1.2:1", "host"],
		["10.0.0.2:1", "host"],
		["198.51.100.2:9", "srflx"],
	]);
	t.deepEqual([...initialCandidates(["203.0.113.10:1"], "203.0.113.10:1")], [["203.0.113.10:1", "host"]]);
});

test("median", (t) => {
	t.is(median([]), null);
	t.is(median([3]), 3);
	t.is(median([5, 1, 3]), 3);
	t.is(median([4, 1, 3, 2]), 2.5);
});

// ── the state machine on a simulated network ────────────────────────────────

interface Side {
	name: "a" | "b";
	machine: PunchStateMachine;
	/** Everything but datagrams the machine said, and when. */
	results: SessionAction[];
	times: number[];
}

function params(self: string, peer: string, overrides: Partial<SessionParams>): SessionParams {
	return { self, peer, nonce, peerHost: [], peerReflexive: "198.51.100.1:1", selfReflexive: "198.51.100.2:1", intervalMs: 20, deadlineMs: 1000, relay: true, startedAt: 0, newTx, ...overrides };
}

/**
 * Two machines and a network: `route(from, to)` is the source address the receiver sees when side
 * `from` sends to `to`, or undefined when the network drops it. Delivery takes `latency` ms.
 */
class Network {
	now = 0;
	readonly sides: Record<"a" | "b", Side>;
	private queue: { at: number; to: "a" | "b"; from: Via; message: PeerMessage }[] = [];
	sent = 0;

	constructor(
		a: SessionParams,
		b: SessionParams,
		private readonly route: (from: "a" | "b", to: Via) => { side: "a" | "b"; source: Via } | undefined,
		private readonly latency = 1,
	) {
		this.sides = { a: { name: "a", machine: new PunchStateMachine(a), results: [], times: [] }, b: { name: "b", machine: new PunchStateMachine(b), results: [], times: [] } };
	}

	/** Carry out a side's actions (datagrams onto the network, the rest into its results). */
	apply(side: Side, actions: SessionAction[]): void {
		for (const action of actions) {
			if (action.kind !== "send") {
				side.results.push(action);
				side.times.push(this.now);
				continue;
			}
			this.sent++;
			const hop = this.route(side.name, action.to);
			if (hop) this.queue.push({ at: this.now + this.latency, to: hop.side, from: hop.source, message: action.message });
		}
	}

	/** Run until `until` ms, in 1 ms steps. */
	run(until: number): void {
		for (; this.now <= until; this.now++) {
			for (const side of Object.values(this.sides)) if (side.machine.nextWake() <= this.now) this.apply(side, side.machine.tick(this.now));
			const due = this.queue.filter((packet) => packet.at <= this.now);
			this.queue = this.queue.filter((packet) => packet.at > this.now);
			for (const packet of due) {
				const side = this.sides[packet.to];
				this.apply(side, side.machine.receive(this.now, packet.from, packet.message).actions);
			}
		}
	}
}

// Two peers behind two endpoint-independent NATs: each one's public endpoint is reachable once it has sent there.
const A_HOST = "192.168.1.2:5000";
const B_HOST = "192.168.1.2:6000";
const A_PUB = "198.51.100.2:5000";
const B_PUB = "198.51.100.6:6000";

function coneNetwork(options: { relay?: boolean; latency?: number; open?: boolean } = {}): Network {
	const opened = { a: new Set<Via>(), b: new Set<Via>() };
	const network = new Network(
		params("alice.1", "bob.1", { peerHost: [B_HOST], peerReflexive: B_PUB, selfReflexive: A_PUB, relay: options.relay ?? true }),
		params("bob.1", "alice.1", { peerHost: [A_HOST], peerReflexive: A_PUB, selfReflexive: B_PUB, relay: options.relay ?? true }),
		(from, to) => {
			const other = from === "a" ? "b" : "a";
			if (to === relayVia) return { side: other, source: relayVia };
			const [targetPub, ownPub] = from === "a" ? [B_PUB, A_PUB] : [A_PUB, B_PUB];
			if (to !== targetPub || options.open === false) return undefined; // private addresses lead nowhere
			opened[from].add(to);
			// Port-restricted filtering: only if the other side has sent to our public endpoint.
			return opened[other].has(ownPub) ? { side: other, source: ownPub } : undefined;
		},
		options.latency ?? 1,
	);
	return network;
}

test("two cone NATs: both sides confirm the direct path by the nonce handshake, then measure RTT", (t) => {
	const network = coneNetwork({ latency: 2 });
	network.run(500);
	for (const side of Object.values(network.sides)) {
		const result = side.results.find((action) => action.kind === "connected");
		t.truthy(result, side.name);
		if (result?.kind !== "connected") continue;
		t.is(result.path, "direct");
		t.is(result.remote, side.name === "a" ? B_PUB : A_PUB);
		t.true(result.timeToConnectMs <= 10, `connected after ${result.timeToConnectMs} ms`);
		t.is(result.rttMs, 4, "two 2 ms hops");
		t.true(result.packetsSent > 0);
		t.is(side.machine.phase, "connected");
	}
});

test("after connecting, a keepalive (a ping, answered with a pong) goes out every second by default", (t) => {
	const network = coneNetwork();
	network.run(100);
	const machine = network.sides.a.machine;
	t.is(machine.phase, "connected");
	t.is(machine.keepaliveInterval, keepaliveMs);
	t.is(machine.lossAfter, 3000);
	const wake = machine.nextWake();
	const actions = machine.tick(wake);
	t.is(actions.length, 1);
	t.like(actions[0], { kind: "send", to: B_PUB, message: { t: "ping", n: nonce, from: "alice.1" } });
	t.is(machine.nextWake(), wake + keepaliveMs);
	const seq = actions[0].kind === "send" && actions[0].message.t === "ping" ? actions[0].message.seq : -1;
	const answer = network.sides.b.machine.receive(wake + 1, A_PUB, { t: "ping", n: nonce, from: "alice.1", seq });
	t.deepEqual(answer.actions, [{ kind: "send", to: A_PUB, message: { t: "pong", n: nonce, from: "bob.1", seq } }]);
	t.is(machine.receive(wake + 2, B_PUB, { t: "pong", n: nonce, from: "bob.1", seq }).drop, undefined);
	t.is(machine.lastAcked, wake + 2);
	t.is(machine.lastHeard, wake + 2);
});

test("no path and relay allowed: after the deadline both sides confirm through the relay", (t) => {
	const network = coneNetwork({ open: false });
	network.run(1500);
	for (const side of Object.values(network.sides)) {
		const result = side.results.find((action) => action.kind === "connected");
		t.is(result?.kind === "connected" ? result.path : undefined, "relayed", side.name);
		t.is(result?.kind === "connected" ? result.remote : undefined, relayVia);
		t.true(result?.kind === "connected" && result.timeToConnectMs >= 1000 && result.timeToConnectMs < 1100);
	}
});

test("no path and no relay: both sides fail at the deadline", (t) => {
	const network = coneNetwork({ open: false, relay: false });
	network.run(1200);
	for (const side of Object.values(network.sides)) {
		t.is(side.results.length, 1);
		t.is(side.results[0].kind, "failed");
		t.regex(side.results[0].kind === "failed" ? side.results[0].reason : "", /no path confirmed within 1000 ms/);
		t.is(side.machine.phase, "failed");
	}
});

test("no path, relay allowed but silent: fails after the relay deadline too", (t) => {
	const machine = new PunchStateMachine(params("alice.1", "bob.1", { deadlineMs: 100 }));
	let actions = machine.tick(0);
	t.true(actions.every((action) => action.kind === "send"));
	actions = machine.tick(100);
	t.is(machine.phase, "relaying");
	t.true(actions.some((action) => action.kind === "send" && action.to === relayVia && action.message.t === "probe"));
	actions = machine.tick(200);
	t.is(machine.phase, "failed");
	t.is(actions.at(-1)?.kind, "failed");
});

test("a lan path that confirms during the grace period wins over the direct one confirmed first", (t) => {
	const A_LAN = "192.168.0.2:5000";
	const B_LAN = "192.168.0.3:6000";
	const network = new Network(
		params("alice.1", "bob.1", { peerHost: [B_LAN], peerReflexive: B_PUB, selfReflexive: A_PUB }),
		params("bob.1", "alice.1", { peerHost: [A_LAN], peerReflexive: A_PUB, selfReflexive: B_PUB }),
		(from, to) => {
			const other = from === "a" ? "b" : "a";
			// The public path is open at once; the LAN path only from 25 ms on (e.g. a slow ARP).
			if (to === (from === "a" ? B_PUB : A_PUB)) return { side: other, source: from === "a" ? A_PUB : B_PUB };
			if (to === (from === "a" ? B_LAN : A_LAN) && network.now >= 25) return { side: other, source: from === "a" ? A_LAN : B_LAN };
			return undefined;
		},
	);
	network.run(300);
	for (const side of Object.values(network.sides)) {
		const result = side.results.find((action) => action.kind === "connected");
		t.is(result?.kind === "connected" ? result.path : undefined, "lan", side.name);
		t.true(result?.kind === "connected" && result.timeToConnectMs < 10, "time to connect is the first confirmation");
	}
});

test("both behind one NAT, talking through its public address: hairpin", (t) => {
	const A = "198.51.100.2:5000";
	const B = "198.51.100.2:6000";
	const network = new Network(
		params("alice.1", "bob.1", { peerHost: ["10.0.1.2:6000"], peerReflexive: B, selfReflexive: A }),
		params("bob.1", "alice.1", { peerHost: ["10.0.2.2:5000"], peerReflexive: A, selfReflexive: B }),
		(from, to) => (to === (from === "a" ? B : A) ? { side: from === "a" ? "b" : "a", source: from === "a" ? A : B } : undefined),
	);
	network.run(300);
	const result = network.sides.a.results[0];
	t.is(result?.kind === "connected" ? result.path : undefined, "hairpin");
});

test("a peer behind a symmetric NAT reaches us from an unexpected port: a peer-reflexive candidate that confirms", (t) => {
	const B_OTHER = "198.51.100.6:6999"; // b's mapping towards a, not the one the rendezvous saw
	const sentFromA = new Set<Via>();
	const network = new Network(
		params("alice.1", "bob.1", { peerReflexive: B_PUB, selfReflexive: A_PUB }),
		params("bob.1", "alice.1", { peerReflexive: A_PUB, selfReflexive: B_PUB }),
		(from, to) => {
			if (from === "b") return to === A_PUB ? { side: "a", source: B_OTHER } : undefined; // a is full cone
			sentFromA.add(to);
			return to === B_OTHER ? { side: "b", source: A_PUB } : undefined; // b's filter lets in only what b sent to
		},
	);
	network.run(300);
	const a = network.sides.a;
	t.is(a.machine.candidates.get(B_OTHER), "prflx");
	const result = a.results.find((action) => action.kind === "connected");
	t.is(result?.kind === "connected" ? result.remote : undefined, B_OTHER);
	t.is(result?.kind === "connected" ? result.path : undefined, "direct");
	t.is(network.sides.b.results.find((action) => action.kind === "connected")?.kind, "connected");
});

test("the handshake cannot be faked: wrong nonce, wrong peer, our own probe reflected, acks of probes never sent", (t) => {
	const machine = new PunchStateMachine(params("alice.1", "bob.1", { peerReflexive: B_PUB }));
	const probes = machine.tick(0).filter((action): action is Extract<SessionAction, { kind: "send" }> => action.kind === "send");
	const ourTx = (probes[0].message as { tx: string }).tx;
	t.is(machine.receive(1, B_PUB, { t: "probe", n: "f".repeat(32), from: "bob.1", tx: "1".repeat(16) }).drop, "wrong-nonce");
	t.is(machine.receive(1, B_PUB, { t: "probe", n: nonce, from: "mallory", tx: "1".repeat(16) }).drop, "wrong-peer");
	// Our own probe, reflected back to us (e.g. sent to an address that is our own).
	t.is(machine.receive(1, A_PUB, { t: "probe", n: nonce, from: "alice.1", tx: ourTx }).drop, "wrong-peer");
	t.is(machine.receive(1, B_PUB, { t: "ack", n: nonce, from: "bob.1", tx: "9".repeat(16), seen: A_PUB }).drop, "unknown-tx");
	// An ack of our probe to B_PUB, but from somewhere else: not a confirmation of either.
	t.is(machine.receive(1, "198.51.100.99:1", { t: "ack", n: nonce, from: "bob.1", tx: ourTx, seen: A_PUB }).drop, "unknown-tx");
	t.is(machine.confirmed.size, 0);
	t.is(machine.phase, "punching");
	// A real probe from the peer alone does not confirm either: our own probe must be acked too.
	const answer = machine.receive(2, B_PUB, { t: "probe", n: nonce, from: "bob.1", tx: "2".repeat(16) });
	t.is(answer.drop, undefined);
	t.true(answer.actions.some((action) => action.kind === "send" && action.message.t === "ack" && action.message.tx === "2".repeat(16)));
	t.is(machine.confirmed.size, 0);
	machine.receive(3, B_PUB, { t: "ack", n: nonce, from: "bob.1", tx: ourTx, seen: A_PUB });
	t.true(machine.confirmed.has(B_PUB));
});

test("peer-reflexive candidates are capped", (t) => {
	const machine = new PunchStateMachine(params("alice.1", "bob.1", {}));
	machine.tick(0);
	const drops = Array.from({ length: 20 }, (_, i) => machine.receive(1, `198.51.100.${i + 10}:1`, { t: "probe", n: nonce, from: "bob.1", tx: "3".repeat(16) }).drop);
	t.is(drops.filter((drop) => drop === "too-many-candidates").length, 12);
});

test("pongs measure RTT; a stray pong is dropped", (t) => {
	const network = coneNetwork({ latency: 3 });
	network.run(400);
	const result = network.sides.a.results.find((action) => action.kind === "connected");
	t.is(result?.kind === "connected" ? result.rttMs : undefined, 6);
	t.is(network.sides.a.machine.receive(401, B_PUB, { t: "pong", n: nonce, from: "bob.1", seq: 999 }).drop, "unknown-pong");
});

test("close before a result fails the session with the reason; after it, nothing more is sent", (t) => {
	const machine = new PunchStateMachine(params("alice.1", "bob.1", {}));
	machine.tick(0);
	t.deepEqual(machine.close("closed"), [{ kind: "failed", reason: "closed", packetsSent: machine.packetsSent }]);
	t.is(machine.nextWake(), Infinity);
	t.deepEqual(machine.receive(1, B_PUB, { t: "probe", n: nonce, from: "bob.1", tx: "4".repeat(16) }).actions, []);
});

// ── the rendezvous core ─────────────────────────────────────────────────────

const ALICE = "198.51.100.2:40000";
const BOB = "198.51.100.6:41000";
const EVE = "198.51.100.66:666";
let tx = 0;
const nextTx = () => (++tx).toString(16).padStart(16, "0");

function server(limits = defaultLimits, wallClock = () => 1_700_000_000_123): { core: RendezvousCore; send: (from: string, message: Message, now?: number) => { to: string; message: ServerMessage }[] } {
	let secrets = 0;
	const core = new RendezvousCore(limits, () => (++secrets).toString(16).padStart(32, "0"), wallClock);
	const send = (from: string, message: Message, now = 0) => core.handle(encode(message)!, from, now).map((out) => ({ to: out.to, message: decodeMessage(out.bytes) as ServerMessage }));
	return { core, send };
}

function registered(send: ReturnType<typeof server>["send"], from: string, id: string, host: string[] = []): string {
	const [reply] = send(from, { t: "register", tx: nextTx(), id, host });
	if (reply.message.t !== "registered") throw new Error("not registered");
	return reply.message.token;
}

test("register: the reply carries the reflexive endpoint and a token; a retransmit gets the same token", (t) => {
	const { send } = server();
	const first = send(ALICE, { t: "register", tx: "a".repeat(16), id: "alice.1", host: ["192.168.1.2:40000"] });
	t.is(first.length, 1);
	t.is(first[0].to, ALICE);
	t.like(first[0].message, { t: "registered", tx: "a".repeat(16), id: "alice.1", reflexive: ALICE });
	const again = send(ALICE, { t: "register", tx: "b".repeat(16), id: "alice.1", host: ["192.168.1.2:40000"] });
	t.is((again[0].message as { token: string }).token, (first[0].message as { token: string }).token);
});

test("a spoofed id (registered from another endpoint, no token) is dropped and counted; the token moves it", (t) => {
	const { core, send } = server();
	const token = registered(send, ALICE, "alice.1");
	t.deepEqual(send(EVE, { t: "register", tx: nextTx(), id: "alice.1", host: [] }), []);
	t.deepEqual(send(EVE, { t: "register", tx: nextTx(), id: "alice.1", host: [], token: "e".repeat(32) }), []);
	t.deepEqual(send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: [], token: "e".repeat(32) }), []);
	t.deepEqual(core.stats().dropped, { "spoofed-id": 2, "bad-token": 1 });
	// With the token, from a new endpoint (the NAT rebinding): accepted, and the registration moves.
	const moved = send("198.51.100.2:40001", { t: "register", tx: nextTx(), id: "alice.1", host: [], token });
	t.like(moved[0].message, { t: "registered", reflexive: "198.51.100.2:40001" });
});

test("connect to an unknown id gets a clear error; unregistered or spoofed askers do not connect", (t) => {
	const { core, send } = server();
	const token = registered(send, ALICE, "alice.1");
	t.like(send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token, target: "carol.1", interval: 20, deadline: 1000, relay: true })[0].message, {
		t: "error",
		code: "unknown-peer",
		message: 'no peer registered as "carol.1"',
	});
	t.like(send(BOB, { t: "connect", tx: nextTx(), id: "bob.1", token, target: "alice.1", interval: 20, deadline: 1000, relay: true })[0].message, { t: "error", code: "not-registered" });
	t.like(send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token, target: "alice.1", interval: 20, deadline: 1000, relay: true })[0].message, { t: "error", code: "self" });
	t.deepEqual(send(EVE, { t: "connect", tx: nextTx(), id: "alice.1", token: "e".repeat(32), target: "alice.1", interval: 20, deadline: 1000, relay: true }), []);
	t.is(core.stats().dropped["spoofed-id"], 1);
	t.is(core.stats().errorsSent, 3);
});

test("connect: both peers get, in one go, the other's candidates, the nonce and the parameters", (t) => {
	const { send } = server();
	const aliceToken = registered(send, ALICE, "alice.1", ["192.168.1.2:40000"]);
	registered(send, BOB, "bob.1", ["192.168.1.2:41000"]);
	const out = send(ALICE, { t: "connect", tx: "c".repeat(16), id: "alice.1", token: aliceToken, target: "bob.1", interval: 15, deadline: 2000, relay: false });
	t.is(out.length, 2);
	const [toAlice, toBob] = out;
	t.is(toAlice.to, ALICE);
	t.is(toBob.to, BOB);
	t.like(toAlice.message, { t: "start", id: "alice.1", peer: "bob.1", host: ["192.168.1.2:41000"], srflx: BOB, role: "initiator", interval: 15, deadline: 2000, relay: false });
	t.like(toBob.message, { t: "start", id: "bob.1", peer: "alice.1", host: ["192.168.1.2:40000"], srflx: ALICE, role: "responder" });
	t.is((toAlice.message as { n: string }).n, (toBob.message as { n: string }).n);
	// Both are told the same start time, from the rendezvous' (injected) wall clock.
	t.is((toAlice.message as { at: number }).at, 1_700_000_000_123);
	t.is((toBob.message as { at: number }).at, 1_700_000_000_123);
	// A retransmitted connect (same tx) does not make a second session.
	const again = send(ALICE, { t: "connect", tx: "c".repeat(16), id: "alice.1", token: aliceToken, target: "bob.1", interval: 15, deadline: 2000, relay: false });
	t.is(again.length, 1);
	t.is((again[0].message as { n: string }).n, (toAlice.message as { n: string }).n);
});

test("start signals are resent until acknowledged", (t) => {
	const { core, send } = server();
	const aliceToken = registered(send, ALICE, "alice.1");
	const bobToken = registered(send, BOB, "bob.1");
	const [start] = send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token: aliceToken, target: "bob.1", interval: 20, deadline: 1000, relay: true });
	const n = (start.message as { n: string }).n;
	t.is(core.tick(50).length, 0);
	t.deepEqual(core.tick(100).map((out) => out.to).sort(), [ALICE, BOB].sort());
	send(BOB, { t: "start-ack", id: "bob.1", token: bobToken, n });
	t.deepEqual(core.tick(200).map((out) => out.to), [ALICE]);
	send(ALICE, { t: "start-ack", id: "alice.1", token: aliceToken, n });
	t.deepEqual(core.tick(300), []);
});

test("relay: forwards between the two peers of a session, and nothing else", (t) => {
	const { core, send } = server();
	const aliceToken = registered(send, ALICE, "alice.1");
	const bobToken = registered(send, BOB, "bob.1");
	const eveToken = registered(send, EVE, "eve.1");
	const [start] = send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token: aliceToken, target: "bob.1", interval: 20, deadline: 1000, relay: true });
	const n = (start.message as { n: string }).n;
	const probe: PeerMessage = { t: "probe", n, from: "alice.1", tx: "1".repeat(16) };
	t.deepEqual(send(ALICE, { t: "relay", id: "alice.1", token: aliceToken, n, data: probe }), [{ to: BOB, message: { t: "relayed", n, from: "alice.1", data: probe } }]);
	const ack: PeerMessage = { t: "ack", n, from: "bob.1", tx: "1".repeat(16), seen: ALICE };
	t.deepEqual(send(BOB, { t: "relay", id: "bob.1", token: bobToken, n, data: ack }), [{ to: ALICE, message: { t: "relayed", n, from: "bob.1", data: ack } }]);
	// Eve: spoofing alice, in no session, with a made-up session, or with data claiming to be someone else.
	t.deepEqual(send(EVE, { t: "relay", id: "alice.1", token: eveToken, n, data: probe }), []);
	t.deepEqual(send(EVE, { t: "relay", id: "eve.1", token: eveToken, n, data: { ...probe, from: "eve.1" } }), []);
	t.deepEqual(send(EVE, { t: "relay", id: "eve.1", token: eveToken, n: "f".repeat(32), data: { ...probe, n: "f".repeat(32), from: "eve.1" } }), []);
	t.deepEqual(send(BOB, { t: "relay", id: "bob.1", token: bobToken, n, data: probe }), []);
	t.deepEqual(core.stats().dropped, { "spoofed-id": 1, "not-in-session": 1, "unknown-session": 1, "bad-relay": 1 });
	t.is(core.stats().relayed, 2);
});

test("garbage is counted by reason and never throws; a flood from one source is rate-limited", (t) => {
	const { core, send } = server({ ...defaultLimits, burst: 100, perSecond: 100 });
	for (let i = 0; i < 1000; i++) core.handle(randomBytes(Math.floor(Math.random() * 300)), `198.51.100.${(i % 50) + 1}:9`, 0);
	const stats = core.stats();
	t.is(stats.received, 1000);
	t.is(stats.droppedTotal, 1000);
	t.is(stats.dropped["rate-limited"], undefined, "50 sources × 20 stays under each one's burst");
	for (let i = 0; i < 500; i++) core.handle(Buffer.from("flood"), EVE, 10);
	t.is(core.stats().dropped["rate-limited"], 400);
	t.is(core.stats().droppedTotal, 1500);
	// Others are not affected, and eve is let in again once her bucket refills.
	t.like(send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: [] }, 10)[0].message, { t: "registered" });
	t.is(core.handle(Buffer.from("again"), EVE, 1010).length, 0);
	t.is(core.stats().dropped["rate-limited"], 400);
	// Peer messages and server messages sent to the server are not for it.
	send(ALICE, { t: "probe", n: nonce, from: "alice.1", tx: "1".repeat(16) }, 20);
	send(ALICE, { t: "registered", tx: "1".repeat(16), id: "alice.1", token: "1".repeat(32), reflexive: ALICE }, 20);
	t.is(core.stats().dropped["unexpected-type"], 2);
});

test("the registration table has a cap", (t) => {
	const { core, send } = server({ ...defaultLimits, maxRegistrations: 3 });
	for (let i = 0; i < 3; i++) registered(send, `10.0.0.${i + 1}:1`, `p${i}`);
	t.like(send("10.0.0.9:1", { t: "register", tx: nextTx(), id: "p9", host: [] })[0].message, { t: "error", code: "table-full" });
	t.is(core.stats().registrations, 3);
});

// ── held sessions: keepalives, loss, re-punch rounds, migration (the machines alone) ──

const A_NEW = "198.51.100.2:20001"; // a's public endpoint after its NAT rebound

/** Two peers behind endpoint-independent NATs with knobs: `up` (the path, both ways) and a's public endpoint. */
function heldPair(options: { a?: Partial<SessionParams>; b?: Partial<SessionParams>; bFullCone?: boolean } = {}) {
	const state = { up: true, aPub: A_PUB, opened: { a: new Set<Via>(), b: new Set<Via>() } };
	const network = new Network(
		params("alice.1", "bob.1", { peerHost: [B_HOST], peerReflexive: B_PUB, selfReflexive: A_PUB, relay: false, ...options.a }),
		params("bob.1", "alice.1", { peerHost: [A_HOST], peerReflexive: A_PUB, selfReflexive: B_PUB, relay: false, ...options.b }),
		(from, to) => {
			if (!state.up || to === relayVia) return undefined;
			const other = from === "a" ? "b" : "a";
			const [targetPub, ownPub] = from === "a" ? [B_PUB, state.aPub] : [state.aPub, B_PUB];
			if (to !== targetPub) return undefined;
			state.opened[from].add(to);
			// Port-restricted filtering, unless b's NAT is a full cone.
			return (other === "b" && options.bFullCone) || state.opened[other].has(ownPub) ? { side: other, source: ownPub } : undefined;
		},
	);
	return { network, state };
}

const round = (n: string, peerReflexive: string, selfReflexive: string, overrides: Partial<RoundParams> = {}): RoundParams => ({
	nonce: n,
	peerHost: [],
	peerReflexive,
	selfReflexive,
	intervalMs: 20,
	deadlineMs: 1000,
	relay: false,
	...overrides,
});
const nonce2 = "2".repeat(32);
const kinds = (side: Side) => side.results.map((action) => action.kind);
const actionsOf = <K extends SessionAction["kind"]>(side: Side, kind: K) => side.results.filter((action): action is Extract<SessionAction, { kind: K }> => action.kind === kind);
const timesOf = (side: Side, kind: SessionAction["kind"]) => side.times.filter((_, index) => side.results[index].kind === kind);

test("keepalives are answered: a side that sends none still hears the peer's, and is heard through its pongs", (t) => {
	const { network } = heldPair({ a: { keepaliveMs: 1000, lossAfterMs: 3000 }, b: { keepaliveMs: 60_000, lossAfterMs: 3000 } });
	network.run(20_000);
	for (const side of Object.values(network.sides)) {
		t.is(side.machine.phase, "connected", side.name);
		t.deepEqual(kinds(side), ["connected"], `${side.name}: nothing lost in 20 s`);
		t.true(side.machine.lastHeard > 18_900, `${side.name} heard the other within the last keepalive`);
	}
	t.true(network.sides.a.machine.lastAcked > 18_900, "a's keepalives are acknowledged");
});

test("the path goes silent: both sides declare it lost after lossAfterMs, then ask for a new round, backing off to 1 s", (t) => {
	const { network, state } = heldPair({ a: { keepaliveMs: 200 }, b: { keepaliveMs: 200 } });
	network.run(200);
	t.is(network.sides.a.machine.lossAfter, 1500, "3 keepalives, at least 1500 ms");
	const cutAt = network.now;
	state.up = false;
	network.run(cutAt + 7000);
	for (const side of Object.values(network.sides)) {
		const [lost] = actionsOf(side, "lost");
		t.truthy(lost, side.name);
		t.is(lost.remote, side.name === "a" ? B_PUB : A_PUB);
		t.true(lost.silentMs >= 1500 && lost.silentMs <= 1510, `silent ${lost.silentMs} ms`);
		const [lostAt] = timesOf(side, "lost");
		t.true(lostAt - cutAt >= 1300 && lostAt - cutAt <= 1510, `lost ${lostAt - cutAt} ms after the cut`);
		t.is(side.machine.phase, "lost");
		t.is(side.machine.downAt, lostAt);
		const repunches = actionsOf(side, "repunch");
		t.deepEqual(repunches.slice(0, 4).map((action) => action.attempt), [1, 2, 3, 4]);
		t.true(repunches.every((action) => action.after === nonce), "each names the session it lost");
		const at = timesOf(side, "repunch");
		t.is(at[0], lostAt, "the first at once");
		t.deepEqual(at.slice(1, 6).map((time, index) => time - at[index]), [250, 500, 1000, 1000, 1000]);
		t.is(repunchBackoff(9), 1000);
	}
});

test("a new round after the loss reconnects: 'reconnected' with the time down and the rounds; the old session's traffic is dropped", (t) => {
	const { network, state } = heldPair({ a: { keepaliveMs: 200 }, b: { keepaliveMs: 200 } });
	network.run(200);
	state.up = false;
	network.run(2000);
	const [lostAt] = timesOf(network.sides.a, "lost");
	state.up = true;
	network.apply(network.sides.a, network.sides.a.machine.restart(network.now, round(nonce2, B_PUB, A_PUB)));
	network.apply(network.sides.b, network.sides.b.machine.restart(network.now, round(nonce2, A_PUB, B_PUB)));
	const restartedAt = network.now;
	network.run(restartedAt + 500);
	for (const side of Object.values(network.sides)) {
		const [reconnected] = actionsOf(side, "reconnected");
		t.truthy(reconnected, side.name);
		t.like(reconnected, { path: "direct", remote: side.name === "a" ? B_PUB : A_PUB, attempts: 1 });
		t.is(side.machine.phase, "connected");
		t.is(side.machine.params.nonce, nonce2);
		t.is(side.machine.roundNumber, 2);
		t.is(side.machine.downAt, undefined);
		t.true(side.machine.knows(nonce), "the lost session's nonce is remembered");
		t.deepEqual(side.machine.restart(network.now, round(nonce2, B_PUB, A_PUB)), [], "a resent start does nothing");
		t.deepEqual(side.machine.restart(network.now, round(nonce, B_PUB, A_PUB)), [], "nor does a late start of an earlier round");
	}
	const [reconnected] = actionsOf(network.sides.a, "reconnected");
	const [reconnectedAt] = timesOf(network.sides.a, "reconnected");
	t.is(reconnected.downMs, reconnectedAt - lostAt);
	t.true(reconnectedAt - restartedAt < 100, `connected ${reconnectedAt - restartedAt} ms into the round`);
	t.is(network.sides.a.machine.receive(network.now, B_PUB, { t: "ping", n: nonce, from: "bob.1", seq: 1 }).drop, "wrong-nonce");
	// And it is held again: a new loss is noticed.
	state.up = false;
	network.run(network.now + 2000);
	t.is(actionsOf(network.sides.a, "lost").length, 2);
	t.like(actionsOf(network.sides.a, "repunch").find((action) => action.after === nonce2), { attempt: 1 });
});

test("a round that fails after a loss goes back to lost and asks again, naming the failed round; never 'failed'", (t) => {
	const { network, state } = heldPair({ a: { keepaliveMs: 200 } });
	network.run(200);
	state.up = false;
	network.run(2000);
	const a = network.sides.a;
	network.apply(a, a.machine.restart(network.now, round(nonce2, B_PUB, A_PUB, { deadlineMs: 300 })));
	t.is(a.machine.phase, "punching");
	const startedAt = network.now;
	network.run(startedAt + 400);
	t.is(a.machine.phase, "lost");
	t.false(kinds(a).includes("failed"));
	const refreshes = actionsOf(a, "repunch").filter((_, index) => timesOf(a, "repunch")[index] > startedAt);
	t.true(refreshes.length >= 2, "asked during the round (to refresh candidates) and after it failed");
	t.is(refreshes[0].after, nonce, "during the round: the lost session, so the rendezvous keeps the round going");
	t.is(refreshes.at(-1)!.after, nonce2, "after it failed: the failed round, so the rendezvous starts a new one");
});

test("the peer re-punches while we are still connected (only it noticed the loss): a new round, and 'reconnected' without 'lost'", (t) => {
	const { network } = heldPair();
	network.run(200);
	const a = network.sides.a;
	network.apply(a, a.machine.restart(network.now, round(nonce2, B_PUB, A_PUB)));
	t.is(a.machine.phase, "punching");
	t.is(a.machine.downAt, network.now);
	network.apply(network.sides.b, network.sides.b.machine.restart(network.now + 5, round(nonce2, A_PUB, B_PUB)));
	network.run(network.now + 500);
	t.deepEqual(kinds(a), ["connected", "reconnected"]);
	t.like(actionsOf(a, "reconnected")[0], { attempts: 1, remote: B_PUB });
});

test("NAT rebinding, the peer behind a full cone: keepalives from the new source are probed, the ack confirms it, and the session migrates without a loss", (t) => {
	const { network, state } = heldPair({ bFullCone: true });
	network.run(200);
	const b = network.sides.b;
	t.is(b.machine.remote, A_PUB);
	state.aPub = A_NEW;
	state.opened.a.clear();
	const rebound = network.now;
	network.run(rebound + 6000);
	const [migrated] = actionsOf(b, "migrated");
	t.deepEqual(migrated, { kind: "migrated", old: A_PUB, remote: A_NEW, path: "direct" });
	t.true(timesOf(b, "migrated")[0] - rebound <= 1010, "at a's next keepalive");
	t.is(b.machine.remote, A_NEW);
	for (const side of Object.values(network.sides)) {
		t.false(kinds(side).includes("lost"), side.name);
		t.true(side.machine.lastHeard > network.now - 1100, `${side.name} hears the other`);
	}
});

test("NAT rebinding behind a port-restricted peer cannot migrate: both sides lose the path (and re-punch)", (t) => {
	const { network, state } = heldPair();
	network.run(200);
	state.aPub = A_NEW;
	state.opened.a.clear();
	network.run(network.now + 4000);
	for (const side of Object.values(network.sides)) t.deepEqual(kinds(side).slice(0, 3), ["connected", "lost", "repunch"], side.name);
});

test("a keepalive with the right nonce from a source that cannot answer (a replay) does not move the path", (t) => {
	const { network } = heldPair();
	network.run(200);
	const b = network.sides.b.machine;
	const replay = b.receive(network.now, "203.0.113.66:1000", { t: "ping", n: nonce, from: "alice.1", seq: 77 });
	t.is(replay.drop, undefined);
	t.true(replay.actions.some((action) => action.kind === "send" && action.to === "203.0.113.66:1000" && action.message.t === "probe"), "the source is probed");
	t.is(b.receive(network.now + 1, "203.0.113.66:1000", { t: "ack", n: nonce, from: "alice.1", tx: "9".repeat(16), seen: B_PUB }).drop, "unknown-tx", "an ack must echo our probe");
	network.run(network.now + 3000);
	t.is(b.remote, A_PUB);
	t.false(kinds(network.sides.b).includes("migrated"));
});

test("a connected lan path is not given up for a worse one while it is alive", (t) => {
	const A_LAN = "192.168.0.2:5000";
	const B_LAN = "192.168.0.3:6000";
	const network = new Network(
		params("alice.1", "bob.1", { peerHost: [B_LAN], peerReflexive: B_PUB, selfReflexive: A_PUB }),
		params("bob.1", "alice.1", { peerHost: [A_LAN], peerReflexive: A_PUB, selfReflexive: B_PUB }),
		(from, to) => (to === (from === "a" ? B_LAN : A_LAN) ? { side: from === "a" ? "b" : "a", source: from === "a" ? A_LAN : B_LAN } : undefined),
	);
	network.run(300);
	const a = network.sides.a.machine;
	t.is(a.path, "lan");
	const probe = a.receive(network.now, B_PUB, { t: "ping", n: nonce, from: "bob.1", seq: 5 }).actions.find((action) => action.kind === "send" && action.message.t === "probe");
	const tx = probe?.kind === "send" && probe.message.t === "probe" ? probe.message.tx : "";
	t.deepEqual(a.receive(network.now + 1, B_PUB, { t: "ack", n: nonce, from: "bob.1", tx, seen: A_PUB }).actions, []);
	t.is(a.remote, B_LAN);
});

test("heardSince: the first time the peer was heard at or after a moment", (t) => {
	const { network } = heldPair();
	network.run(3000);
	const a = network.sides.a.machine;
	const first = a.heardSince(1500);
	t.true(first !== undefined && first >= 1500 && first <= 2600, String(first));
	t.is(a.heardSince(network.now + 1), undefined);
	t.is(a.connectedAt !== undefined && a.connectedAt < 100, true);
});

test("a relayed session is held through the relay: keepalives answered, no loss", (t) => {
	const network = coneNetwork({ open: false });
	network.run(12_000);
	for (const side of Object.values(network.sides)) {
		t.deepEqual(kinds(side), ["connected"], side.name);
		t.is(side.machine.remote, relayVia);
		t.true(side.machine.lastHeard > 10_900, `${side.name} hears the other through the relay`);
	}
});

test("close after a connection reports nothing; a machine closed while lost stops asking", (t) => {
	const { network, state } = heldPair();
	network.run(200);
	t.deepEqual(network.sides.a.machine.close(), []);
	state.up = false;
	network.run(5000);
	t.deepEqual(kinds(network.sides.a), ["connected"]);
	t.is(network.sides.a.machine.nextWake(), Infinity);
});

// ── port mapping: the mapped candidate ─────────────────────────────────────

test("initialCandidates: the peer's mapped endpoint after its host candidates and before its reflexive one; equal to the reflexive one, it is mapped", (t) => {
	t.deepEqual([...initialCandidates(["192.168.1.2:1"], "11.0.0.2:9", "11.0.0.2:7")], [
		["192.168.1.2:1", "host"],
		["11.0.0.2:7", "mapped"],
		["11.0.0.2:9", "srflx"],
	]);
	t.deepEqual([...initialCandidates([], "11.0.0.2:7", "11.0.0.2:7")], [["11.0.0.2:7", "mapped"]]);
	t.deepEqual([...initialCandidates(["11.0.0.2:7"], "11.0.0.2:7", "11.0.0.2:7")], [["11.0.0.2:7", "host"]], "a public peer's own address stays a host candidate");
	t.deepEqual([...initialCandidates([], "11.0.0.2:9", undefined)], [["11.0.0.2:9", "srflx"]]);
});

const A_MAPPED = "11.0.0.2:40001"; // the port alice's gateway granted her
const A_RDV = "11.0.0.2:20000"; // alice's NAT mapping toward the rendezvous (symmetric: another one per destination)
const B_RDV = "198.51.100.6:30000";

/**
 * Alice and bob each behind a symmetric NAT (a new public port per destination, and only what a
 * mapping sent to may answer); alice's gateway also forwards A_MAPPED to her, whoever sends. A
 * datagram alice sends in answer to one that came in through A_MAPPED leaves from A_MAPPED (the
 * conntrack entry of that flow), as it does in the kernel.
 */
function symmetricPairWithMapping(options: { offerMapping: boolean }): Network {
	let nextPort = 31000;
	const bobPorts = new Map<Via, string>(); // destination → bob's public endpoint for it
	const alicePorts = new Map<Via, string>();
	const throughMapping = new Set<Via>(); // remotes that reached alice through A_MAPPED
	const aliceSent = new Set<string>(); // "public endpoint>remote"
	const bobSource = (to: Via) => bobPorts.get(to) ?? (bobPorts.set(to, `198.51.100.6:${nextPort++}`), bobPorts.get(to)!);
	const aliceSource = (to: Via) => (throughMapping.has(to) ? A_MAPPED : (alicePorts.get(to) ?? (alicePorts.set(to, `11.0.0.2:${nextPort++}`), alicePorts.get(to)!)));
	return new Network(
		params("alice.1", "bob.1", { peerHost: [B_HOST], peerReflexive: B_RDV, selfReflexive: A_RDV, relay: false }),
		params("bob.1", "alice.1", { peerHost: [A_HOST], peerReflexive: A_RDV, ...(options.offerMapping ? { peerMapped: A_MAPPED } : {}), selfReflexive: B_RDV, relay: false }),
		(from, to) => {
			if (to === relayVia) return { side: from === "a" ? "b" : "a", source: relayVia };
			if (from === "b") {
				const source = bobSource(to);
				if (to === A_MAPPED) {
					throughMapping.add(source);
					return { side: "a", source };
				}
				return aliceSent.has(`${to}>${source}`) ? { side: "a", source } : undefined;
			}
			const source = aliceSource(to);
			aliceSent.add(`${source}>${to}`);
			return bobPorts.get(source) === to ? { side: "b", source } : undefined;
		},
	);
}

test("symmetric ↔ symmetric with alice's port mapping: bob punches the mapped candidate, alice answers the peer-reflexive one; both direct, and the event names the candidates", (t) => {
	const network = symmetricPairWithMapping({ offerMapping: true });
	network.run(1000);
	const [a] = actionsOf(network.sides.a, "connected");
	const [b] = actionsOf(network.sides.b, "connected");
	t.truthy(a && b, `a: ${kinds(network.sides.a)}, b: ${kinds(network.sides.b)}`);
	t.like(b, { path: "direct", remote: A_MAPPED, candidate: "mapped" });
	t.like(a, { path: "direct", candidate: "prflx", seenAs: A_MAPPED }, "alice's traffic reaches bob from her mapped endpoint");
	t.is(b.seenAs, a.remote, "alice talks to where bob's traffic comes from (bob's NAT's port toward A_MAPPED)");
	t.not(a.remote, B_RDV);
});

test("the same pair without the mapping offered fails: the mapped candidate is what connects them", (t) => {
	const network = symmetricPairWithMapping({ offerMapping: false });
	network.run(1500);
	t.deepEqual(kinds(network.sides.a), ["failed"]);
	t.deepEqual(kinds(network.sides.b), ["failed"]);
});

test("a new round takes the peer's mapped endpoint from its start signal: a round without one has no mapped candidate", (t) => {
	const machine = new PunchStateMachine(params("bob.1", "alice.1", { peerHost: [], peerReflexive: A_RDV, peerMapped: A_MAPPED, selfReflexive: B_RDV }));
	t.is(machine.candidates.get(A_MAPPED), "mapped");
	machine.restart(10, round(nonce2, A_RDV, B_RDV));
	t.false(machine.candidates.has(A_MAPPED));
	machine.restart(20, round("3".repeat(32), A_RDV, B_RDV, { peerMapped: "11.0.0.2:40002" }));
	t.is(machine.candidates.get("11.0.0.2:40002"), "mapped");
});

test("rendezvous: a registration's mapped endpoint reaches the other peer in start; re-registering without it withdraws it", (t) => {
	const { send } = server();
	const [aliceReply] = send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: ["192.168.1.2:40000"], mapped: A_MAPPED });
	const aliceToken = (aliceReply.message as { token: string }).token;
	const bobToken = registered(send, BOB, "bob.1");
	const [toAlice, toBob] = send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token: aliceToken, target: "bob.1", interval: 20, deadline: 1000, relay: true });
	t.like(toBob.message, { t: "start", id: "bob.1", peer: "alice.1", srflx: ALICE, mapped: A_MAPPED });
	t.false("mapped" in toAlice.message, "bob has no mapping");
	send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: ["192.168.1.2:40000"], token: aliceToken });
	const again = send(BOB, { t: "connect", tx: nextTx(), id: "bob.1", token: bobToken, target: "alice.1", interval: 20, deadline: 1000, relay: true, after: (toBob.message as { n: string }).n });
	const start = again.find((out) => out.to === BOB)!.message;
	t.like(start, { t: "start", id: "bob.1" });
	t.false("mapped" in start, "alice's mapping is gone");
});

// ── held sessions with a rendezvous: two peers behind port-restricted NATs and the real RendezvousCore ──

const RDV = "203.0.113.10:7777";
type SimLog = { at: number; kind: string; action?: SessionAction; detail?: string };

interface SimPeer {
	name: "a" | "b";
	id: string;
	pub: string;
	host: string[];
	claim: string;
	token?: string;
	reflexive?: string;
	machine?: PunchStateMachine;
	linkUp: boolean;
	/** What this peer's NAT lets in: the endpoints it sent to (port-restricted). */
	opened: Set<string>;
	log: SimLog[];
	nextRefreshAt: number;
}

/**
 * A peer agent's logic in miniature (start → restart(), repunch → register + connect, periodic
 * re-registration every two keepalives) around two state machines, with the rendezvous core in
 * the middle; every hop takes 1 ms, the clock steps 1 ms.
 */
class Sim {
	now = 0;
	readonly core: RendezvousCore;
	readonly peers: Record<"a" | "b", SimPeer>;
	/** Directions that lose everything, as "a>b" or "b>a". */
	readonly blocked = new Set<string>();
	readonly hold = { keepalive: 250, lossAfter: 1500 };
	private queue: { at: number; to: "a" | "b" | "rdv"; from: string; bytes: Buffer }[] = [];
	private secrets = 0;

	constructor() {
		this.core = new RendezvousCore(defaultLimits, () => (++this.secrets).toString(16).padStart(32, "0"));
		const peer = (name: "a" | "b", id: string, pub: string, host: string): SimPeer => ({ name, id, pub, host: [host], claim: name.repeat(32), linkUp: true, opened: new Set(), log: [], nextRefreshAt: Infinity });
		this.peers = { a: peer("a", "alice.1", A_PUB, A_HOST), b: peer("b", "bob.1", B_PUB, B_HOST) };
	}

	/** Register both, connect a → b, and run until both are connected. */
	start(): void {
		for (const peer of Object.values(this.peers)) this.register(peer, true);
		this.run(20);
		this.connect(this.peers.a);
		this.run(this.now + 300);
	}

	other(peer: SimPeer): SimPeer {
		return peer.name === "a" ? this.peers.b : this.peers.a;
	}

	register(peer: SimPeer, first = false): void {
		this.send(peer, RDV, { t: "register", tx: nextTx(), id: peer.id, host: peer.host, ...(first ? { claim: peer.claim } : { token: peer.token }) });
	}

	connect(peer: SimPeer, after?: string): void {
		const { keepalive, lossAfter } = this.hold;
		this.send(peer, RDV, { t: "connect", tx: nextTx(), id: peer.id, token: peer.token!, target: this.other(peer).id, interval: 20, deadline: 1000, relay: false, keepalive, lossAfter, ...(after ? { after } : {}) });
	}

	/** The peer's process restarts: a new socket (a new public port), the endpoint taken over with its claim. */
	restartPeer(peer: SimPeer, pub: string): void {
		peer.machine?.close();
		Object.assign(peer, { machine: undefined, token: undefined, reflexive: undefined, pub, nextRefreshAt: Infinity });
		peer.opened.clear();
		peer.log.push({ at: this.now, kind: "restarted" });
		this.register(peer, true);
	}

	kinds(peer: SimPeer): string[] {
		return peer.log.map((entry) => entry.kind);
	}

	first(peer: SimPeer, kind: string, after = 0): SimLog | undefined {
		return peer.log.find((entry) => entry.kind === kind && entry.at >= after);
	}

	private send(peer: SimPeer, to: string, message: Message): void {
		const bytes = encode(message)!;
		if (!peer.linkUp) return;
		peer.opened.add(to);
		if (to === RDV) return void this.queue.push({ at: this.now + 1, to: "rdv", from: peer.pub, bytes });
		const other = this.other(peer);
		if (to === other.pub && !this.blocked.has(`${peer.name}>${other.name}`)) this.queue.push({ at: this.now + 1, to: other.name, from: peer.pub, bytes });
	}

	private fromRendezvous(out: { to: string; bytes: Buffer }[]): void {
		for (const { to, bytes } of out) {
			const peer = Object.values(this.peers).find((candidate) => candidate.pub === to);
			if (peer) this.queue.push({ at: this.now + 1, to: peer.name, from: RDV, bytes });
		}
	}

	private act(peer: SimPeer, actions: SessionAction[]): void {
		for (const action of actions) {
			if (action.kind === "send") {
				if (action.to === relayVia) this.send(peer, RDV, { t: "relay", id: peer.id, token: peer.token!, n: peer.machine!.params.nonce, data: action.message });
				else this.send(peer, action.to, action.message);
				continue;
			}
			peer.log.push({ at: this.now, kind: action.kind, action });
			if (action.kind === "repunch") {
				this.register(peer);
				this.connect(peer, action.after);
			}
		}
	}

	private receive(peer: SimPeer, from: string, bytes: Buffer): void {
		if (!peer.linkUp || !peer.opened.has(from)) return; // the NAT's filter
		const message = decodeMessage(bytes)!;
		if (isPeerMessage(message)) {
			if (peer.machine) this.act(peer, peer.machine.receive(this.now, from, message).actions);
			return;
		}
		if (from !== RDV) return;
		if (message.t === "registered") {
			peer.token = message.token;
			if (peer.reflexive && peer.reflexive !== message.reflexive) peer.log.push({ at: this.now, kind: "rebound", detail: `${peer.reflexive} → ${message.reflexive}` });
			peer.reflexive = message.reflexive;
			if (peer.nextRefreshAt === Infinity) peer.nextRefreshAt = this.now + 2 * this.hold.keepalive;
		} else if (message.t === "start") {
			this.send(peer, RDV, { t: "start-ack", id: peer.id, token: peer.token!, n: message.n });
			if (peer.machine?.knows(message.n)) return;
			peer.log.push({ at: this.now, kind: "started", detail: message.srflx });
			const next: RoundParams = { nonce: message.n, peerHost: message.host, peerReflexive: message.srflx, selfReflexive: peer.reflexive!, intervalMs: message.interval, deadlineMs: message.deadline, relay: message.relay, keepaliveMs: message.keepalive, lossAfterMs: message.lossAfter };
			if (peer.machine) this.act(peer, peer.machine.restart(this.now, next));
			else {
				peer.machine = new PunchStateMachine({ ...next, self: peer.id, peer: message.peer, startedAt: this.now, newTx });
				this.act(peer, peer.machine.tick(this.now));
			}
		} else if (message.t === "relayed" && peer.machine) this.act(peer, peer.machine.receive(this.now, relayVia, message.data).actions);
	}

	run(until: number): void {
		for (; this.now <= until; this.now++) {
			const due = this.queue.filter((packet) => packet.at <= this.now);
			this.queue = this.queue.filter((packet) => packet.at > this.now);
			for (const packet of due) {
				if (packet.to === "rdv") this.fromRendezvous(this.core.handle(packet.bytes, packet.from, this.now));
				else this.receive(this.peers[packet.to], packet.from, packet.bytes);
			}
			this.fromRendezvous(this.core.tick(this.now));
			for (const peer of Object.values(this.peers)) {
				if (peer.machine && peer.machine.nextWake() <= this.now) this.act(peer, peer.machine.tick(this.now));
				if (this.now >= peer.nextRefreshAt) {
					this.register(peer);
					peer.nextRefreshAt = this.now + 2 * this.hold.keepalive;
				}
			}
		}
	}
}

test("sim: a held pair connects with the session's keepalive parameters, which reach the responder through the start signal", (t) => {
	const sim = new Sim();
	sim.start();
	for (const peer of Object.values(sim.peers)) {
		t.is(peer.machine?.phase, "connected", peer.name);
		t.is(peer.machine?.keepaliveInterval, 250);
		t.is(peer.machine?.lossAfter, 1500);
	}
	sim.run(sim.now + 5000);
	for (const peer of Object.values(sim.peers)) t.deepEqual(sim.kinds(peer), ["started", "connected"], `${peer.name}: held for 5 s without a loss`);
	t.true(sim.core.stats().received > 20, "and both re-register periodically");
});

test("sim: a 3 s outage on one side: both lose the path at different times, meet in one new round, and reconnect soon after it ends", (t) => {
	const sim = new Sim();
	sim.start();
	const { a, b } = sim.peers;
	b.machine!.params.lossAfterMs = 2500; // b notices a second later than a
	const startsBefore = sim.core.stats().starts;
	const downAt = sim.now;
	a.linkUp = false;
	sim.run(downAt + 3000);
	a.linkUp = true;
	const upAt = sim.now;
	sim.run(upAt + 3000);
	for (const peer of [a, b]) {
		t.truthy(sim.first(peer, "lost", downAt), `${peer.name} noticed`);
		const reconnected = sim.first(peer, "reconnected", upAt);
		t.truthy(reconnected, `${peer.name} reconnected`);
		t.true(reconnected!.at - upAt < 1300, `${peer.name}: ${reconnected!.at - upAt} ms after the outage ended`);
		t.is(peer.machine?.phase, "connected");
	}
	t.true(sim.first(b, "lost")!.at - sim.first(a, "lost")!.at >= 900, "at different times");
	t.is(sim.core.stats().starts - startsBefore, 1, "one new round for both");
	t.true(sim.core.stats().joined >= 1, "the later one joined it");
	t.is(a.machine!.params.nonce, b.machine!.params.nonce);
});

test("sim: only one side notices (the path fails one way): the other is re-punched while still connected, and both reconnect", (t) => {
	const sim = new Sim();
	sim.start();
	const { a, b } = sim.peers;
	const cutAt = sim.now;
	sim.blocked.add("b>a");
	sim.run(cutAt + 1700);
	sim.blocked.clear();
	sim.run(sim.now + 1500);
	t.truthy(sim.first(a, "lost", cutAt));
	t.is(sim.first(b, "lost", cutAt), undefined, "b heard a all along");
	t.truthy(sim.first(b, "reconnected", cutAt), "b joined the new round and reconnected");
	t.truthy(sim.first(a, "reconnected", cutAt));
	t.is(a.machine!.params.nonce, b.machine!.params.nonce);
});

test("sim: NAT rebinding behind port-restricted NATs: the re-registration moves a, 'rebound', and the new round punches to a's new endpoint", (t) => {
	const sim = new Sim();
	sim.start();
	const { a, b } = sim.peers;
	const at = sim.now;
	a.pub = A_NEW;
	a.opened.clear();
	sim.run(at + 4000);
	t.truthy(sim.first(a, "rebound", at));
	t.is(sim.first(a, "rebound", at)!.detail, `${A_PUB} → ${A_NEW}`);
	for (const peer of [a, b]) t.truthy(sim.first(peer, "reconnected", at), peer.name);
	t.is(b.machine!.remote, A_NEW);
	t.is(a.machine!.remote, B_PUB);
	t.true(sim.first(b, "reconnected", at)!.at - at < 2600, "within the loss timeout and a round");
});

test("sim: a restarted process takes its id over with its claim, connects again, and the survivor reconnects", (t) => {
	const sim = new Sim();
	sim.start();
	const { a, b } = sim.peers;
	const oldToken = b.token;
	const at = sim.now;
	sim.restartPeer(b, "198.51.100.6:6001");
	sim.run(at + 10);
	t.truthy(b.token);
	t.not(b.token, oldToken, "a new token");
	t.is(sim.core.stats().takeovers, 1);
	sim.connect(b);
	sim.run(at + 1000);
	t.is(b.machine?.phase, "connected");
	t.truthy(sim.first(a, "reconnected", at), "the survivor was re-punched and reconnected");
	t.is(sim.first(a, "lost", at), undefined, "before it even noticed the loss");
	t.is(a.machine!.remote, "198.51.100.6:6001");
	// The old process's token no longer speaks for the id.
	const stale = sim.core.handle(encode({ t: "register", tx: nextTx(), id: "bob.1", host: [], token: oldToken })!, B_PUB, sim.now);
	t.deepEqual(stale, []);
	t.is(sim.core.stats().dropped["spoofed-id"], 1);
});

// ── the rendezvous: takeovers and re-punch rounds ─────────────────────────────

test("takeover: a registration with the id's claim from anywhere gets a new token; without it, or with another, it is dropped", (t) => {
	const { core, send } = server();
	const claim = "c".repeat(32);
	const [first] = send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: [], claim });
	const token = (first.message as { token: string }).token;
	t.deepEqual(send(EVE, { t: "register", tx: nextTx(), id: "alice.1", host: [] }), [], "no claim");
	t.deepEqual(send(EVE, { t: "register", tx: nextTx(), id: "alice.1", host: [], claim: "d".repeat(32) }), [], "another claim");
	t.like(core.stats().dropped, { "spoofed-id": 1, "bad-claim": 1 });
	const NEW = "198.51.100.2:40999";
	const [taken] = send(NEW, { t: "register", tx: nextTx(), id: "alice.1", host: ["192.168.1.2:40999"], claim });
	t.like(taken.message, { t: "registered", id: "alice.1", reflexive: NEW });
	const newToken = (taken.message as { token: string }).token;
	t.not(newToken, token);
	t.is(core.stats().takeovers, 1);
	// The old token is dead, from the old endpoint and from anywhere else.
	t.deepEqual(send(ALICE, { t: "register", tx: nextTx(), id: "alice.1", host: [], token }), []);
	t.deepEqual(send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token, target: "bob.1", interval: 20, deadline: 1000, relay: true }), []);
	t.like(send(NEW, { t: "register", tx: nextTx(), id: "alice.1", host: [], token: newToken })[0].message, { t: "registered" });
	// An id registered without a claim cannot be taken over at all.
	registered(send, BOB, "bob.1");
	t.deepEqual(send(EVE, { t: "register", tx: nextTx(), id: "bob.1", host: [], claim }), []);
	t.is(core.stats().takeovers, 1);
});

test("connect: a second plain connect of the pair within a second joins the first session; later it makes a new one", (t) => {
	const { core, send } = server();
	const aliceToken = registered(send, ALICE, "alice.1");
	const bobToken = registered(send, BOB, "bob.1");
	const [start] = send(ALICE, { t: "connect", tx: nextTx(), id: "alice.1", token: aliceToken, target: "bob.1", interval: 20, deadline: 1000, relay: true, keepalive: 250, lossAfter: 1500 });
	t.like(start.message, { t: "start", keepalive: 250, lossAfter: 1500 });
	const n = (start.message as { n: string }).n;
	const joined = send(BOB, { t: "connect", tx: nextTx(), id: "bob.1", token: bobToken, target: "alice.1", interval: 20, deadline: 1000, relay: true }, 500);
	t.is(joined.length, 1, "only the asker hears");
	t.like(joined[0], { to: BOB, message: { t: "start", n, role: "responder" } });
	const later = send(BOB, { t: "connect", tx: nextTx(), id: "bob.1", token: bobToken, target: "alice.1", interval: 20, deadline: 1000, relay: true }, 1500);
	t.is(later.length, 2);
	t.not((later[0].message as { n: string }).n, n);
	t.like(core.stats(), { starts: 2, joined: 1 });
});

test("connect after a loss: a new round unless a newer one exists and nobody moved; a move always makes a new one", (t) => {
	const { core, send } = server();
	const aliceToken = registered(send, ALICE, "alice.1");
	const bobToken = registered(send, BOB, "bob.1");
	const connect = (from: string, id: string, token: string, target: string, after: string | undefined, now: number) =>
		send(from, { t: "connect", tx: nextTx(), id, token, target, interval: 20, deadline: 1000, relay: false, ...(after ? { after } : {}) }, now);
	const n1 = (connect(ALICE, "alice.1", aliceToken, "bob.1", undefined, 0)[0].message as { n: string }).n;
	// Both lose it, a minute later: alice asks first → a new round for both; bob, asking after the same loss, joins it.
	const second = connect(ALICE, "alice.1", aliceToken, "bob.1", n1, 60_000);
	t.deepEqual(second.map((out) => out.to), [ALICE, BOB]);
	const n2 = (second[0].message as { n: string }).n;
	t.not(n2, n1);
	t.like(connect(BOB, "bob.1", bobToken, "alice.1", n1, 61_000), [{ to: BOB, message: { n: n2 } }]);
	// The old round's start is no longer resent.
	t.deepEqual(core.tick(61_200).map((out) => (decodeMessage(out.bytes) as { n: string }).n).filter((n) => n === n1), []);
	// n2 fails at bob: he names it, so a new round comes.
	const third = connect(BOB, "bob.1", bobToken, "alice.1", n2, 62_000);
	t.is(third.length, 2);
	const n3 = (third[0].message as { n: string }).n;
	// alice moves (her NAT rebound) and re-registers with her token: her next ask makes a new round with her new endpoint.
	const MOVED = "198.51.100.2:41234";
	send(MOVED, { t: "register", tx: nextTx(), id: "alice.1", host: [], token: aliceToken }, 62_100);
	const fourth = connect(MOVED, "alice.1", aliceToken, "bob.1", n1, 62_200);
	t.is(fourth.length, 2, "n3 was made with her old endpoint");
	t.not((fourth[0].message as { n: string }).n, n3);
	t.like(fourth[1], { to: BOB, message: { t: "start", srflx: MOVED } });
	t.like(core.stats(), { starts: 4, joined: 1 });
});

test("holdTiming: keepalives at a third of the smallest udp-timeout on the pair's paths, at most 1 s; loss after 3 keepalives, at least 1.5 s", (t) => {
	const lab = (timeout1: string, timeout2: string) =>
		loadLabText(`
name: timing
nodes:
  internet: { kind: router }
  rdv: {}
  isp: { kind: nat, nat: { type: port-restricted, udp-timeout: ${timeout2} } }
  nat1: { kind: nat, nat: { type: port-restricted, udp-timeout: ${timeout1} } }
  nat2: { kind: nat, nat: { type: full-cone } }
  alice: {}
  bob: {}
links:
  - { endpoints: [alice:eth0, nat1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [bob:eth0, nat2:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [nat1:wan, isp:lan], subnet: 100.64.0.0/30 }
  - { endpoints: [isp:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [nat2:wan, internet:e2], subnet: 198.51.100.4/30 }
  - { endpoints: [rdv:eth0, internet:e3], subnet: 203.0.113.0/24 }
`);
	t.deepEqual(holdTiming(lab("30s", "60s"), "alice", "bob"), { keepaliveMs: 1000, lossAfterMs: 3000 });
	t.deepEqual(holdTiming(lab("30s", "2s"), "alice", "bob"), { keepaliveMs: 666, lossAfterMs: 1998 }, "the carrier NAT in front of alice's home NAT counts");
	t.deepEqual(holdTiming(lab("1s", "60s"), "bob", "alice"), { keepaliveMs: 333, lossAfterMs: 1500 });
	t.deepEqual(holdTiming(lab("1s", "60s"), "alice", "bob", { keepaliveMs: 100 }), { keepaliveMs: 100, lossAfterMs: 1500 });
	t.deepEqual(holdTiming(lab("1s", "60s"), "rdv", "internet"), { keepaliveMs: 1000, lossAfterMs: 3000 }, "no NAT on the way");
});

// ── the controller's choices (no lab needs to be up) ────────────────────────

const example = (file: string) => loadLab(new URL(`../../topologies/${file}`, import.meta.url).pathname);

test("the rendezvous runs on a public host, preferably one named like stun, on its link address", (t) => {
	const twoNats = rendezvousHost(example("two-nats.yml"));
	t.is(twoNats?.node.name, "stun");
	t.is(twoNats?.address, "203.0.113.10", "the link address, not the dummy's");
	t.is(rendezvousHost(example("lan.yml"))?.node.name, "stun");
	const noPublicHost = loadLabText(`
name: nopublic
nodes:
  internet: { kind: router }
  nat1: { kind: nat }
  alice: {}
links:
  - { endpoints: [alice:eth0, nat1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [nat1:wan, internet:e1], subnet: 198.51.100.0/30 }
`);
	t.is(rendezvousHost(noPublicHost), undefined);
	const named = loadLabText(`
name: named
nodes:
  internet: { kind: router }
  web: {}
  my-rendezvous: {}
links:
  - { endpoints: [web:eth0, internet:e1], subnet: 203.0.113.0/30 }
  - { endpoints: [my-rendezvous:eth0, internet:e2], subnet: 203.0.113.4/30 }
`);
	t.is(rendezvousHost(named)?.node.name, "my-rendezvous");
});

test("an unknown node is a LabStateError NODE_NOT_FOUND listing the nodes, before anything starts", async (t) => {
	const lab = example("two-nats.yml");
	const error = await t.throwsAsync(punch(lab, "alice", "carol"), { instanceOf: LabStateError });
	t.is(error?.code, "NODE_NOT_FOUND");
	t.regex(error?.message ?? "", /lab "two-nats" has no node "carol"; nodes: internet, stun, home1, home2, alice, bob/);
	const lanLab = example("lan.yml");
	const switchError = await t.throwsAsync(punch(lanLab, "lan", "alice"), { instanceOf: LabStateError });
	t.is(switchError?.code, "NODE_NOT_FOUND");
	t.regex(switchError?.message ?? "", /is a switch/);
});
