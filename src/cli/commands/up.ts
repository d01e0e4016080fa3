// `testbed up FILE`: build, then a short summary of nodes, addresses and NATs.
import { upLab, type UpResult } from "../../apply/up.ts";
import { currentUser } from "../../apply/ledger.ts";
import { loadLab } from "../../load.ts";
import { short } from "../../resolve/nat-behaviour.ts";
import { table } from "../../report/table.ts";
import type { Io } from "../io.ts";

export async function upCommand(file: string, options: { json?: boolean; force?: boolean; keep?: boolean; name?: string }, io: Io, signal: AbortSignal): Promise<number> {
	const lab = loadLab(file, { name: options.name, warn: (warning) => io.err(warning) });
	// Progress only on a terminal, and not with --json: pipes and CI logs stay line-based and quiet.
	const live = !options.json && Boolean(process.stderr.isTTY) && lab.nodes.length >= 20;
	let shown = -1;
	const onProgress = live
		? (done: number, total: number) => {
				const percent = Math.floor((done * 100) / total);
				if (percent === shown) return;
				shown = percent;
				process.stderr.write(`\rbuilding lab "${lab.name}": ${done}/${total} namespaces configured${done === total ? "\n" : ""}`);
			}
		: undefined;
	let programFailure: Error | undefined;
	// Ctrl-C: say at once that it was heard; upLab stops at its next step and removes what it made.
	const interrupted = () => io.err(`interrupted: stopping and removing what \`up\` of lab "${lab.name}" created…`);
	signal.addEventListener("abort", interrupted, { once: true });
	let result: UpResult;
	try {
		result = await upLab(lab, { force: options.force, signal, onProgress, keep: options.keep, onProgramFailure: (error) => (programFailure = error) });
	} finally {
		signal.removeEventListener("abort", interrupted);
	}
	// --force is the override; still say whose lab it replaced when that was another user's.
	if (result.replaced && result.replaced.owner !== currentUser()) io.err(`replaced lab "${lab.name}" of user ${result.replaced.owner} (up since ${result.replaced.createdAt}): --force took it down`);
	if (options.json) io.json({ ...upSummary(result), ...(programFailure ? { programFailure: programFailure.message } : {}) });
	else io.out(renderUpSummary(result));
	if (programFailure) {
		io.err(`testbed: ${programFailure.message}\nthe lab stays up (--keep): testbed logs ${lab.name} · testbed ps ${lab.name} · testbed down ${lab.name}`);
		return 1;
	}
	return 0;
}

export function upSummary(result: UpResult) {
	return {
		lab: result.lab.name,
		file: result.lab.file,
		owner: result.ledger.owner,
		...(result.replaced ? { replaced: result.replaced } : {}),
		timings: result.timings,
		configured: result.profile,
		programs: result.programs,
		notes: result.plan.notes,
		nodes: result.lab.nodes.map((node) => ({
			name: node.name,
			kind: node.kind,
			netns: node.netns,
			addresses: node.interfaces.flatMap((iface) => iface.addresses.map((address) => ({ iface: iface.name, address: address.cidr }))),
			routes: node.routes.map((route) => ({ to: route.to, via: route.via, dev: route.dev })),
			nat: node.nat && { type: node.nat.behaviour.label, behaviour: node.nat.behaviour, outside: node.nat.outside, inside: node.nat.inside, publicAddress: node.nat.publicAddress },
		})),
	};
}

export function renderUpSummary(result: UpResult): string {
	const { lab } = result;
	const rows = [["node", "kind", "namespace", "addresses"]];
	for (const node of lab.nodes) {
		const addresses = node.interfaces.flatMap((iface) => iface.addresses.map((address) => `${iface.name} ${address.cidr}`)).join(", ");
		rows.push([node.name, node.nat ? `nat (${node.nat.behaviour.label})` : node.kind, node.netns, addresses || "-"]);
	}
	const nats = lab.nodes.filter((node) => node.nat);
	const lines = [`lab "${lab.name}" is up: ${lab.nodes.length} nodes, ${lab.links.length} links, in ${(result.timings.totalMs / 1000).toFixed(2)} s`, "", table(rows)];
	if (nats.length > 0) {
		lines.push("");
		for (const node of nats) {
			const b = node.nat!.behaviour;
			const what = b.oneToOne ? "static 1:1" : `${short(b.mapping)}M + ${short(b.filtering)}F, hairpin ${b.hairpin ? "on" : "off"}, ports ${b.portPreservation ? "kept" : "not kept"}, udp timeout ${b.udpTimeout}s`;
			lines.push(`nat ${node.name} (${b.label}: ${what}): ${node.nat!.inside.join(", ")} → ${node.nat!.outside}, public ${node.nat!.publicAddress}`);
		}
	}
	if (result.programs.length > 0) {
		lines.push("");
		for (const program of result.programs) lines.push(`program ${program.node}:${program.name} ${program.status}${program.pid ? ` (pid ${program.pid})` : ""}: ${program.text}`);
	}
	for (const note of result.plan.notes) lines.push(`note: ${note}`);
	lines.push("", `next: testbed exec ${lab.name} ${lab.nodes.find((node) => node.kind === "host")?.name ?? lab.nodes[0].name} -- ip address · testbed reach ${lab.name} · testbed down ${lab.name}`);
	return lines.join("\n");
}
