// AgentProcess without a namespace: a plain Node process speaks the agents' JSON-lines protocol
// (the `command` constructor argument), so subscriptions, waitFor and the bounded history run
// without root.
import test from "ava";
import { AgentProcess, type AgentEvent } from "../../src/drivers/agent-process.ts";

// Prints "ready", then for each request: "print" writes `events` (one line each) and then the
// reply; "burst" writes `count` numbered events in one go, then the reply; "exit" ends the process.
const fakeAgent = `
const { createInterface } = require("node:readline");
const out = (event) => process.stdout.write(JSON.stringify(event) + "\\n");
out({ event: "ready" });
createInterface({ input: process.stdin }).on("line", (line) => {
	const request = JSON.parse(line);
	if (request.cmd === "print") for (const event of request.events) out(event);
	if (request.cmd === "burst") {
		let text = "";
		for (let seq = 0; seq < request.count; seq++) text += JSON.stringify({ event: "tick", seq }) + "\\n";
		process.stdout.write(text);
	}
	if (request.cmd === "exit") process.exit(0);
	out({ id: request.id, event: "done" });
});
`;

function start(t: { teardown: (fn: () => Promise<void>) => void }): AgentProcess {
	const agent = new AgentProcess("none", "fake", "fake", [], [process.execPath, "-e", fakeAgent]);
	t.teardown(() => agent.stop());
	return agent;
}

const print = (agent: AgentProcess, events: AgentEvent[]) => agent.request({ cmd: "print", events });

test("on: every event without a request id, in order, as it comes; not ready, not the replies", async (t) => {
	const agent = start(t);
	const seen: AgentEvent[] = [];
	agent.on((event) => seen.push(event));
	t.is((await agent.started()).event, "ready");
	const reply = await print(agent, [{ event: "a" }, { event: "b", endpoint: "x" }, { id: 999, event: "orphan reply" }, { event: "c" }]);
	t.is(reply.event, "done");
	t.deepEqual(
		seen.map((event) => event.event),
		["a", "b", "orphan reply", "c"],
	);
	t.deepEqual(agent.received(), seen, "received() holds the same events");
	// Delivered synchronously with the line: a listener sees an event before the reply that follows it resolves.
	let inTime = false;
	agent.on((event) => event.event === "d" && (inTime = true));
	await print(agent, [{ event: "d" }]);
	t.true(inTime);
});

test("on: the unsubscribe stops delivery; the same function may subscribe twice", async (t) => {
	const agent = start(t);
	await agent.started();
	const seen: string[] = [];
	const listener = (event: AgentEvent) => seen.push(event.event);
	const first = agent.on(listener);
	const second = agent.on(listener);
	await print(agent, [{ event: "both" }]);
	first();
	first(); // twice is harmless
	await print(agent, [{ event: "one" }]);
	second();
	await print(agent, [{ event: "none" }]);
	t.deepEqual(seen, ["both", "both", "one"]);
});

test("on: a listener unsubscribed by an earlier one for the same event is not called", async (t) => {
	const agent = start(t);
	await agent.started();
	const seen: string[] = [];
	let unsubscribeLater = () => undefined as void;
	agent.on((event) => {
		seen.push(`first ${event.event}`);
		unsubscribeLater();
	});
	unsubscribeLater = agent.on((event) => seen.push(`later ${event.event}`));
	// A listener added while an event is handed out does not get that event.
	agent.on((event) => {
		if (event.event === "x") agent.on((again) => seen.push(`added ${again.event}`));
	});
	await print(agent, [{ event: "x" }, { event: "y" }]);
	t.deepEqual(seen, ["first x", "first y", "added y"]);
});

test("on: a listener that throws breaks neither the others, nor later lines, nor requests", async (t) => {
	const agent = start(t);
	await agent.started();
	const warnings: string[] = [];
	const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
	process.on("warning", onWarning);
	t.teardown(() => void process.off("warning", onWarning));
	const seen: string[] = [];
	agent.on(() => {
		throw new Error("listener bug");
	});
	agent.on((event) => seen.push(event.event));
	t.is((await print(agent, [{ event: "a" }, { event: "b" }])).event, "done");
	t.is((await print(agent, [{ event: "c" }])).event, "done");
	t.deepEqual(seen, ["a", "b", "c"]);
	await new Promise((resolve) => setImmediate(resolve));
	t.is(warnings.length, 1, "once per subscription, not once per event");
	t.regex(warnings[0], /AgentListenerWarning: a listener of agent events on fake threw: Error: listener bug/);
});

test("waitFor: an event already kept, one that comes later, or undefined after the timeout; listens, does not poll", async (t) => {
	const agent = start(t);
	await agent.started();
	await print(agent, [{ event: "early", n: 1 }]);
	t.is((await agent.waitFor((event) => event.event === "early", 10))?.n, 1);
	const later = agent.waitFor((event) => event.event === "later", 5000);
	await print(agent, [{ event: "other" }, { event: "later", n: 2 }, { event: "later", n: 3 }]);
	t.is((await later)?.n, 2);
	const started = performance.now();
	t.is(await agent.waitFor((event) => event.event === "never", 50), undefined);
	t.true(performance.now() - started >= 45);
	// Nothing is left subscribed once the waits are over.
	t.is((agent as unknown as { listeners: Set<unknown> }).listeners.size, 0);
	// A predicate that throws rejects its waitFor.
	const broken = agent.waitFor((event) => {
		if (event.event === "boom") throw new Error("predicate bug");
		return false;
	}, 5000);
	await print(agent, [{ event: "boom" }]);
	await t.throwsAsync(broken, { message: "predicate bug" });
	t.is((agent as unknown as { listeners: Set<unknown> }).listeners.size, 0);
});

test("received: bounded to the latest 100,000 events (the oldest 10,000 go at once); listeners see all", async (t) => {
	const agent = start(t);
	await agent.started();
	const seqs: number[] = [];
	agent.on((event) => seqs.push(event.seq as number));
	const history = agent.received();
	await agent.request({ cmd: "burst", count: 100_000 });
	t.is(history.length, 100_000, "the array is live and holds the limit exactly");
	await agent.request({ cmd: "burst", count: 5 });
	t.is(agent.received(), history, "still the same array");
	t.is(history.length, 90_005);
	t.is(history[0].seq, 10_000);
	t.is(history.at(-1)?.seq, 4);
	t.is(seqs.length, 100_005);
	t.true(seqs.every((seq, index) => seq === (index < 100_000 ? index : index - 100_000)), "every event, in order");
});

test("waitFor after the agent exited times out with undefined; requests reject", async (t) => {
	const agent = start(t);
	await agent.started();
	await t.throwsAsync(agent.request({ cmd: "exit" }), { message: /agent fake on fake exited/ });
	t.is(await agent.waitFor(() => true, 20), undefined);
});
