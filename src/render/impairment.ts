// Replacing one interface's impairment on a running lab, as commands in its namespace: the same
// tables and qdiscs `up` builds (see renderImpairmentChange), replaced whatever was there before.
import type { ImpairDecl } from "../parse/topology.ts";
import type { HostFeatures } from "../plan/operations.ts";
import type { LinkEnd } from "../resolve/lab.ts";
import { renderImpairmentChange } from "./batch.ts";
import type { EventCommand } from "./event-actions.ts";
import { MissingFeatureError } from "../errors.ts";
import { lossyNeighbours } from "../plan/plan.ts";

export function renderImpairmentCommands(end: LinkEnd, impair: ImpairDecl | undefined, features: HostFeatures): EventCommand[] {
	let change: ReturnType<typeof renderImpairmentChange>;
	try {
		change = renderImpairmentChange(end.iface, impair, features);
	} catch (error) {
		// Name the interface the way the user does: node:iface.
		if (error instanceof MissingFeatureError) throw new MissingFeatureError(error.message.replace(` on ${end.iface}`, ` on ${end.node}:${end.iface}`), error.feature, error.fix);
		throw error;
	}
	const commands: EventCommand[] = [];
	if (change.nft) commands.push({ netns: end.netns, argv: ["nft", "-f", "-"], input: change.nft });
	if (change.tc) commands.push({ netns: end.netns, argv: ["tc", "-batch", "-"], input: change.tc });
	// Loss added live: the interface probes its neighbours as `up` sets lossy ones (IPv6's where it has IPv6: -e skips what is absent).
	if (impair?.loss) commands.push({ netns: end.netns, argv: ["sysctl", "-q", "-e", "-w", ...lossyNeighbours(end.iface, ["ipv4", "ipv6"]).map(([key, value]) => `${key}=${value}`)] });
	return commands;
}
