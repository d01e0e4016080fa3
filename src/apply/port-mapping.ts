// The port-mapping daemons of a lab: one miniupnpd per NAT that offers port mapping, run by the
// lab's supervisor like a program of that node (`testbed ps`/`logs` show it as "portmap"), its
// configuration and lease file in the lab's state folder; the supervisor mirrors its lease file into
// the NAT's `granted` maps (grantSync) as it changes. A NAT reboot stops it, forgets what it granted
// and starts it again.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { ApplyError, LabStateError, MissingFeatureError } from "../errors.ts";
import { daemonCommand, daemonFiles, parseLeases, renderDaemonConf, renderGrantSync, type Lease, type PortMappingFiles } from "../render/miniupnpd.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { askSupervisor, programPath } from "./programs.ts";
import { run } from "./run.ts";
import { netnsPath, stateDir } from "./state-files.ts";
import { inNode } from "./node-env.ts";
import type { ProgramSpec } from "./supervisor-protocol.ts";
import { which } from "./which.ts";
import { portMappingPorts } from "../vocabulary/port-mapping.ts";

/** The daemon's name among the node's programs. */
export const daemonProgram = "portmap";
export const daemonInstall = "apt-get install -y --no-install-recommends miniupnpd-nftables (or `make setup`); not the `miniupnpd` package, which starts a service on the host";

export const portMappingFiles = (lab: string, node: string): PortMappingFiles => daemonFiles(stateDir(lab), node);

export const grantingNats = (lab: Lab): LabNode[] => lab.nodes.filter((node) => node.nat?.portMapping);

/** The daemon's path, or why it cannot run here (missing, or built for iptables). */
export function daemonBinary(): { path: string } | { missing: string } {
	const path = which("miniupnpd");
	if (!path) return { missing: "miniupnpd is not installed" };
	return { path };
}

/** `up` of a lab with port mapping on a host without the daemon: exit 4 with the install command. */
export function requireDaemon(lab: Lab): void {
	const nats = grantingNats(lab);
	if (nats.length === 0) return;
	const binary = daemonBinary();
	if ("missing" in binary) {
		const pos = nats[0].nat!.portMapping!.pos;
		throw new MissingFeatureError(`${lab.file}:${pos.line}:${pos.col}: ${binary.missing}, needed for port mapping on nat ${nats.map((node) => node.name).join(", ")}; install with: ${daemonInstall}`, "miniupnpd", daemonInstall);
	}
}

/**
 * In the NAT node's own namespaces (node-env.ts: its mount namespace holds no other namespace's
 * mounts), /dev/console becomes /dev/null: miniupnpd logs with LOG_CONS and, where no syslog
 * listens, writes every line to the host's console — slowly: a debug-logged NAT-PMP request once
 * took 2 minutes. Then the daemon runs in the foreground (its log goes to the supervisor).
 */
const daemonScript = 'mount --bind /dev/null /dev/console 2>/dev/null; exec "$@"';

/** Write each daemon's configuration (and an empty lease file); the supervisor's specs to start them. */
export function daemonSpecs(lab: Lab): ProgramSpec[] {
	const binary = daemonBinary();
	return grantingNats(lab).map((node) => {
		const files = portMappingFiles(lab.name, node.name);
		writeFileSync(files.conf, renderDaemonConf(lab.name, node.name, node.nat!, files), { mode: 0o600 });
		writeFileSync(files.leases, "", { mode: 0o600 });
		const path = "path" in binary ? binary.path : "miniupnpd";
		const spec = node.nat!.portMapping!;
		const udp = spec.protocols.includes("nat-pmp") || spec.protocols.includes("pcp");
		return {
			node: node.name,
			name: daemonProgram,
			argv: inNode(lab.name, node, ["sh", "-c", daemonScript, "testbed-portmap", ...daemonCommand(path, files)], "/"),
			env: { PATH: programPath, LANG: "C.UTF-8" },
			cwd: "/",
			text: daemonCommand(path, files).join(" "),
			ready: udp ? { kind: "udp", port: portMappingPorts.pmp, withinMs: 10_000 } : { kind: "tcp", port: portMappingPorts.http, withinMs: 10_000 },
			after: [],
			grants: { leases: files.leases, netns: node.netns },
		};
	});
}

/** The leases a NAT's daemon has granted (none when it offers no port mapping or has not written its file). */
export function readLeases(lab: string, node: string): Lease[] {
	try {
		return parseLeases(readFileSync(portMappingFiles(lab, node).leases, "utf8"));
	} catch {
		return [];
	}
}

/** Make the NAT's `granted` maps hold what the lease file says now. */
export async function syncGrants(leasesFile: string, netns: string): Promise<void> {
	let text = "";
	try {
		text = readFileSync(leasesFile, "utf8");
	} catch {}
	const result = await run(["nsenter", `--net=${netnsPath(netns)}`, "nft", "-f", "-"], { input: renderGrantSync(parseLeases(text), Math.floor(Date.now() / 1000)) });
	if (result.exitCode !== 0) throw new ApplyError(`mirroring port mappings into the NAT's maps failed: ${result.stderr}`, { command: "nft -f -", namespace: netns, stderr: result.stderr, rolledBack: false });
}

/**
 * A NAT reboot's part for the daemon: stop it and empty its lease file (it would reload it), or start
 * it again (through the lab's supervisor, like at `up`).
 */
export async function controlDaemon(lab: Lab, node: string, action: "stop" | "start"): Promise<void> {
	if (action === "stop") {
		await askSupervisor(lab.name, { cmd: "stop", node, name: daemonProgram }, 15_000).catch(() => undefined);
		writeFileSync(portMappingFiles(lab.name, node).leases, "", { mode: 0o600 });
		return;
	}
	const reply = await askSupervisor(lab.name, { cmd: "start", programs: daemonSpecs(lab).filter((spec) => spec.node === node) }, 30_000);
	if (!reply.ok) throw new LabStateError(`the port-mapping daemon of NAT "${node}" did not start again: ${reply.error}`, "EVENT_FAILED");
}

/** When the lease file last changed (0: none). */
export function leasesChanged(file: string): number {
	try {
		return statSync(file).mtimeMs;
	} catch {
		return 0;
	}
}
