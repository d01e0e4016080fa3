// Datagram fuzzing of every agent on the real kernel (issue 5, point 6). One lab (two-nats.yml as
// "tb-fuzz-agents"); in the public "stun" node a STUN server, the rendezvous, a reach agent and a
// udp-tool echo socket; bob's peer agent behind his NAT. Thousands of random datagrams and mutated
// valid messages (fast-check generated; bit flips, truncation, extension, swaps, splices) go to each,
// in paced batches, from a raw sender in another node — exact bytes, from many source ports so the
// rendezvous' per-source rate limit does not swallow them all — and a few hundred text datagrams from
// a udp-tool agent. Then every agent must still be alive, still answer a valid request (a STUN Binding
// response with the right XOR-MAPPED-ADDRESS, a reach pong, a punch between alice and bob, the
// udp-tool echo), have counted what it dropped, and never have reached an internal-error path.
//
// (udp-tool sends its `data` as UTF-8 text, so binary datagrams such as STUN need the raw sender.)
// FUZZ_RUNS=N sends N datagrams to each agent instead of 3,000; FUZZ_SEED=S replays the datagrams.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import fc from "fast-check";
import { execa } from "execa";
import { loadLabText } from "../../src/index.ts";
import { AgentProcess, type AgentEvent } from "../../src/drivers/agent-process.ts";
import type { PeerAgent } from "../../src/drivers/peer-agent.ts";
import { PunchSession } from "../../src/drivers/punch.ts";
import { UdpTool } from "../../src/drivers/udp-tool.ts";
import { inNamespace } from "../../src/render/batch.ts";
import { bindingRequest, decodeStun, encodeStun, getAttribute, type StunAttribute } from "../../agents/stun/message.ts";
import { encode, type Message } from "../../agents/punch/protocol.ts";
import { decodeReach, encodeReach, reachPort } from "../../agents/reach/protocol.ts";
import { inLab, leftovers, rootTest, settle } from "../helpers/host.ts";
import { runs, seed } from "../helpers/fuzz.ts";

const perAgent = runs(3000);

const labName = "tb-fuzz-agents";
const primary = "203.0.113.10";
const alternate = "203.0.113.11";
const internetAddress = "203.0.113.1"; // the router's address on the stun link: where the raw sender's datagrams come from
const echoPort = 9000;

// ── datagrams ────────────────────────────────────────────────────────────────────────────────────

const sample = <T>(arbitrary: fc.Arbitrary<T>, count: number, salt: number): T[] => (count > 0 ? fc.sample(arbitrary, { numRuns: count, seed: seed + salt }) : []);

type Mutation = { op: "flip" | "set" | "truncate" | "swap" | "delete"; at: number; value: number } | { op: "extend" | "splice"; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
	fc.record({ op: fc.constantFrom("flip" as const, "set" as const, "truncate" as const, "swap" as const, "delete" as const), at: fc.nat(), value: fc.nat(255) }),
	fc.record({ op: fc.constantFrom("extend" as const, "splice" as const), at: fc.nat(), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.constantFrom(...['"', "\\", "{", "}", ",", ":", " ", "\u0000", "\n"].map((text) => new Uint8Array(Buffer.from(text))))) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
	let bytes = Buffer.from(input);
	for (const m of mutations) {
		const at = bytes.length === 0 ? 0 : m.at % bytes.length;
		if (m.op === "flip" && bytes.length) bytes[at] ^= 1 << (m.value % 8);
		else if (m.op === "set" && bytes.length) bytes[at] = m.value;
		else if (m.op === "truncate") bytes = bytes.subarray(0, at);
		else if (m.op === "swap" && bytes.length) [bytes[at], bytes[m.value % bytes.length]] = [bytes[m.value % bytes.length], bytes[at]];
		else if (m.op === "delete") bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + (m.value % 8))]);
		else if (m.op === "extend") bytes = Buffer.concat([bytes, m.bytes]);
		else if (m.op === "splice") bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
	}
	return Buffer.from(bytes);
}

