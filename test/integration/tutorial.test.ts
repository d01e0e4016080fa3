// docs/tutorial.md, typed as a student would: every `$ command` in its console blocks runs, in order,
// from a fresh folder, and prints what the tutorial shows (times, ports and counters masked).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { systemPath } from "../../src/apply/which.ts";
import { checkFile } from "../../src/load.ts";
import { labStatuses } from "../../src/apply/status.ts";
import { leftovers, rootTest } from "../helpers/host.ts";
import { compareOutput, readTranscript, type TranscriptStep } from "../helpers/transcript.ts";

const root = new URL("../../", import.meta.url).pathname;
const document = "docs/tutorial.md";

/** A folder like a student's: `topologies/` beside them, `testbed` and `sudo` on PATH. */
function classroom(): { dir: string; env: Record<string, string> } {
	const dir = mkdtempSync(join(tmpdir(), "testbed-tutorial-"));
	symlinkSync(join(root, "topologies"), join(dir, "topologies"));
	const bin = join(dir, ".bin");
	mkdirSync(bin);
	writeFileSync(join(bin, "testbed"), `#!/bin/sh\nexec "${process.execPath}" "${join(root, "bin/testbed.js")}" "$@"\n`);
	writeFileSync(join(bin, "sudo"), `#!/bin/sh\nexec "$@"\n`);
	for (const name of ["testbed", "sudo"]) chmodSync(join(bin, name), 0o755);
	return { dir, env: { PATH: `${bin}:${systemPath()}`, HOME: dir, LANG: "C.UTF-8", TERM: "dumb", NO_COLOR: "1" } };
}

/** `… # until Ctrl-C`: a command that runs until stopped; it gets SIGINT once it printed what the tutorial shows. */
async function runStep(step: TranscriptStep, dir: string, env: Record<string, string>): Promise<string[]> {
	const untilStopped = /#\s*until Ctrl-C\s*$/.test(step.command);
	const child = execa("bash", ["-c", step.command], { cwd: dir, env, extendEnv: false, all: true, reject: false, timeout: 120_000, killSignal: "SIGKILL" });
	if (untilStopped) {
		const wanted = step.expected.filter((line) => line.trim() !== "" && line !== "…").length;
		let printed = "";
		child.all!.on("data", (chunk: Buffer) => void (printed += chunk.toString()));
		const started = Date.now();
		while (printed.split("\n").filter((line) => line.trim() !== "").length < wanted && Date.now() - started < 20_000) await new Promise((resolve) => setTimeout(resolve, 100));
		child.kill("SIGINT");
	}
	const result = await child;
	return (result.all ?? "").split("\n");
}

rootTest("docs/tutorial.md: every command runs and prints what the tutorial shows", async (t) => {
	const steps = readTranscript(readFileSync(join(root, document), "utf8"));
	t.true(steps.length >= 30, `the tutorial has its commands (${steps.length})`);
	const { dir, env } = classroom();
	const labs = new Set<string>();
	t.log(`${steps.length} commands from ${document}, run in ${dir}`);
	try {
		for (const step of steps) {
			for (const match of step.command.matchAll(/testbed up (\S+)(?: --name (\S+))?/g)) labs.add(match[2] ?? labNameIn(join(dir, match[1]!)));
			const printed = await runStep(step, dir, env);
			const difference = compareOutput(step.expected, printed);
			if (difference) {
				t.fail(`${document}:${step.line}: \`${step.command}\`\n${difference}\n--- printed ---\n${printed.join("\n")}`);
				return;
			}
		}
		t.pass();
	} finally {
		for (const name of labStatuses().map((lab) => lab.lab).filter((name) => labs.has(name)))
			await execa(process.execPath, [join(root, "bin/testbed.js"), "down", name, "--force"], { reject: false });
		rmSync(dir, { recursive: true, force: true });
		const namespaces = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
		for (const lab of labs) t.deepEqual(leftovers(lab, namespaces.filter((name) => name.startsWith(`${lab}-`))), [], `lab ${lab} left nothing behind`);
	}
});

/** The lab a file names (the tutorial's files are valid; checkFile never throws). */
function labNameIn(file: string): string {
	return checkFile(file).lab?.name ?? "";
}
