// `testbed init [TEMPLATE] --name NAME`: each student's own file, NAME.yml, as lab NAME with namespaces of its own.
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { Io } from "../../src/cli/io.ts";
import { main } from "../../src/cli/main.ts";
import { loadLab } from "../../src/load.ts";

function capture(): Io & { stdout: string; stderr: string } {
	const io = {
		stdout: "",
		stderr: "",
		color: false,
		out: (text: string) => void (io.stdout += `${text}\n`),
		err: (text: string) => void (io.stderr += `${text}\n`),
		json: (value: unknown) => void (io.stdout += `${JSON.stringify(value)}\n`),
	};
	return io;
}

/** Run in a scratch folder (init writes NAME.yml into the current folder). */
async function inScratch(body: (dir: string) => Promise<void>): Promise<void> {
	const dir = mkdtempSync(join(tmpdir(), "testbed-init-"));
	const cwd = process.cwd();
	process.chdir(dir);
	try {
		await body(dir);
	} finally {
		process.chdir(cwd);
		rmSync(dir, { recursive: true });
	}
}

const template = (name: string) => readFileSync(new URL(`../../topologies/${name}.yml`, import.meta.url), "utf8");

test.serial("init --name NAME writes NAME.yml as lab NAME; a fixed netns: follows the name; two students' files share no namespace", async (t) => {
	await inScratch(async (dir) => {
		for (const student of ["alice", "bob"]) {
			const io = capture();
			t.is(await main(["init", "seed-p2p", "--name", student], io), 0, io.stderr);
			t.regex(io.stdout, new RegExp(`^wrote ${join(dir, `${student}.yml`)} \\(from template seed-p2p, as lab ${student}\\)`));
		}
		const [alice, bob] = ["alice", "bob"].map((student) => loadLab(join(dir, `${student}.yml`)));
		t.is(alice.name, "alice");
		t.deepEqual(alice.nodes.map((node) => node.netns), ["alice-unr", "alice-host"]);
		t.deepEqual(bob.nodes.map((node) => node.netns), ["bob-unr", "bob-host"]);
		const written = readFileSync(join(dir, "alice.yml"), "utf8");
		t.true(written.includes("#   ip netns add unr"), "the lecture's comments are kept");
		t.is(written.split("\n").filter((line, index) => line !== template("seed-p2p").split("\n")[index]).length, 3, "schema comment, name: and netns: changed, nothing else");
	});
});

test.serial("init --name with -o writes there; without --name the template's name stays", async (t) => {
	await inScratch(async (dir) => {
		t.is(await main(["init", "two-nats", "--name", "own-x", "-o", "lab.yml"], capture()), 0);
		t.regex(readFileSync(join(dir, "lab.yml"), "utf8"), /^name: own-x$/m);
		t.false(existsSync(join(dir, "own-x.yml")));
		t.is(await main(["init", "two-nats"], capture()), 0);
		t.regex(readFileSync(join(dir, "two-nats.yml"), "utf8"), /^name: two-nats$/m);
	});
});

test.serial("init --name with a bad name: exit 2 with the rule, no file written", async (t) => {
	await inScratch(async (dir) => {
		const io = capture();
		t.is(await main(["init", "seed-p2p", "--name", "Alice_1"], io), 2);
		t.is(io.stderr, 'testbed: --name "Alice_1" is not a valid lab name: use 1-24 characters: a-z, 0-9 and -, starting with a letter, not ending with -\n');
		t.false(existsSync(join(dir, "Alice_1.yml")));
	});
});

test("up --name with a bad name: exit 2 with the rule, before anything else (no root needed to be told)", async (t) => {
	const io = capture();
	t.is(await main(["up", "topologies/seed-p2p.yml", "--name", "bob-"], io), 2);
	t.regex(io.stderr, /^testbed: --name "bob-" is not a valid lab name: use 1-24 characters/);
});
