// Many students on one machine: one file brought up under several names (`up --name`), each lab its
// owner's (`ls` shows who; `down` of another's lab needs --force; `down --all` takes only one's own),
// clear and true messages when a name or a namespace is taken, and a failed or interrupted `up` of
// one copy that leaves the other copies exactly as they were. Other users are SUDO_USER=alice/bob.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { LabStateError, downLab, up } from "../../src/index.ts";
import { readLedger } from "../../src/apply/ledger.ts";
import { processAlive } from "../../src/apply/lock.ts";
import { netnsIdentity, sameNamespace } from "../../src/apply/namespaces.ts";
import { listPrograms } from "../../src/apply/programs.ts";
import { unitsTopology } from "../helpers/generate.ts";
import { inNamespace, leftovers, namespaceExists, rootTest } from "../helpers/host.ts";

/** The testbed CLI as `user` (who ran sudo). */
const as = (user: string, args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false, env: { SUDO_USER: user } });

/** A class's lab: a router with a fixed `netns:` (as seed-p2p.yml's `unr`), a PC with a program. */
const classLab = `name: own-class
nodes:
  gw: { kind: router, netns: owngw }
  pc:
    programs:
      idle: { run: [sleep, "600"] }
links:
  - { endpoints: [pc:eth0, gw:e1], subnet: 10.0.1.0/24 }
`;
const classNamespaces = (lab: string) => [`${lab}-owngw`, `${lab}-pc`];

async function withFiles<T>(files: Record<string, string>, body: (path: (name: string) => string) => Promise<T>): Promise<T> {
	const dir = mkdtempSync(join(tmpdir(), "testbed-owners-"));
	for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
	try {
		return await body((name) => join(dir, name));
	} finally {
		rmSync(dir, { recursive: true });
	}
}

/** Always down, whoever owns them; then nothing of them may be left. */
async function cleanUp(t: ExecutionContext, labs: Record<string, string[]>): Promise<void> {
	for (const lab of Object.keys(labs)) await downLab(lab, { force: true }).catch(() => undefined);
	for (const [lab, namespaces] of Object.entries(labs)) t.deepEqual(leftovers(lab, namespaces), [], lab);
}

/** What a running copy of the class lab is: its namespaces (inode and birth) and its program's pid. */
function stateOf(lab: string): { namespaces: string[]; program: string } {
	const ledger = readLedger(lab)!;
	const program = listPrograms(lab).find((each) => each.name === "idle");
	return { namespaces: ledger.namespaces.map((entry) => `${entry.name} ${entry.inode} ${entry.born}`), program: `${program?.status} ${program?.pid}` };
}

/** The copy is as it was: same namespaces (not replaced), its program still the same live process, its link still carrying packets. */
async function assertIntact(t: ExecutionContext, lab: string, before: ReturnType<typeof stateOf>): Promise<void> {
	t.deepEqual(stateOf(lab), before, `${lab}: ledger and program unchanged`);
	for (const entry of readLedger(lab)!.namespaces) t.true(sameNamespace(entry, netnsIdentity(entry.name)), `${lab}: namespace ${entry.name} is still the one it made`);
	t.true(processAlive(Number(before.program.split(" ")[1])), `${lab}: its program still runs`);
	const ping = await inNamespace(`${lab}-pc`, ["ping", "-c", "1", "-W", "2", "10.0.1.1"]);
	t.is(ping.exitCode, 0, `${lab}: pc still reaches gw`);
}