/** Half random datagrams (bytes, text, JSON), half mutations of valid messages. */
function datagrams(valid: fc.Arbitrary<Buffer>, count: number, salt: number): Buffer[] {
	const random = fc.oneof(
		{ weight: 4, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => Buffer.from(bytes)) },
		{ weight: 1, arbitrary: fc.uint8Array({ minLength: 1200, maxLength: 1400 }).map((bytes) => Buffer.from(bytes)) },
		{ weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 200 }).map((text) => Buffer.from(text)) },
		{ weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((text) => Buffer.from(text)) },
	);
	const mutated = fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([bytes, changes]) => mutate(bytes, changes));
	return [...sample(random, Math.ceil(count / 2), salt), ...sample(mutated, Math.floor(count / 2), salt + 1)].filter((bytes) => bytes.length > 0);
}

const hexDigits = (length: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });
const nonce = hexDigits(32);
const tx = hexDigits(16);
const peerId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
const endpoint = fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([address, port]) => `${address}:${port}`);
const hosts = fc.uniqueArray(endpoint, { maxLength: 4 });

const stunValid: fc.Arbitrary<Buffer> = fc
	.record({
		id: fc.uint8Array({ minLength: 12, maxLength: 12 }),
		changeIp: fc.boolean(),
		changePort: fc.boolean(),
		responsePort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
		software: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
		fingerprint: fc.boolean(),
		method: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfff }) }),
		class: fc.oneof({ weight: 6, arbitrary: fc.constant("request" as const) }, { weight: 1, arbitrary: fc.constantFrom("indication" as const, "success" as const, "error" as const) }),
		extra: fc.array(fc.record({ type: fc.constant("unknown" as const), code: fc.integer({ min: 0x4000, max: 0x7fff }), value: fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes)) }), { maxLength: 1 }),
	})
	.map((spec) => {
		const request = bindingRequest(Buffer.from(spec.id), { changeIp: spec.changeIp, changePort: spec.changePort, responsePort: spec.responsePort, software: spec.software, fingerprint: spec.fingerprint });
		const attributes: StunAttribute[] = [...spec.extra, ...request.attributes];
		return encodeStun({ ...request, method: spec.method, class: spec.class, attributes });
	});

const peerMessage = fc.oneof(
	fc.record({ t: fc.constant("probe" as const), n: nonce, from: peerId, tx }),
	fc.record({ t: fc.constant("ack" as const), n: nonce, from: peerId, tx, seen: endpoint }),
	fc.record({ t: fc.constant("ping" as const), n: nonce, from: peerId, seq: fc.nat() }),
	fc.record({ t: fc.constant("ka" as const), n: nonce, from: peerId }),
);
const asBytes = (message: Message) => encode(message) ?? Buffer.from("{}");
const rendezvousValid: fc.Arbitrary<Buffer> = fc
	.oneof(
		fc.record({ t: fc.constant("register" as const), tx, id: peerId, host: hosts }),
		fc.record({ t: fc.constant("connect" as const), tx, id: fc.constantFrom("alice.1", "bob.1", "x"), token: nonce, target: peerId, interval: fc.integer({ min: 1, max: 100 }), deadline: fc.integer({ min: 1, max: 5000 }), relay: fc.boolean() }),
		fc.record({ t: fc.constant("start-ack" as const), id: peerId, token: nonce, n: nonce }),
		fc.record({ t: fc.constant("relay" as const), id: peerId, token: nonce, n: nonce, data: peerMessage }),
		fc.record({ t: fc.constant("unregister" as const), id: peerId, token: nonce }),
		peerMessage,
	)
	.map((message) => asBytes(message as Message));
const peerValid = (local: string): fc.Arbitrary<Buffer> =>
	fc
		.oneof(
			peerMessage,
			fc.record({ t: fc.constant("registered" as const), tx, id: fc.constantFrom("bob.fuzz", "x"), token: nonce, reflexive: endpoint }),
			fc.record({ t: fc.constant("error" as const), tx, code: fc.constant("unknown-peer" as const), message: fc.constant("no") }),
			fc.record({ t: fc.constant("start" as const), n: nonce, id: fc.constant("bob.fuzz"), peer: peerId, host: hosts, srflx: fc.constant(local), role: fc.constantFrom("initiator" as const, "responder" as const), interval: fc.constant(20), deadline: fc.constant(500), relay: fc.boolean(), at: fc.nat() }),
			fc.record({ t: fc.constant("relayed" as const), n: nonce, from: peerId, data: peerMessage }),
		)
		.map((message) => asBytes(message as Message));
