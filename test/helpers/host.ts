// Test helpers for integration tests: root check, snapshots of the host, and leftover checks.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import test, { type ExecutionContext } from "ava";
import { execa } from "execa";
import { downLab } from "../../src/apply/down.ts";
import { upLab, type UpOptions, type UpResult } from "../../src/apply/up.ts";
import { systemPath } from "../../src/apply/which.ts";
import type { Lab } from "../../src/resolve/lab.ts";

// Tests run under npm, whose PATH puts node_modules/.bin first (ava brings an unrelated `nft`).
process.env.PATH = systemPath();

export const isRoot = process.getuid?.() === 0;

/**
 * An integration test: serial, as root, and checked to leave the root namespace exactly as it found
 * it (links, addresses, routes, rules, nftables, iptables, IPv4/IPv6 sysctls, /run/netns). Without
 * root it is skipped, and its title says why.
 */
export function rootTest(title: string, implementation: (t: ExecutionContext) => Promise<void> | void): void {
	if (!isRoot) {
		test.skip(`${title} — skipped: needs root (network namespaces); run \`sudo npm test\``, implementation);
		return;
	}
	test.serial(title, async (t) => {
		// The state the previous test of this file ended with is the state this one starts from: its
		// tests run one after another (serial) and nothing runs between them, so the snapshot taken
		// after one serves as the one before the next (a change made between them is still caught, and
		// charged to this test). The first test of a file takes its own.
		const before = lastSnapshot ?? (await hostSnapshot());
		lastSnapshot = undefined;
		try {
			await implementation(t);
		} finally {
			const after = await hostSnapshot();
			lastSnapshot = after;
			const changes = hostChanges(before, after);
			if (changes.length > 0) t.fail(`the root namespace changed:\n  ${changes.slice(0, 20).join("\n  ")}`);
		}
	});
}

/** The snapshot the last root test of this file ended with (see rootTest). */
let lastSnapshot: Record<string, string> | undefined;

async function text(argv: string[]): Promise<string> {
	const result = await execa(argv[0], argv.slice(1), { reject: false });
	return `${result.exitCode}\n${result.stdout}`;
}

/**
 * Everything of the root namespace a lab must never change. Three programs at once (`ip` lists links,
 * addresses, routes of every family and table, and rules in one batch) and the rest read from /proc
 * and /run directly: it is taken twice around every integration test.
 */
export async function hostSnapshot(): Promise<Record<string, string>> {
	const ipObjects = ["links", "addresses", "routes", "rules"];
	const [ip, nft, iptables] = await Promise.all([
		execa("ip", ["-j", "-force", "-batch", "-"], { input: "link show\naddress show\nroute show table all\nrule show\n", reject: false }),
		text(["nft", "list", "ruleset"]),
		text(["iptables-save"]).then((out) => out.split("\n").filter((line) => !line.startsWith("#")).map((line) => line.replace(/\[\d+:\d+\]/, "")).join("\n")),
	]);
	// One line of JSON per object; anything else (an error) is kept whole, so that it differs from a good snapshot.
	const lines = ip.stdout.split("\n");
	const listed = ip.exitCode === 0 && lines.length === ipObjects.length ? Object.fromEntries(ipObjects.map((key, index) => [key, lines[index]])) : { ip: `${ip.exitCode}\n${ip.stdout}\n${ip.stderr}` };
	const netns = existsSync("/run/netns") ? readdirSync("/run/netns").sort().join(" ") : "";
	// Mount points (a lab's node namespaces are kept by bind mounts under its state folder).
	const mounts = readFileSync("/proc/self/mountinfo", "utf8")
		.split("\n")
		.filter(Boolean)
		.map((line) => line.split(" ")[4])
		.sort()
		.join("\n");
	return { ...listed, nft, iptables, sysctls: netSysctls(), netns, mounts, cgroups: testbedCgroups().join("\n") };
}

/**
 * Every IPv4 and IPv6 sysctl of the root namespace, as `sysctl -a --pattern '^net\.ipv[46]\.'` prints
 * them (read from /proc/sys directly: the same files, without a program to start), with the same
 * deprecated jiffies twins of the *_ms neighbour settings left out.
 */
function netSysctls(): string {
	const lines: string[] = [];
	const walk = (dir: string) => {
		for (const entry of readdirSync(dir, { withFileTypes: true })) {
			const path = `${dir}/${entry.name}`;
			if (entry.isDirectory()) walk(path);
			else if (!(dir.includes("/neigh/") && (entry.name === "base_reachable_time" || entry.name === "retrans_time")))
				try {
					lines.push(`${path.slice("/proc/sys/".length).replaceAll("/", ".")} = ${readFileSync(path, "utf8").trim().replace(/\s+/g, "\t")}`);
				} catch {
					// write-only (route.flush) or unreadable here (stable_secret before it is set): sysctl skips them too
				}
		}
	};
	for (const family of ["ipv4", "ipv6"]) if (existsSync(`/proc/sys/net/${family}`)) walk(`/proc/sys/net/${family}`);
	return lines.sort().join("\n");
}

