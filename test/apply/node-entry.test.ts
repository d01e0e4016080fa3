// How a process becomes one of a node's: a node with limits joins its cgroups first (a constant
// script, the cgroup files as arguments), then enters its namespaces; a plain node only enters them.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { cgroupLayout } from "../../src/apply/cgroups.ts";
import { inNode, nodeEntry } from "../../src/apply/node-env.ts";
import { loadLabText } from "../../src/load.ts";

const lab = loadLabText("name: box\nnodes:\n  a: { limits: { pids: 8 } }\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }\n");
const [a, b] = lab.nodes;

test("a plain node: nsenter into its network, hostname and mount namespaces, in the directory given", (t) => {
	t.deepEqual(inNode("box", b, ["ip", "a"], "/srv"), ["nsenter", "--net=/run/netns/box-b", "--uts=/run/testbed/box/ns/b.uts", "--mount=/run/testbed/box/ns/b.mnt", "--wd=/srv", "--", "ip", "a"]);
});

// The cgroup files come from this host's layout; a host without cgroup hierarchies has none to join.
const hasCgroups = Boolean(cgroupLayout().v2 || Object.keys(cgroupLayout().controllers).length > 0);
const withCgroups = hasCgroups ? test : test.skip;
if (!hasCgroups) console.log("# skipped: this host mounts no cgroup hierarchy, so a node with limits has no cgroups to join");

withCgroups("a node with limits: a constant sh script joins each cgroup.procs before nsenter; the data are arguments", (t) => {
	const argv = nodeEntry("box", a);
	t.is(argv[0], "sh");
	t.is(argv[1], "-c");
	t.false(argv[2].includes("box"), "no lab data in the script");
	t.is(argv[3], "testbed-cgroup");
	const separator = argv.indexOf("--");
	t.true(argv.slice(4, separator).every((file) => file.endsWith("/testbed/box/a/cgroup.procs")));
	t.is(argv[separator + 1], "nsenter");
});

test("the join script writes its own pid into every file, then runs the command; a file it cannot write stops it with 125", (t) => {
	const dir = mkdtempSync(join(tmpdir(), "tb-join-"));
	try {
		const [first, second] = [join(dir, "one"), join(dir, "two")];
		const script = nodeEntry("box", a)[2];
		const out = execFileSync("sh", ["-c", script, "testbed-cgroup", first, second, "--", "sh", "-c", 'echo "$$ $0"', "ran"], { encoding: "utf8" });
		const [pid, name] = out.trim().split(" ");
		t.is(name, "ran");
		t.is(readFileSync(first, "utf8").trim(), pid, "the command is the process that joined (exec)");
		t.is(readFileSync(second, "utf8").trim(), pid);
		const failed = (() => {
			try {
				execFileSync("sh", ["-c", script, "testbed-cgroup", join(dir, "no/such/cgroup.procs"), "--", "true"], { stdio: "pipe" });
				return 0;
			} catch (error) {
				return (error as { status: number }).status;
			}
		})();
		t.is(failed, 125);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
});