const reachValid: fc.Arbitrary<Buffer> = fc.oneof(
	hexDigits(16).map((value) => encodeReach({ type: "ping", nonce: value })),
	fc.tuple(hexDigits(16), fc.stringMatching(/^[a-z]{1,8}$/)).map(([value, node]) => encodeReach({ type: "pong", nonce: value, node })),
);
const anyText: fc.Arbitrary<Buffer> = fc.string({ maxLength: 100 }).map((text) => Buffer.from(`hello ${text}`));

// ── the raw sender: exact bytes from inside a namespace ──────────────────────────────────────────

const senderScript = `
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
const emit = (event) => process.stdout.write(JSON.stringify(event) + "\\n");
const bind = () => new Promise((resolve) => { const socket = createSocket("udp4"); socket.on("error", () => undefined); socket.bind(0, () => resolve(socket)); });
const sources = [];
for (let i = 0; i < 24; i++) sources.push(await bind());
const split = (to) => { const colon = to.lastIndexOf(":"); return [to.slice(0, colon), Number(to.slice(colon + 1))]; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function blast({ id, to, payloads, spread, batch, pauseMs }) {
	const [address, port] = split(to);
	let errors = 0;
	for (let start = 0; start < payloads.length; start += batch) {
		await Promise.all(payloads.slice(start, start + batch).map((hex, index) => new Promise((resolve) => {
			sources[(start + index) % spread].send(Buffer.from(hex, "hex"), port, address, (error) => { if (error) errors++; resolve(); });
		})));
		await sleep(pauseMs);
	}
	emit({ id, event: "blasted", sent: payloads.length, errors });
}
async function ask({ id, to, payload, timeoutMs }) {
	const [address, port] = split(to);
	const socket = await bind();
	const answer = new Promise((resolve) => socket.on("message", (data, rinfo) => resolve({ data: data.toString("hex"), from: rinfo.address + ":" + rinfo.port })));
	const deadline = Date.now() + timeoutMs;
	let result;
	while (!result && Date.now() < deadline) {
		socket.send(Buffer.from(payload, "hex"), port, address);
		result = await Promise.race([answer, sleep(200)]);
	}
	emit({ id, event: result ? "answer" : "timeout", local: socket.address().port, ...result });
	socket.close();
}
emit({ event: "ready" });
for await (const line of createInterface({ input: process.stdin })) {
	const command = JSON.parse(line);
	if (command.cmd === "blast") await blast(command);
	else if (command.cmd === "ask") await ask(command);
}
for (const socket of sources) socket.close();
process.exit(0);
`;

class RawSender {
	private nextId = 1;
	private readonly waiting = new Map<number, (event: AgentEvent) => void>();
	private readonly child;
	private readonly ready: Promise<void>;
	private stderr = "";