/** Every cgroup directory under a `testbed/` folder of any hierarchy (v2 at /sys/fs/cgroup, or each v1 one below it). */
export function testbedCgroups(): string[] {
	const found: string[] = [];
	const roots = ["/sys/fs/cgroup", ...(existsSync("/sys/fs/cgroup") ? readdirSync("/sys/fs/cgroup").map((name) => `/sys/fs/cgroup/${name}`) : [])];
	const walk = (dir: string, depth: number) => {
		let entries: import("node:fs").Dirent[] = [];
		try {
			entries = readdirSync(dir, { withFileTypes: true });
		} catch {
			return;
		}
		for (const entry of entries)
			if (entry.isDirectory()) {
				found.push(`${dir}/${entry.name}`);
				if (depth < 2) walk(`${dir}/${entry.name}`, depth + 1);
			}
	};
	for (const root of roots) if (existsSync(`${root}/testbed`)) {
		found.push(`${root}/testbed`);
		walk(`${root}/testbed`, 0);
	}
	return found.sort();
}

export function namespaceExists(name: string): boolean {
	return existsSync(`/run/netns/${name}`);
}

/** What a lab may leave behind: nothing — no namespace, no ledger, no lock, no state directory, no mount, no supervisor. */
export function leftovers(lab: string, namespaces: string[]): string[] {
	const left = namespaces.filter(namespaceExists).map((name) => `namespace ${name}`);
	for (const path of [`/run/testbed/${lab}.json`, `/run/testbed/${lab}.lock`, `/run/testbed/${lab}`]) if (existsSync(path)) left.push(path);
	for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) if (line.split(" ")[4]?.startsWith(`/run/testbed/${lab}/`) || line.includes(` testbed-${lab}-`)) left.push(`mount ${line.split(" ")[4]}`);
	for (const dir of testbedCgroups()) if (dir.endsWith(`/testbed/${lab}`) || dir.includes(`/testbed/${lab}/`)) left.push(`cgroup ${dir}`);
	for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
		try {
			const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
			if (command.includes("\0supervise\0") && command.endsWith(`\0${lab}\0`)) left.push(`supervisor process ${pid}`);
		} catch {}
	}
	return left;
}

/**
 * Build `lab`, run `body`, always take the lab down, then check that nothing of it is left (its
 * namespaces and `extraNamespaces`, state files, mounts, supervisor). The shape of every test that
 * needs a lab for a while; tests of `up` and `down` themselves call them directly.
 */
export async function inLab<T>(t: ExecutionContext, lab: Lab, body: (lab: Lab, up: UpResult) => Promise<T>, options: { extraNamespaces?: string[]; up?: UpOptions } = {}): Promise<T> {
	const up = await upLab(lab, options.up);
	let result: T;
	try {
		result = await body(lab, up);
	} finally {
		await downLab(lab.name);
	}
	t.deepEqual(leftovers(lab.name, [...lab.nodes.map((node) => node.netns), ...(options.extraNamespaces ?? [])]), []);
	return result;
}

/** Run a command inside a namespace (test side; the library under test does its own). */
export function inNamespace(netns: string, argv: string[]) {
	return execa("ip", ["netns", "exec", netns, ...argv], { reject: false });
}

export async function ipJson<T = unknown>(netns: string, args: string[]): Promise<T> {
	const result = await execa("ip", ["-n", netns, "-j", ...args]);
	return JSON.parse(result.stdout || "[]") as T;
}

/** What changed between two snapshots, line by line: [] when the host is untouched. */
export function hostChanges(before: Record<string, string>, after: Record<string, string>): string[] {
	const changes: string[] = [];
	const split = (text: string) => text.split(/\n|(?<=\}),(?=\{)| /);
	for (const key of Object.keys(before)) {
		if (before[key] === after[key]) continue;
		const [old, now] = [new Set(split(before[key])), new Set(split(after[key]))];
		for (const line of now) if (!old.has(line)) changes.push(`${key}: + ${line.slice(0, 200)}`);
		for (const line of old) if (!now.has(line)) changes.push(`${key}: - ${line.slice(0, 200)}`);
	}
	return changes;
}

/**
 * Poll counters until `done` holds, or until they stop changing for `quietMs`: the kernel has
 * delivered what it is going to. As long as the numbers still move (a loaded machine delivers late)
 * it keeps waiting, up to `guardMs`, a guard against a hang rather than a limit on the test.
 */
export async function settle<T>(stats: () => Promise<T> | T, done: (stats: T) => boolean, options: { quietMs?: number; guardMs?: number } = {}): Promise<T> {
	const quietMs = options.quietMs ?? 1000;
	const guardMs = options.guardMs ?? 60_000;
	const started = Date.now();
	let last = await stats();
	let seen = JSON.stringify(last);
	let changedAt = started;
	while (!done(last) && Date.now() - changedAt < quietMs && Date.now() - started < guardMs) {
		await new Promise((resolve) => setTimeout(resolve, 50));
		last = await stats();
		const now = JSON.stringify(last);
		if (now !== seen) [seen, changedAt] = [now, Date.now()];
	}
	return last;
}