rootTest("two students bring up one file under their own names; ls shows who owns what; down of another's lab is refused; down --all takes only one's own", async (t) => {
	await withFiles({ "class.yml": classLab }, async (path) => {
		try {
			const alice = await as("alice", ["up", path("class.yml"), "--name", "own-a"]);
			t.is(alice.exitCode, 0, alice.stderr);
			t.regex(alice.stdout, /^lab "own-a" is up/m);
			const bob = await as("bob", ["up", path("class.yml"), "--name", "own-b"]);
			t.is(bob.exitCode, 0, bob.stderr);
			for (const netns of [...classNamespaces("own-a"), ...classNamespaces("own-b")]) t.true(namespaceExists(netns), netns);
			t.false(namespaceExists("owngw"), "the file's fixed netns: follows the name");

			const ls = await as("bob", ["ls"]);
			t.regex(ls.stdout, /^lab\s+state\s+owner\s+nodes/m);
			t.regex(ls.stdout, /^own-a\s+up\s+alice\s+2\s+2\/2\s/m);
			t.regex(ls.stdout, /^own-b\s+up\s+bob\s+2\s+2\/2\s/m);
			const json = JSON.parse((await as("bob", ["ls", "--json"])).stdout) as { lab: string; owner: string }[];
			t.deepEqual(json.filter((lab) => lab.lab.startsWith("own-")).map((lab) => [lab.lab, lab.owner]), [["own-a", "alice"], ["own-b", "bob"]]);

			const a = stateOf("own-a");
			const b = stateOf("own-b");
			const refused = await as("bob", ["down", "own-a"]);
			t.is(refused.exitCode, 1);
			t.regex(refused.stderr, /^testbed: lab "own-a" is not yours: alice brought it up at \S+ \(you are bob\); leave it to them, or take it down anyway with `testbed down own-a --force`$/m);
			await assertIntact(t, "own-a", a);

			const all = await as("alice", ["down", "--all"]);
			t.is(all.exitCode, 0, all.stderr);
			t.regex(all.stdout, /^lab "own-a" is down: 2 namespaces removed, 1 processes stopped|^lab "own-a" is down: 2 namespaces removed/m);
			t.regex(all.stdout, /^left alone: lab own-b of user bob; --force takes it down too$/m);
			t.deepEqual(leftovers("own-a", classNamespaces("own-a")), []);
			await assertIntact(t, "own-b", b);

			const forced = await as("alice", ["down", "own-b", "--force"]);
			t.is(forced.exitCode, 0, forced.stderr);
			t.regex(forced.stdout, /^lab "own-b" \(bob's\) is down: 2 namespaces removed/m);
		} finally {
			await cleanUp(t, { "own-a": classNamespaces("own-a"), "own-b": classNamespaces("own-b") });
		}
	});
});

rootTest("a lab name reused: up says whose it is and how to run one's own copy; --force replaces it and names the owner", async (t) => {
	await withFiles({ "class.yml": classLab }, async (path) => {
		try {
			t.is((await as("alice", ["up", path("class.yml"), "--name", "own-a"])).exitCode, 0);
			const again = await as("bob", ["up", path("class.yml"), "--name", "own-a"]);
			t.is(again.exitCode, 1);
			t.regex(again.stderr, /^testbed: lab "own-a" is already up, brought up by alice at \S+$/m);
			t.regex(again.stderr, /^run your own copy under another name: testbed up \S*class\.yml --name NAME \(its namespaces become NAME-…\); or, if alice agrees, replace theirs: `testbed up … --force`$/m);
			const mine = await as("alice", ["up", path("class.yml"), "--name", "own-a"]);
			t.regex(mine.stderr, /brought up by you \(alice\) at/);
			t.regex(mine.stderr, /; or replace it: `testbed up … --force` \(or `testbed down own-a` first\)$/m);

			const replaced = await as("bob", ["up", path("class.yml"), "--name", "own-a", "--force"]);
			t.is(replaced.exitCode, 0, replaced.stderr);
			t.regex(replaced.stderr, /^replaced lab "own-a" of user alice \(up since \S+\): --force took it down$/m);
			t.is(readLedger("own-a")?.owner, "bob");
			t.is((await as("alice", ["down", "own-a"])).exitCode, 1, "now bob's");
			t.is((await as("bob", ["down", "own-a"])).exitCode, 0);
		} finally {
			await cleanUp(t, { "own-a": classNamespaces("own-a") });
		}
	});
});

rootTest("a namespace another lab holds: the message names that lab and who brought it up; a foreign one is said to be foreign; nothing is built", async (t) => {
	const clash = "name: own-c\nnodes:\n  x: { netns: own-a-owngw }\n  y: {}\nlinks:\n  - { endpoints: [x:eth0, y:eth0], subnet: 10.0.1.0/24 }\n";
	const foreignLab = "name: own-f\nnodes:\n  x: {}\n  y: {}\nlinks:\n  - { endpoints: [x:eth0, y:eth0], subnet: 10.0.1.0/24 }\n";
	await withFiles({ "class.yml": classLab, "clash.yml": clash, "foreign.yml": foreignLab }, async (path) => {
		try {
			t.is((await as("alice", ["up", path("class.yml"), "--name", "own-a"])).exitCode, 0);
			const a = stateOf("own-a");
			const bob = await as("bob", ["up", path("clash.yml")]);
			t.is(bob.exitCode, 1);
			t.regex(bob.stderr, /^testbed: namespace own-a-owngw already exists: it belongs to lab "own-a", brought up by alice at \S+$/m);
			t.regex(bob.stderr, /^run the lab under a name of its own: testbed up \S*clash\.yml --name NAME \(its namespaces become NAME-…\)$/m);
			t.notRegex(bob.stderr, /did not create/);
			t.false(existsSync("/run/testbed/own-c.json"));
			t.false(namespaceExists("own-c-y"));
			const alice = await as("alice", ["up", path("clash.yml")]);
			t.regex(alice.stderr, /brought up by you \(alice\) at \S+ \(`testbed down own-a` frees it\)$/m);
			await assertIntact(t, "own-a", a);
			const fixed = await as("bob", ["up", path("clash.yml"), "--name", "own-d"]);
			t.is(fixed.exitCode, 0, `the fix works: ${fixed.stderr}`);
			t.true(namespaceExists("own-d-own-a-owngw"));

			await execa("ip", ["netns", "add", "own-f-x"]);
			const foreign = await as("bob", ["up", path("foreign.yml")]);
			t.is(foreign.exitCode, 1);
			t.regex(foreign.stderr, /^testbed: namespace own-f-x already exists and testbed did not create it: no lab on this host owns it$/m);
			t.regex(foreign.stderr, /--name NAME .*; or, if it is a leftover nobody uses, remove it: ip netns del own-f-x$/m);
			t.true(namespaceExists("own-f-x"), "left alone");
			t.false(namespaceExists("own-f-y"));
			const renamed = await as("bob", ["up", path("foreign.yml"), "--name", "own-g"]);
			t.is(renamed.exitCode, 0, `the fix works: ${renamed.stderr}`);
		} finally {
			await execa("ip", ["netns", "del", "own-f-x"], { reject: false });
			await cleanUp(t, { "own-a": classNamespaces("own-a"), "own-c": ["own-c-y"], "own-d": ["own-d-own-a-owngw", "own-d-y"], "own-f": ["own-f-y"], "own-g": ["own-g-x", "own-g-y"] });
		}
	});
});

rootTest("a copy that fails midway is rolled back alone: the other copy of the class is untouched", async (t) => {
	const rejected = new URL("../fixtures/rejected-midway.yml", import.meta.url).pathname;
	await withFiles({ "class.yml": classLab }, async (path) => {
		try {
			t.is((await as("alice", ["up", path("class.yml"), "--name", "own-a"])).exitCode, 0);
			const a = stateOf("own-a");
			const failed = await as("bob", ["up", rejected, "--name", "own-r"]);
			t.is(failed.exitCode, 1);
			t.regex(failed.stderr, /building node "a" failed in namespace own-r-a/);
			t.deepEqual(leftovers("own-r", ["own-r-r", "own-r-a", "own-r-b"]), []);
			await assertIntact(t, "own-a", a);
		} finally {
			await cleanUp(t, { "own-a": classNamespaces("own-a"), "own-r": ["own-r-r", "own-r-a", "own-r-b"] });
		}
	});
});

rootTest("Ctrl-C during up of one copy — while its namespaces are built, or while its programs start — removes that copy only", async (t) => {
	const units = 60;
	const big = unitsTopology("own-big", units);
	const unitNamespaces = (lab: string) => [`${lab}-internet`, ...Array.from({ length: units }, (_, i) => [`${lab}-nat${i}`, `${lab}-peer${i}`]).flat()];
	// A program that is never ready, with 5 minutes to become so: `up` must stop waiting at Ctrl-C (else this test times out).
	const slow = 'name: own-slow\nnodes:\n  a:\n    programs:\n      late: { run: [sleep, "600"], ready: { output: ready, within: 5m } }\n';
	await withFiles({ "class.yml": classLab, "big.yml": big, "slow.yml": slow }, async (path) => {
		try {
			t.is((await as("alice", ["up", path("class.yml"), "--name", "own-a"])).exitCode, 0);
			const a = stateOf("own-a");
			const interrupt = async (file: string, lab: string, when: () => boolean) => {
				const child = as("bob", ["up", file, "--name", lab]);
				const deadline = Date.now() + 20_000;
				while (!when() && Date.now() < deadline) await sleep(2);
				t.true(when(), `${lab}: reached the point to interrupt at`);
				child.kill("SIGINT");
				const result = await child;
				t.is(result.exitCode, 1, result.stdout);
				t.regex(result.stderr, new RegExp(`^interrupted: stopping and removing what \`up\` of lab "${lab}" created…$`, "m"));
				t.regex(result.stderr, /^testbed: interrupted: everything `up` had created was removed$/m);
			};
			// While namespaces are made: as soon as the ledger exists.
			await interrupt(path("big.yml"), "own-i", () => existsSync("/run/testbed/own-i.json"));
			t.deepEqual(leftovers("own-i", unitNamespaces("own-i")), []);
			// While the program's start waits for it to be ready: its supervisor runs.
			await interrupt(path("slow.yml"), "own-p", () => Boolean(existsSync("/run/testbed/own-p.json") && readLedger("own-p")?.supervisor));
			t.deepEqual(leftovers("own-p", ["own-p-a"]), []);
			await assertIntact(t, "own-a", a);
		} finally {
			await cleanUp(t, { "own-a": classNamespaces("own-a"), "own-i": unitNamespaces("own-i"), "own-p": ["own-p-a"] });
		}
	});
});

rootTest("the library: up(file, { name }) brings a copy up under that name; downLab of another user's lab is refused (LAB_OWNED) unless force", async (t) => {
	await withFiles({ "class.yml": classLab }, async (path) => {
		try {
			t.is((await as("alice", ["up", path("class.yml"), "--name", "own-a"])).exitCode, 0);
			const lab = await up(path("class.yml"), { name: "own-l" });
			try {
				t.is(lab.name, "own-l");
				t.deepEqual(lab.lab.nodes.map((node) => node.netns), ["own-l-owngw", "own-l-pc"]);
				t.is((await lab.exec("pc", ["ping", "-c", "1", "-W", "2", "10.0.1.1"])).exitCode, 0);
				t.is(readLedger("own-l")?.owner, process.env.SUDO_USER || "root");
			} finally {
				await lab.down();
			}
			t.deepEqual(leftovers("own-l", classNamespaces("own-l")), []);
			const refused = await t.throwsAsync(downLab("own-a"), { instanceOf: LabStateError, code: "LAB_OWNED" });
			t.regex(refused!.message, /^lab "own-a" is not yours: alice brought it up at /);
			t.true(namespaceExists("own-a-pc"));
			t.is((await downLab("own-a", { force: true })).owner, "alice");
		} finally {
			await cleanUp(t, { "own-a": classNamespaces("own-a"), "own-l": classNamespaces("own-l") });
		}
	});
});
