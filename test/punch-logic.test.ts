// Hole punching logic without sockets: path classification, candidates, the handshake state
// machine (driven by a simulated network and clock), and the rendezvous core (registration,
// tokens, start signals, relay, drops and rate limiting).
import { randomBytes } from "node:crypto";
import test from "ava";
import { type Message, type PeerMessage, type ServerMessage, decodeMessage, encode } from "../agents/punch/protocol.ts";
import { PunchStateMachine, type SessionAction, type SessionParams, type Via, classifyPath, initialCandidates, keepaliveMs, median, relayVia } from "../agents/punch/session.ts";
import { RendezvousCore, defaultLimits } from "../agents/punch/rendezvous-core.ts";
import { punch, rendezvousHost } from "../src/agents/punch.ts";
import { LabStateError, loadLab, loadLabText } from "../src/index.ts";

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
	/** The address the other side sees this side's packets come from, per destination. */
	results: SessionAction[];
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
		this.sides = { a: { name: "a", machine: new PunchStateMachine(a), results: [] }, b: { name: "b", machine: new PunchStateMachine(b), results: [] } };
	}

	private apply(side: Side, actions: SessionAction[]): void {
		for (const action of actions) {
			if (action.kind !== "send") {
				side.results.push(action);
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

test("after connecting, a keepalive goes out about every second", (t) => {
	const network = coneNetwork();
	network.run(100);
	const machine = network.sides.a.machine;
	t.is(machine.phase, "connected");
	const wake = machine.nextWake();
	const actions = machine.tick(wake);
	t.deepEqual(actions, [{ kind: "send", to: B_PUB, message: { t: "ka", n: nonce, from: "alice.1" } }]);
	t.is(machine.nextWake(), wake + keepaliveMs);
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

function server(limits = defaultLimits): { core: RendezvousCore; send: (from: string, message: Message, now?: number) => { to: string; message: ServerMessage }[] } {
	let secrets = 0;
	const core = new RendezvousCore(limits, () => (++secrets).toString(16).padStart(32, "0"));
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

// ── the controller's choices (no lab needs to be up) ────────────────────────

const example = (file: string) => loadLab(new URL(`../topologies/${file}`, import.meta.url).pathname);

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
