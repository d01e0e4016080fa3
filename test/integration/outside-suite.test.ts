// The library as another project's test suite uses it: a folder of its own where testbed is installed
// as a package (`npm install /path/to/testbed` links node_modules/testbed to the checkout; the test
// makes that same link instead of calling npm), then `import { up } from "testbed"` — in plain Node,
// with no TypeScript loader, and type-checked by the user's own strict compiler options.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { execa } from "execa";
import { leftovers, rootTest } from "../helpers/host.ts";

const checkout = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = fileURLToPath(new URL("../fixtures/outside-suite/", import.meta.url));

/** A user's project folder with testbed installed into it the way npm installs a folder. */
function project(): { dir: string; done: () => void } {
	const dir = mkdtempSync(join(tmpdir(), "testbed-user-suite-"));
	writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "my-p2p-suite", private: true, type: "module", dependencies: { testbed: `file:${checkout}` } }, null, 2)}\n`);
	mkdirSync(join(dir, "node_modules"));
	symlinkSync(checkout, join(dir, "node_modules", "testbed"));
	return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

rootTest("an outside suite imports testbed by name: exec with env/input/timeout, spawn with waitFor/lines/kill, addresses; a forgotten process stops with the lab", async (t) => {
	const { dir, done } = project();
	try {
		copyFileSync(join(fixtures, "suite.mjs"), join(dir, "suite.mjs"));
		const run = await execa(process.execPath, ["suite.mjs"], { cwd: dir, reject: false, timeout: 90_000 });
		t.is(run.exitCode, 0, run.stderr);
		const seen = JSON.parse(run.stdout);
		t.deepEqual(seen.addresses, { alice: "192.168.1.2", aliceEth0: "192.168.1.2", server: "203.0.113.2", homePublic: "198.51.100.2" });
		t.regex(seen.notANat, /"alice" is not a NAT; NATs: home/);
		t.is(seen.exec.exitCode, 0);
		t.regex(seen.exec.stdout, /^typed hello alice 203\.0\.113\.2\n203\.0\.113\.2\s+server$/);
		t.deepEqual(seen.timeout, { timedOut: true, exitCode: null, signal: "SIGTERM" });
		t.deepEqual(seen.failed, { exitCode: 4, stderr: "oops" });
		t.is(seen.ready, "listening on 9000");
		t.is(seen.reply, "ping");
		t.is(seen.echoSaw, "from 198.51.100.2", "the server saw alice's NAT's public address");
		t.deepEqual(seen.echoExit, { signal: "SIGTERM", timedOut: false });
		t.deepEqual(seen.echoLines, ["listening on 9000", "from 198.51.100.2"]);
		t.deepEqual(seen.counted, ["line 1", "line 2", "line 3"]);
		t.is(seen.counterExit, 7);
		t.true(Number.isInteger(seen.forgottenPid));
		t.false(seen.forgottenAliveAfterDown, "down() stopped the process the suite forgot");
	} finally {
		done();
	}
	t.deepEqual(leftovers("tb-outside", ["tb-outside-internet", "tb-outside-home", "tb-outside-alice", "tb-outside-server"]), []);
});

test("the library's types, as a user's TypeScript sees them (strict, NodeNext, none of testbed's own compiler options)", async (t) => {
	const types = join(checkout, "dist/types/src/index.d.ts");
	if (!existsSync(types)) return t.fail(`${types} is missing: npm run build writes the declarations`);
	const { dir, done } = project();
	try {
		copyFileSync(join(fixtures, "suite.ts"), join(dir, "suite.ts"));
		// And a mistake in the user's code, which must be caught against those types (one compiler run for both).
		writeFileSync(join(dir, "mistake.ts"), 'import { up } from "testbed";\nconst lab = await up("lab.yml");\nconst code: string = (await lab.exec("alice", ["true"])).exitCode;\nconsole.log(code);\n');
		symlinkSync(join(checkout, "node_modules", "@types"), join(dir, "node_modules", "@types"));
		writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, types: ["node"] }, include: ["suite.ts", "mistake.ts"] }));
		const tsc = await execa(process.execPath, [join(checkout, "node_modules/typescript/bin/tsc"), "-p", "."], { cwd: dir, reject: false });
		t.deepEqual(tsc.stdout.split("\n").filter((line) => /error TS/.test(line)), ["mistake.ts(3,7): error TS2322: Type 'number | null' is not assignable to type 'string'."], tsc.stdout + tsc.stderr);
	} finally {
		done();
	}
});