	constructor(readonly netns: string) {
		const [file, ...args] = inNamespace(netns, [process.execPath, "--input-type=module", "-e", senderScript]);
		this.child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
		this.child.stdin.on("error", () => undefined);
		this.child.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk).slice(-2000)));
		let onReady: () => void;
		this.ready = new Promise((resolve) => (onReady = resolve));
		createInterface({ input: this.child.stdout }).on("line", (line) => {
			const event = JSON.parse(line) as AgentEvent;
			if (event.event === "ready") onReady();
			else if (event.id !== undefined) this.waiting.get(event.id)?.(event);
		});
	}

	private request(command: Record<string, unknown>, timeoutMs: number): Promise<AgentEvent> {
		const id = this.nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`raw sender in ${this.netns}: no answer to ${String(command.cmd)} in ${timeoutMs} ms; ${this.stderr}`)), timeoutMs);
			this.waiting.set(id, (event) => {
				clearTimeout(timer);
				resolve(event);
			});
			this.child.stdin.write(`${JSON.stringify({ id, ...command })}\n`);
		});
	}

	async started(): Promise<void> {
		await Promise.race([this.ready, new Promise((_, reject) => setTimeout(() => reject(new Error(`raw sender in ${this.netns} did not start: ${this.stderr}`)), 10_000))]);
	}

	/** Send every payload, `batch` at a time from `spread` source ports, pausing between batches. */
	async blast(to: string, payloads: Buffer[], spread = 1, batch = 50, pauseMs = 3): Promise<number> {
		const reply = await this.request({ cmd: "blast", to, payloads: payloads.map((bytes) => bytes.toString("hex")), spread, batch, pauseMs }, 60_000);
		return (reply.sent as number) - (reply.errors as number);
	}

	/** Send one datagram from a fresh socket (resent every 200 ms) and return the first answer. */
	async ask(to: string, payload: Buffer, timeoutMs = 2000): Promise<{ data: Buffer; from: string; local: number } | undefined> {
		const reply = await this.request({ cmd: "ask", to, payload: payload.toString("hex"), timeoutMs }, timeoutMs + 5000);
		return reply.event === "answer" ? { data: Buffer.from(reply.data as string, "hex"), from: reply.from as string, local: reply.local as number } : undefined;
	}

	async stop(): Promise<void> {
		this.child.stdin.end();
		const exited = new Promise((resolve) => this.child.once("close", resolve));
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
		if (this.child.exitCode === null && this.child.signalCode === null) await exited;
		clearTimeout(timer);
	}
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────────

type Counters = Record<string, number | undefined>;


/**
 * Datagrams the kernel dropped in a namespace: per UDP port, those its full socket buffer refused
 * (/proc/net/udp's drops column), and on its interfaces, what the links dropped. An agent that is
 * slow to read on a loaded machine loses datagrams there; they never reached it to be counted.
 */
async function kernelDrops(netns: string): Promise<{ byPort: Map<number, number>; links: number }> {
	const byPort = new Map<number, number>();
	const udp = await execa("ip", ["netns", "exec", netns, "cat", "/proc/net/udp"], { reject: false });
	for (const line of udp.stdout.split("\n").slice(1)) {
		const fields = line.trim().split(/\s+/);
		const port = Number.parseInt(fields[1]?.split(":")[1] ?? "", 16);
		if (Number.isInteger(port)) byPort.set(port, (byPort.get(port) ?? 0) + Number(fields.at(-1) ?? 0));
	}
	const links = JSON.parse((await execa("ip", ["-n", netns, "-s", "-j", "link", "show"])).stdout) as { stats64?: { rx: { dropped: number }; tx: { dropped: number } } }[];
	return { byPort, links: links.reduce((sum, link) => sum + (link.stats64?.rx.dropped ?? 0) + (link.stats64?.tx.dropped ?? 0), 0) };
}

/** What the kernel dropped between two snapshots, for these ports of the receiving namespace and on the links of both ends. */
function droppedBetween(before: Map<string, Awaited<ReturnType<typeof kernelDrops>>>, after: Map<string, Awaited<ReturnType<typeof kernelDrops>>>, receiver: string, ports: number[]): number {
	let total = 0;
	for (const port of ports) total += (after.get(receiver)!.byPort.get(port) ?? 0) - (before.get(receiver)!.byPort.get(port) ?? 0);
	for (const [netns, counts] of after) total += counts.links - before.get(netns)!.links;
	return total;
}

/** Send text datagrams from a udp-tool agent, 100 at a time. */
async function fromUdpTool(tool: UdpTool, to: string, texts: string[]): Promise<void> {
	for (let start = 0; start < texts.length; start += 100) await Promise.all(texts.slice(start, start + 100).map((text) => tool.send("fuzz", to, text)));
}

// ── the test ─────────────────────────────────────────────────────────────────────────────────────

