// `testbed nat-table LAB NODE [--watch] [--json]`: a node's live translations (a NAT's mappings, or a
// MASQUERADE students added by hand to a router), for watching a punch happen.
import { setTimeout as sleep } from "node:timers/promises";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { readNatTable, type NatFlow, type NatTable } from "../../inspect/nat-table.ts";
import { requireNode } from "../../resolve/lab.ts";
import { table } from "../../report/table.ts";
import type { Io } from "../io.ts";

export function renderNatTable(nat: NatTable): string {
	const when = nat.at ? ` — ${nat.at}` : "";
	if (!nat.declared && nat.flows.length === 0) return `no translations on ${nat.nat} in lab "${nat.lab}": conntrack shows no flow whose address or port ${nat.nat} changed${when}\n`;
	const lines = [nat.declared ? `nat ${nat.nat} (${nat.behaviour}) in lab "${nat.lab}", public ${nat.publicAddress}${when}` : `translations on ${nat.nat} (${nat.behaviour}) in lab "${nat.lab}", public ${nat.publicAddress}${when}`, ""];
	if (nat.flows.length === 0) lines.push("no flows");
	else
		lines.push(
			table([
				["proto", "inside", "", "public", "↔", "remote", "started by", "state", "left"],
				...nat.flows.map((flow) => [flow.proto, flow.inside, "→", flow.public, "↔", flow.remote, flow.direction === "outbound" ? "inside" : "outside", flow.state, `${flow.secondsLeft}s`]),
			]),
		);
	if (nat.firewall6) {
		// A translating gateway (NPTv6, NAT66) also shows what each inside endpoint is seen as.
		const translated = nat.firewall6.translation !== undefined;
		const row = (flow: NatFlow) => [flow.proto, flow.inside, ...(translated ? ["→", flow.public] : []), "↔", flow.remote, flow.direction === "outbound" ? "inside" : "outside", flow.state, `${flow.secondsLeft}s`];
		const header = ["proto", "inside", ...(translated ? ["", "public"] : []), "↔", "remote", "started by", "state", "left"];
		lines.push("", `IPv6 firewall (${nat.firewall6.filtering} filtering; ${nat.firewall6.translation ?? "routed, nothing translated"}):`, nat.firewall6.flows.length === 0 ? "no flows" : table([header, ...nat.firewall6.flows.map(row)]));
	}
	if (nat.portMapping) {
		const { protocols, granted } = nat.portMapping;
		lines.push("", `port mappings granted (${protocols.join(", ")}, by miniupnpd):`);
		lines.push(granted.length === 0 ? "none" : table([["via", "proto", "public", "", "inside", "lease left", "description"], ...granted.map((mapping) => [mapping.via, mapping.proto, mapping.public, "→", mapping.inside, mapping.secondsLeft === null ? "no end" : `${mapping.secondsLeft}s`, mapping.description])]));
	}
	if (nat.mappings.length > 0) lines.push("", "mappings (testbed's map: protocol, public port → inside endpoint):", table([["proto", "public", "inside", "left"], ...nat.mappings.map((mapping) => [mapping.proto, `${nat.publicAddress}:${mapping.publicPort}`, mapping.inside, `${mapping.secondsLeft}s`])]));
	return `${lines.join("\n")}\n`;
}

export async function natTableCommand(labName: string, node: string, options: { json?: boolean; watch?: boolean; interval?: string }, io: Io, signal: AbortSignal): Promise<number> {
	requireRoot("nat-table");
	const lab = requireLedger(labName).resolved;
	requireNode(lab, node);
	if (!options.watch) {
		const nat = await readNatTable(lab, node);
		if (options.json) io.json(nat);
		else io.out(renderNatTable(nat));
		return 0;
	}
	const interval = Number(options.interval ?? 500);
	const tty = Boolean(process.stdout.isTTY) && !options.json;
	let last = "";
	while (!signal.aborted) {
		const nat = await readNatTable(lab, node);
		const shown = options.json ? JSON.stringify({ ...nat, at: undefined }) : renderNatTable({ ...nat, at: "" });
		if (shown !== last) {
			// On a terminal, redraw in place; otherwise print each change once, line-based.
			if (options.json) process.stdout.write(`${JSON.stringify(nat)}\n`);
			else io.out(tty ? `\x1b[H\x1b[2J${renderNatTable(nat)}` : renderNatTable(nat));
			last = shown;
		}
		await sleep(interval, undefined, { signal }).catch(() => undefined);
	}
	return 0;
}
