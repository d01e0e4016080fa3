// The library as an outside test suite uses it: `import { up } from "testbed"`.
import { existsSync } from "node:fs";
import { execa } from "execa";
import { EventError, up, withLab } from "testbed";
import { readLedger } from "../../src/apply/ledger.ts";
import { leftovers, rootTest } from "../helpers/host.ts";

const twoNats = new URL("../../topologies/two-nats.yml", import.meta.url).pathname;

rootTest("up → punch → down, as README shows", async (t) => {
	const lab = await up(twoNats);
	try {
		const result = await lab.punch("alice", "bob");
		t.is(result.outcome, "direct");
		t.true(result.timeToConnectMs! >= 0);
		const exec = await lab.exec("alice", ["ip", "-4", "-o", "address", "show", "eth0"]);
		t.regex(exec.stdout, /192\.168\.1\.2\/24/);
	} finally {
		await lab.down();
	}
	t.deepEqual(leftovers("two-nats", ["two-nats-alice", "two-nats-bob", "two-nats-stun"]), []);
});

rootTest("withLab always takes the lab down, even when the body throws", async (t) => {
	await t.throwsAsync(
		withLab(twoNats, async (lab) => {
			t.is(lab.node("alice").kind, "host");
			throw new Error("the test under test failed");
		}),
		{ message: "the test under test failed" },
	);
	t.false(existsSync("/run/testbed/two-nats.json"));
});

rootTest("a lab a test suite forgot to take down is removed when its process exits", async (t) => {
	const script = new URL("../fixtures/forgetful-suite.mjs", import.meta.url).pathname;
	const child = await execa(process.execPath, ["--import", "tsx", script, twoNats], { reject: false });
	t.is(child.stdout, "up", child.stderr);
	t.false(existsSync("/run/testbed/two-nats.json"));
	t.deepEqual(leftovers("two-nats", ["two-nats-alice", "two-nats-bob", "two-nats-internet"]), []);
});

rootTest("a suite ended by a signal takes its labs down, and the signal still ends it (the library never exits the process itself)", async (t) => {
	const script = new URL("../fixtures/forgetful-suite.mjs", import.meta.url).pathname;
	const child = execa(process.execPath, ["--import", "tsx", script, twoNats, "wait"], { reject: false });
	await new Promise<void>((resolve, reject) => {
		child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("up") && resolve());
		child.once("exit", () => reject(new Error("the suite ended before its lab was up")));
	});
	t.true(existsSync("/run/testbed/two-nats.json"));
	child.kill("SIGTERM");
	const ended = await child;
	t.is(ended.signal, "SIGTERM", "ended by the signal, as without testbed");
	t.false(existsSync("/run/testbed/two-nats.json"));
	t.deepEqual(leftovers("two-nats", ["two-nats-alice", "two-nats-bob", "two-nats-internet"]), []);
});

rootTest("lab.event() is recorded in the lab's ledger as testbed event records it (graph, punch and nat-table of the running lab see it)", async (t) => {
	const lab = await up(twoNats);
	try {
		await lab.event("link-down", "home1:wan");
		const recorded = readLedger("two-nats")!.resolved;
		t.true(recorded.nodes.find((node) => node.name === "home1")!.interfaces.find((iface) => iface.name === "wan")!.down);
		const cli = await execa(process.execPath, ["bin/testbed.js", "event", "two-nats", "link-up", "home1:wan"], { reject: false });
		t.is(cli.exitCode, 0, cli.stderr);
		t.falsy(readLedger("two-nats")!.resolved.nodes.find((node) => node.name === "home1")!.interfaces.find((iface) => iface.name === "wan")!.down);
		await t.throwsAsync(lab.event("nat-reboot", "alice"), { instanceOf: EventError, code: "BAD_EVENT", message: /"alice" is a host, not a nat/ });
	} finally {
		await lab.down();
	}
});
