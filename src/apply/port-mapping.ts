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
import { stateDir } from "./state-files.ts";
import { inNamespace } from "../render/batch.ts";
import { inNode } from "./node-env.ts";
import type { ProgramSpec } from "./supervisor-protocol.ts";
import { which } from "./which.ts";
import { portMappingPorts } from "../vocabulary/port-mapping.ts";

/** The daemon's name among the node's programs. */
export const daemonProgram = "portmap";
export const daemonInstall = "apt-get install -y --no-install-recommends miniupnpd-nftables (or `make setup`); not the `miniupnpd` package, which starts a service on the host";

export const portMappingFiles = (lab: string, node: string): PortMappingFiles => daemonFiles(stateDir(lab), node);

export const grantingNats = (lab: Lab): LabNode[] => lab.nodes.filter((node) => node.nat?.portMapping);

/** Where the daemon is installed (undefined: it is not). */
export const daemonPath = (): string | undefined => which("miniupnpd");

/** `up` of a lab with port mapping on a host without the daemon: exit 4 with the install command. */
export function requireDaemon(lab: Lab): void {
	const nats = grantingNats(lab);
	if (nats.length === 0) return;
	if (!daemonPath()) {
		const pos = nats[0].nat!.portMapping!.pos;
		throw new MissingFeatureError(`${lab.file}:${pos.line}:${pos.col}: miniupnpd is not installed, needed for port mapping on nat ${nats.map((node) => node.name).join(", ")}; install with: ${daemonInstall}`, "miniupnpd", daemonInstall);
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
	const path = daemonPath() ?? "miniupnpd";
	return grantingNats(lab).map((node) => {
		const files = portMappingFiles(lab.name, node.name);
		writeFileSync(files.conf, renderDaemonConf(lab.name, node.name, node.nat!, files), { mode: 0o600 });
		writeFileSync(files.leases, "", { mode: 0o600 });
		const command = daemonCommand(path, files);
		const spec = node.nat!.portMapping!;
		const udp = spec.protocols.includes("nat-pmp") || spec.protocols.includes("pcp");
		return {
			node: node.name,
			name: daemonProgram,
			argv: inNode(lab.name, node, ["sh", "-c", daemonScript, "testbed-portmap", ...command], "/"),
			env: { PATH: programPath, LANG: "C.UTF-8" },
			cwd: "/",
			text: command.join(" "),
			ready: udp ? { kind: "udp", port: portMappingPorts.pmp, withinMs: 10_000 } : { kind: "tcp", port: portMappingPorts.http, withinMs: 10_000 },
			after: [],
			grants: { leases: files.leases, netns: node.netns },
		};
	});
}

/** The leases in a daemon's lease file (none when it has not written one). */
function leasesIn(file: string): Lease[] {
	try {
		return parseLeases(readFileSync(file, "utf8"));
	} catch {
		return [];
	}
}

/** The leases a NAT's daemon has granted (none when it offers no port mapping or has not written its file). */
export const readLeases = (lab: string, node: string): Lease[] => leasesIn(portMappingFiles(lab, node).leases);

/** Make the NAT's `granted` maps hold what the lease file says now. */
export async function syncGrants(leasesFile: string, netns: string): Promise<void> {
	const result = await run(inNamespace(netns, ["nft", "-f", "-"]), { input: renderGrantSync(leasesIn(leasesFile), Math.floor(Date.now() / 1000)) });
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
