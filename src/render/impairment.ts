// Replacing one interface's impairment on a running lab, as commands in its namespace: the same
// tables and qdiscs `up` builds (see renderImpairmentChange), replaced whatever was there before.
import type { ImpairDecl } from "../parse/topology.ts";
import type { HostFeatures } from "../plan/operations.ts";
import type { LinkEnd } from "../resolve/lab.ts";
import { renderImpairmentChange } from "./batch.ts";
import type { EventCommand } from "./event-actions.ts";
import { MissingFeatureError } from "../errors.ts";

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
	return commands;
}
