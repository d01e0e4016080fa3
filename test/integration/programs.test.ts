// The user's programs in a lab: started by `up` (in after: order, when ready), kept output, logs, ps,
// stop, exec --detach/--env/--timeout, names and hostnames inside nodes, and failures that roll the
// lab back naming the program. Through the CLI, as users run it, and on the real kernel. (rootTest checks
// that each test leaves the root namespace as it found it.)
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { leftovers, rootTest } from "../helpers/host.ts";
import { logCap } from "../../src/apply/program-logs.ts";

const testbed = (args: string[], options: { input?: string; timeout?: number } = {}) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false, ...options });

/** A lab file in a fresh folder (programs' relative paths start there); removed by `done`. */
function labFile(text: string): { file: string; dir: string; done: () => void } {
	const dir = mkdtempSync(join(tmpdir(), "testbed-programs-"));
	const file = join(dir, "lab.yml");
	writeFileSync(file, text);
	return { file, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const network = `
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [server:eth0, internet:e2], subnet: 203.0.113.0/24 }
`;

const udpEcho = `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000)); print("bound", flush=True)
while True:
    d, a = s.recvfrom(2048); s.sendto(d, a)`;

rootTest("programs start in after: order once ready; names, hostnames and addresses inside nodes; logs, ps, stop; down leaves nothing", async (t) => {
	const { file, dir, done } = labFile(`
name: tb-prog
nodes:
  internet: { kind: router }
  home: { kind: nat }
  server:
    programs:
      echo:
        run: [python3, -c, ${JSON.stringify(udpEcho)}]
        ready: { udp: 9000, within: 10s }
      web:
        run: [python3, -m, http.server, "8080", --bind, "\${server}"]
        ready: { tcp: 8080 }
      marker:
        run: "sleep 0.2; touch ready.flag; echo made the flag; exec sleep 600"
        cwd: .
        ready: { file: ready.flag }
        after: [echo, web]
      chatty:
        run: "echo starting as $(hostname) for $TESTBED_LAB with GREETING=$GREETING; echo ready now; exec sleep 600"
        env: { GREETING: "hi \${alice}" }
        ready: { output: "^ready now$" }
        after: [marker]
  alice: {}
${network}`);
	try {
		const up = await testbed(["up", file, "--json"]);
		t.is(up.exitCode, 0, up.stderr);
		const summary = JSON.parse(up.stdout) as { programs: { node: string; name: string; status: string; startedAt?: string; readyAt?: string }[] };
		const byName = new Map(summary.programs.map((program) => [program.name, program]));
		t.deepEqual([...byName.keys()].sort(), ["chatty", "echo", "marker", "web"]);
		for (const program of summary.programs) t.is(program.status, "ready", program.name);
		// echo and web have no after: both started before either was ready (in parallel, not one by one).
		const at = (name: string, key: "startedAt" | "readyAt") => Date.parse(byName.get(name)![key]!);
		t.true(at("web", "startedAt") <= at("echo", "readyAt") && at("echo", "startedAt") <= at("web", "readyAt"), "echo and web started together");
		t.true(at("marker", "startedAt") >= Math.max(at("echo", "readyAt"), at("web", "readyAt")), "marker started once echo and web were ready");
		t.true(Date.parse(byName.get("marker")!.readyAt!) >= Date.parse(byName.get("echo")!.readyAt!), "marker waited for echo");
		t.true(Date.parse(byName.get("chatty")!.readyAt!) >= Date.parse(byName.get("marker")!.readyAt!), "chatty waited for marker");
		t.truthy(statSync(join(dir, "ready.flag")), "the program ran in the topology file's folder");

		// A node's mount namespace keeps no copy of the namespaces under /run/netns and /run/testbed (it
		// would keep them alive): checked first, on its own, right after up.
		const copies = await testbed(["exec", "tb-prog", "alice", "--", "awk", '$5 ~ "^/run/(netns|testbed)(/|$)" { print $5 }', "/proc/self/mountinfo"]);
		t.is(copies.exitCode, 0, copies.stderr);
		t.is(copies.stdout, "", "no namespace mounts copied into the node");

		// What follows only reads the running lab: every command at once (each is a CLI process of its own).
		const [names, echo, web, addresses, unknown, logs, all, noSuch, ps] = await Promise.all([
			testbed(["exec", "tb-prog", "alice", "--", "sh", "-c", "hostname; getent hosts server alice home; echo $TESTBED_NODE $TESTBED_ADDR_SERVER"]),
			testbed(["exec", "tb-prog", "alice", "--", "python3", "-c", 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b"x", ("server", 9000)); print(s.recvfrom(10)[0].decode())']),
			testbed(["exec", "tb-prog", "alice", "--", "python3", "-c", 'import urllib.request; print(urllib.request.urlopen("http://server:8080/", timeout=3).status)']),
			Promise.all(["server", "home.public", "home.lan"].map((target) => testbed(["addr", "tb-prog", target]))),
			testbed(["addr", "tb-prog", "alise"]),
			testbed(["logs", "tb-prog", "server:chatty"]),
			testbed(["logs", "tb-prog"]),
			testbed(["logs", "tb-prog", "server:nope"]),
			testbed(["ps", "tb-prog", "--json"]),
		]);

		// Names and hostnames inside the lab; the host's own files are untouched.
		t.is(names.exitCode, 0, names.stderr);
		t.deepEqual(names.stdout.split("\n").map((line) => line.replace(/\s+/g, " ")), ["alice", "203.0.113.2 server", "192.168.1.2 alice", "192.168.1.1 home", "alice 203.0.113.2"]);
		t.not(readFileSync("/etc/hosts", "utf8").includes("tb-prog"), true);
		// Through the NAT, by name, to the program: the UDP echo answers, the web server too.
		t.is(echo.stdout, "x", echo.stderr);
		t.is(web.stdout, "200", web.stderr);
		t.deepEqual(addresses.map((result) => result.stdout), ["203.0.113.2", "198.51.100.2", "192.168.1.1"], "server, home.public, home.lan");
		t.is(unknown.exitCode, 2, "an unknown node is a usage mistake");
		t.regex(unknown.stderr, /no node "alise"; did you mean "alice"/);

		// Output, kept per program.
		t.regex(logs.stdout, /^starting as server for tb-prog with GREETING=hi 192\.168\.1\.2\nready now$/);
		t.regex(all.stdout, /^server:echo \| bound$/m);
		t.regex(all.stdout, /^server:marker \| made the flag$/m);
		t.is(noSuch.exitCode, 1);
		t.regex(noSuch.stderr, /no program server:nope; programs: server:echo, server:web, server:marker, server:chatty/);

		const listed = JSON.parse(ps.stdout) as { programs: { name: string; status: string; pid: number }[]; nodes: { node: string; processes: { pid: number }[] }[] };
		t.is(listed.programs.length, 4);
		const serverPids = listed.nodes.find((node) => node.node === "server")!.processes.map((proc) => proc.pid);
		for (const program of listed.programs) t.true(serverPids.includes(program.pid), `${program.name}'s pid is among the server's processes`);

		const stop = await testbed(["stop", "tb-prog", "server:web"]);
		t.is(stop.exitCode, 0, stop.stderr);
		t.regex(stop.stdout, /^server:web stopped/);
		const after = JSON.parse((await testbed(["ps", "tb-prog", "--json"])).stdout) as { programs: { name: string; status: string }[] };
		t.is(after.programs.find((program) => program.name === "web")?.status, "stopped");
		t.is(after.programs.find((program) => program.name === "echo")?.status, "ready");
	} finally {
		await testbed(["down", "tb-prog"]);
		done();
	}
	t.deepEqual(leftovers("tb-prog", ["tb-prog-internet", "tb-prog-home", "tb-prog-server", "tb-prog-alice"]), []);
});

rootTest("a program that exits early, or is not ready in time, fails up with exit 1 naming it, its end and its last lines; the lab is rolled back (kept with --keep)", async (t) => {
	const early = labFile(`
name: tb-fail
nodes:
  internet: { kind: router }
  home: { kind: nat }
  server:
    programs:
      ok: { run: [sleep, "600"] }
      broken:
        run: "echo looking for the config; echo config.toml: no such file >&2; exit 3"
        ready: { udp: 9000 }
        after: [ok]
      never: { run: [sleep, "600"], after: [broken] }
  alice: {}
${network}`);
	const slow = labFile(`
name: tb-slow
nodes:
  internet: { kind: router }
  home: { kind: nat }
  server:
    programs:
      sleeper: { run: "echo waiting; exec sleep 600", ready: { tcp: 7000, within: 700ms } }
  alice: {}
${network}`);
	try {
		const failed = await testbed(["up", early.file]);
		t.is(failed.exitCode, 1);
		t.regex(failed.stderr, /program "broken" on node "server" failed: exited before it was ready \(exit status 3\)/);
		t.regex(failed.stderr, /command: echo looking for the config; echo config\.toml: no such file >&2; exit 3/);
		t.regex(failed.stderr, /last output:\n {4}looking for the config\n {4}config\.toml: no such file/);
		t.regex(failed.stderr, /everything `up` had created was removed/);
		t.deepEqual(leftovers("tb-fail", ["tb-fail-internet", "tb-fail-home", "tb-fail-server", "tb-fail-alice"]), []);

		const late = await testbed(["up", slow.file]);
		t.is(late.exitCode, 1);
		t.regex(late.stderr, /program "sleeper" on node "server" failed: not ready within 700 ms \(waited for tcp port 7000 bound\)/);
		t.regex(late.stderr, /last output:\n {4}waiting/);
		t.deepEqual(leftovers("tb-slow", ["tb-slow-internet", "tb-slow-home", "tb-slow-server", "tb-slow-alice"]), []);

		const kept = await testbed(["up", early.file, "--keep"]);
		t.is(kept.exitCode, 1);
		t.regex(kept.stderr, /the lab stays up \(--keep\)/);
		const ps = JSON.parse((await testbed(["ps", "tb-fail", "--json"])).stdout) as { programs: { name: string; status: string; exitCode?: number }[] };
		t.like(ps.programs.find((program) => program.name === "broken"), { status: "failed", exitCode: 3 });
		t.is(ps.programs.find((program) => program.name === "ok")?.status, "running");
		t.is(ps.programs.find((program) => program.name === "never")?.status, "failed", "not started after a failed dependency");
	} finally {
		await testbed(["down", "tb-fail"]);
		early.done();
		slow.done();
	}
	t.deepEqual(leftovers("tb-fail", ["tb-fail-internet", "tb-fail-home", "tb-fail-server", "tb-fail-alice"]), []);
});

rootTest("hostile programs: a flood of binary output is capped, SIGTERM is ignored, a daemon escapes its parent; down still removes everything", async (t) => {
	const { file, done } = labFile(`
name: tb-hostile
nodes:
  server:
    programs:
      flood: { run: "head -c 3000000 /dev/urandom; echo; echo end of flood; exec sleep 600" }
      stubborn: { run: "trap '' TERM; echo ignoring TERM; while :; do sleep 1; done" }
      daemon: { run: "setsid sh -c 'exec sleep 600' < /dev/null > /dev/null 2>&1 & echo forked" }
  other: {}
links:
  - { endpoints: [server:eth0, other:eth0], subnet: 10.9.0.0/24 }
`);
	try {
		const up = await testbed(["up", file]);
		t.is(up.exitCode, 0, up.stderr);
		// The flood ends in the log: wait until it has been read (bounded: a guard, not a measure).
		const log = "/run/testbed/tb-hostile/logs/server/flood.log";
		for (let i = 0; i < 500 && !readFileSync(log, "latin1").includes("end of flood"); i++) await new Promise((resolve) => setTimeout(resolve, 20));
		t.true(statSync(log).size <= logCap, `log is ${statSync(log).size} bytes, at most ${logCap}`);
		t.regex(readFileSync(log, "latin1"), /^\[testbed: earlier output dropped/);
		const logs = await testbed(["logs", "tb-hostile", "server:flood"]);
		t.is(logs.exitCode, 0);
		t.regex(logs.stdout, /end of flood$/);
		const ps = await testbed(["ps", "tb-hostile"]);
		t.regex(ps.stdout, /sleep 600/);
		const stop = await testbed(["stop", "tb-hostile", "server:stubborn"]);
		t.is(stop.exitCode, 0, stop.stderr);
		t.regex(stop.stdout, /server:stubborn stopped \(SIGKILL\)/, "SIGTERM ignored: SIGKILL after the grace time");
	} finally {
		const down = await testbed(["down", "tb-hostile"]);
		t.is(down.exitCode, 0, down.stderr);
		done();
	}
	t.deepEqual(leftovers("tb-hostile", ["tb-hostile-server", "tb-hostile-other"]), []);
	const daemons = (await execa("pgrep", ["-f", "^sleep 600$"], { reject: false })).stdout;
	t.is(daemons, "", "the daemon that left its parent's process group is gone too");
});

rootTest("exec --env, --timeout (exit 124) and --detach (listed, logged, stopped, gone at down)", async (t) => {
	const { file, done } = labFile(`
name: tb-detach
nodes:
  a: {}
  b: {}
links:
  - { endpoints: [a:eth0, b:eth0], subnet: 10.8.0.0/24 }
`);
	try {
		t.is((await testbed(["up", file])).exitCode, 0);
		const env = await testbed(["exec", "tb-detach", "a", "--env", "ONE=1", "--env", "TWO=two words", "--", "sh", "-c", 'echo "$ONE $TWO $TESTBED_LAB"']);
		t.is(env.stdout, "1 two words tb-detach");
		const bad = await testbed(["exec", "tb-detach", "a", "--env", "nope", "--", "true"]);
		t.is(bad.exitCode, 2);
		t.regex(bad.stderr, /--env takes NAME=VALUE/);
		const slow = await testbed(["exec", "tb-detach", "a", "--timeout", "300ms", "--", "sleep", "30"]);
		t.is(slow.exitCode, 124);
		const started = await testbed(["exec", "tb-detach", "b", "--detach", "--", "sh", "-c", "echo detached on $(hostname); exec sleep 600"]);
		t.is(started.exitCode, 0, started.stderr);
		t.regex(started.stdout, /^started b:sh \(pid \d+\)/);
		const second = await testbed(["exec", "tb-detach", "b", "-d", "--", "sleep", "600"]);
		t.regex(second.stdout, /^started b:sleep/);
		for (let i = 0; i < 100 && !(await testbed(["logs", "tb-detach", "b:sh"])).stdout.includes("detached"); i++) await new Promise((resolve) => setTimeout(resolve, 20));
		t.is((await testbed(["logs", "tb-detach", "b:sh"])).stdout, "detached on b");
		const ps = JSON.parse((await testbed(["ps", "tb-detach", "--json"])).stdout) as { programs: { name: string; status: string; detached?: boolean }[] };
		t.deepEqual(ps.programs.map((program) => [program.name, program.status, program.detached]), [["sh", "running", true], ["sleep", "running", true]]);
		t.is((await testbed(["stop", "tb-detach", "b"])).exitCode, 0, "all of b's programs");
	} finally {
		await testbed(["down", "tb-detach"]);
		done();
	}
	t.deepEqual(leftovers("tb-detach", ["tb-detach-a", "tb-detach-b"]), []);
});