rootTest("every agent survives thousands of random and mutated datagrams, counts them, and still answers", async (t) => {
	t.timeout(90_000);
	t.log(`seed ${seed} (FUZZ_SEED to replay), ${perAgent} datagrams per agent`);
	const text = readFileSync(new URL("../../topologies/two-nats.yml", import.meta.url), "utf8").replace(/^name: .*$/m, `name: ${labName}`);
	const lab = loadLabText(text, "two-nats.yml");
	const ns = (name: string) => lab.nodes.find((node) => node.name === name)!.netns;
	const node = (name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
	const started = performance.now();
	const cleanup: (() => Promise<unknown>)[] = [];
	await inLab(t, lab, async () => {
		try {
			const stun = new AgentProcess(ns("stun"), "stun", "stun-server", ["--primary", primary, "--alternate", alternate]);
			cleanup.push(() => stun.stop());
			const reach = new AgentProcess(ns("stun"), "stun", "reach", ["--port", String(reachPort)]);
			cleanup.push(() => reach.stop());
			const echo = new AgentProcess(ns("stun"), "stun", "udp-tool");
			cleanup.push(() => echo.stop());
			const session = await PunchSession.start(lab);
			cleanup.push(() => session.close());
			const publicSender = new RawSender(ns("internet"));
			cleanup.push(() => publicSender.stop());
			const lanSender = new RawSender(ns("home2"));
			cleanup.push(() => lanSender.stop());
			const tool = await UdpTool.start(node("internet"));
			cleanup.push(() => tool.stop());
			await Promise.all([stun.started(), reach.started(), echo.started(), publicSender.started(), lanSender.started()]);
			t.is((await echo.request({ cmd: "bind", sock: "e", port: echoPort, echo: true })).event, "bound");
			await tool.bind("fuzz");
			const bob: PeerAgent = await session.peer("bob");
			const fuzzed = await bob.open("bob.fuzz");
			const rendezvous = session.rendezvous.endpoint;
			t.is(rendezvous, `${primary}:7777`);
			t.log(`lab and agents up in ${Math.round(performance.now() - started)} ms; bob.fuzz is ${fuzzed.local}`);

			const stunStats = () => stun.request({ cmd: "stats" });
			const reachStats = () => reach.request({ cmd: "stats" });
			const before = { stun: await stunStats(), reach: await reachStats(), rendezvous: await session.rendezvousStats(), peer: await bob.stats() };
			const echoesBefore = echo.received().filter((event) => event.event === "recv").length;
			const watched = [ns("stun"), ns("internet"), ns("bob"), ns("home2")];
			const dropsBefore = new Map(await Promise.all(watched.map(async (netns) => [netns, await kernelDrops(netns)] as const)));
			const bobPort = Number(fuzzed.local.split(":")[1]);
			let dropsAfter = dropsBefore;
			/** Kernel drops on the way to these ports of this namespace, up to the last `measureDrops()`. */
			const kernelDropped = (receiver: string, ports: number[]) => droppedBetween(dropsBefore, dropsAfter, receiver, ports);
			const measureDrops = async () => (dropsAfter = new Map(await Promise.all(watched.map(async (netns) => [netns, await kernelDrops(netns)] as const))));
			// Counts settle when what the agent saw plus what the kernel dropped on the way covers what was
			// sent (on a loaded machine the kernel drops more, and waiting for the agent alone would wait
			// for datagrams that never come), or when they stop changing.
			const settleAccounted = async <T>(stats: () => Promise<T> | T, seen: (stats: T) => number, receiver: string, ports: number[], sent: number): Promise<T> => {
				const read = async () => {
					const now = await stats();
					await measureDrops();
					return { now, accounted: seen(now) + kernelDropped(receiver, ports) };
				};
				return (await settle(read, ({ accounted }) => accounted >= sent)).now;
			};

			// ── fuzz ──
			const fuzzStarted = performance.now();
			const stunPayloads = datagrams(stunValid, perAgent, 1);
			const half = Math.floor(stunPayloads.length / 2);
			const sentStun = (await publicSender.blast(`${primary}:3478`, stunPayloads.slice(0, half))) + (await publicSender.blast(`${alternate}:3479`, stunPayloads.slice(half)));
			const sentRendezvous = await publicSender.blast(rendezvous, datagrams(rendezvousValid, perAgent, 3), 24);
			const sentReach = await publicSender.blast(`${primary}:${reachPort}`, datagrams(reachValid, perAgent, 5));
			const sentEcho = await publicSender.blast(`${primary}:${echoPort}`, datagrams(anyText, perAgent, 7));
			const sentPeer = await lanSender.blast(fuzzed.local, datagrams(peerValid(fuzzed.local), perAgent, 9));
			// Text datagrams from the udp-tool agent too (it sends its data as UTF-8).
			const texts = sample(fc.string({ unit: "binary", minLength: 1, maxLength: 120 }), 300, 11);
			for (const to of [`${primary}:3478`, `${primary}:${reachPort}`, `${primary}:${echoPort}`]) await fromUdpTool(tool, to, texts);
			await fromUdpTool(tool, rendezvous, texts);
			t.log(`sent ${sentStun} STUN, ${sentRendezvous} rendezvous, ${sentReach} reach, ${sentEcho} echo, ${sentPeer} peer datagrams, and ${texts.length} × 4 from udp-tool, in ${Math.round(performance.now() - fuzzStarted)} ms`);

			// ── STUN server: alive, counted, still answering ──
			const stunAfter = await settleAccounted(stunStats, (stats) => (stats.received as number) - (before.stun.received as number), ns("stun"), [3478, 3479], sentStun + texts.length);
			const received = (stunAfter.received as number) - (before.stun.received as number);
			await measureDrops();
			const stunLost = kernelDropped(ns("stun"), [3478, 3479]);
			const dropped = (stunAfter.droppedTotal as number) - (before.stun.droppedTotal as number);
			const answered = (stunAfter.answered as number) - (before.stun.answered as number) + (stunAfter.errorResponses as number) - (before.stun.errorResponses as number);
			t.log(`stun-server: received ${received}, answered ${answered}, dropped ${JSON.stringify(stunAfter.dropped)}; the kernel dropped ${stunLost} on the way`);
			t.true(received + stunLost >= 0.9 * (sentStun + texts.length), `the server saw ${received} of ${sentStun + texts.length} (the kernel dropped ${stunLost})`);
			t.is(dropped + answered, received, "every datagram the server received was answered or dropped and counted");
			t.true(dropped > sentStun / 3, "the random half was dropped");
			t.is((stunAfter.dropped as Counters)["internal-error"], undefined);
			const transactionId = randomBytes(12);
			const binding = await publicSender.ask(`${primary}:3478`, encodeStun(bindingRequest(transactionId, { fingerprint: true })));
			t.truthy(binding, "the STUN server still answers a Binding request");
			const response = decodeStun(binding!.data);
			t.true(response.ok);
			if (response.ok) {
				t.is(response.message.class, "success");
				t.deepEqual(response.message.transactionId, transactionId);
				t.like(getAttribute(response.message, "XOR-MAPPED-ADDRESS"), { address: internetAddress, port: binding!.local });
			}

			// ── rendezvous ──
			const rendezvousAfter = await settleAccounted(() => session.rendezvousStats(), (stats) => (stats.received as number) - (before.rendezvous.received as number), ns("stun"), [7777], sentRendezvous + texts.length);
			const rendezvousReceived = (rendezvousAfter.received as number) - (before.rendezvous.received as number);
			await measureDrops();
			const rendezvousLost = kernelDropped(ns("stun"), [7777]);
			t.log(`rendezvous: received ${rendezvousReceived}, registrations ${rendezvousAfter.registrations}, dropped ${JSON.stringify(rendezvousAfter.dropped)}; the kernel dropped ${rendezvousLost} on the way`);
			t.true(rendezvousReceived + rendezvousLost >= 0.9 * (sentRendezvous + texts.length), `the rendezvous saw ${rendezvousReceived} of ${sentRendezvous + texts.length} (the kernel dropped ${rendezvousLost})`);
			t.true((rendezvousAfter.droppedTotal as number) - (before.rendezvous.droppedTotal as number) > sentRendezvous / 3, "the random half was dropped");
			t.is((rendezvousAfter.dropped as Counters)["internal-error"], undefined);
			const decodeDrops = ["not-protocol", "truncated", "bad-field", "oversized", "bad-version", "unknown-type"].filter((reason) => ((rendezvousAfter.dropped as Counters)[reason] ?? 0) > 0);
			t.true(decodeDrops.length >= 3, `datagrams got past the rate limit into the decoder: ${decodeDrops.join(", ")}`);

			// ── bob's peer agent ──
			const peerAfter = await settleAccounted(() => bob.stats(), (stats) => (stats.received as number) - (before.peer.received as number), ns("bob"), [bobPort], sentPeer);
			const peerReceived = (peerAfter.received as number) - (before.peer.received as number);
			const peerDropped = (peerAfter.droppedTotal as number) - (before.peer.droppedTotal as number);
			await measureDrops();
			const peerLost = kernelDropped(ns("bob"), [bobPort]);
			t.log(`peer: received ${peerReceived}, dropped ${JSON.stringify(peerAfter.dropped)}; the kernel dropped ${peerLost} on the way`);
			t.true(peerReceived + peerLost >= 0.9 * sentPeer, `bob's peer saw ${peerReceived} of ${sentPeer} (the kernel dropped ${peerLost})`);
			t.true(peerDropped > sentPeer / 3);
			t.is((peerAfter.dropped as Counters)["internal-error"], undefined);

			// ── reach ──
			const reachAfter = await settleAccounted(reachStats, (stats) => (stats.answered as number) + (stats.dropped as number) - (before.reach.answered as number) - (before.reach.dropped as number), ns("stun"), [reachPort], sentReach + texts.length);
			const reachSeen = (reachAfter.answered as number) + (reachAfter.dropped as number) - (before.reach.answered as number) - (before.reach.dropped as number);
			await measureDrops();
			const reachLost = kernelDropped(ns("stun"), [reachPort]);
			t.log(`reach: answered ${(reachAfter.answered as number) - (before.reach.answered as number)}, dropped ${(reachAfter.dropped as number) - (before.reach.dropped as number)}; the kernel dropped ${reachLost} on the way`);
			t.true(reachSeen + reachLost >= 0.9 * (sentReach + texts.length), `the reach agent saw ${reachSeen} of ${sentReach + texts.length} (the kernel dropped ${reachLost})`);
			t.true((reachAfter.dropped as number) - (before.reach.dropped as number) > sentReach / 3);
			const pingNonce = randomBytes(8).toString("hex");
			const pong = await publicSender.ask(`${primary}:${reachPort}`, encodeReach({ type: "ping", nonce: pingNonce }));
			t.deepEqual(pong && decodeReach(pong.data), { type: "pong", nonce: pingNonce, node: "stun" }, "the reach agent still answers a ping");

			// ── udp-tool echo ──
			const echoed = await publicSender.ask(`${primary}:${echoPort}`, Buffer.from("are you there"));
			t.truthy(echoed, "the udp-tool echo socket still answers");
			t.is(echoed?.data.toString(), `seen ${internetAddress}:${echoed?.local}`);
			// The agent reports each datagram as an event; on a loaded machine the reports trail the datagrams.
			const echoesSeen = (await settleAccounted(() => echo.received().filter((event) => event.event === "recv").length, (count) => count - echoesBefore, ns("stun"), [echoPort], sentEcho + texts.length + 1)) - echoesBefore;
			await measureDrops();
			const echoLost = kernelDropped(ns("stun"), [echoPort]);
			t.log(`udp-tool: ${echoesSeen} datagrams received and reported; the kernel dropped ${echoLost} on the way`);
			t.true(echoesSeen + echoLost >= 0.9 * (sentEcho + texts.length), `udp-tool reported ${echoesSeen} of ${sentEcho + texts.length + 1} (the kernel dropped ${echoLost})`);
			t.is((await echo.request({ cmd: "bind", sock: "again", port: 0 })).event, "bound", "and still takes commands");

			// ── and a punch through the fuzzed rendezvous and peer ──
			const punched = await session.punch("alice", "bob");
			t.is(punched.outcome, "direct", punched.error);
			// Alive: a request is answered (it rejects once the agent has exited).
			for (const [name, agent] of [["stun-server", stun], ["reach", reach], ["udp-tool", echo]] as const) await t.notThrowsAsync(agent.request({ cmd: "stats" }), `${name} is alive`);
			t.is((await bob.stats()).event, "stats");
			t.is((await session.rendezvousStats()).event, "stats");
		} finally {
			for (const stop of cleanup.reverse()) await stop().catch(() => undefined);
		}
	});
	t.deepEqual(leftovers(labName, lab.nodes.map((candidate) => candidate.netns)), []);
	t.log(`${Math.round(performance.now() - started)} ms in all`);
});
