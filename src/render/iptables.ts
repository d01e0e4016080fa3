// The lecture's Linux NAT as iptables text: `nat: { type: masquerade }` is built with the rules the
// lecture types (`iptables -t nat -A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE`,
// `iptables -A FORWARD -j ACCEPT`), loaded by one `iptables-restore` per namespace. Pure.
import type { Operation } from "../plan/operations.ts";

export type IptablesOperation = Extract<Operation, { op: "iptables" }>;

/** A rule as the lecture types it (`iptables -A FORWARD -j ACCEPT`; filter is iptables' default table). */
export function iptablesCommand(op: IptablesOperation): string {
	return `iptables ${op.table === "filter" ? "" : `-t ${op.table} `}${op.rule}`;
}

/**
 * What `iptables-restore` reads for a namespace's rules: one block per table (in the order the
 * tables are first used), each ending in COMMIT; each line with the operation it comes from.
 */
export function renderIptablesRestore(ops: IptablesOperation[]): { text: string; op: IptablesOperation }[] {
	const lines: { text: string; op: IptablesOperation }[] = [];
	const tables = [...new Set(ops.map((op) => op.table))];
	for (const table of tables) {
		const rules = ops.filter((op) => op.table === table);
		lines.push({ text: `*${table}`, op: rules[0] }, ...rules.map((op) => ({ text: op.rule, op })), { text: "COMMIT", op: rules.at(-1)! });
	}
	return lines;
}

/** The file line `iptables-restore` names when it refuses one (iptables-nft and legacy word it differently). */
export function iptablesFailedLine(stderr: string): number | undefined {
	const line = /Error occurred at line: (\d+)/.exec(stderr)?.[1] ?? /iptables-restore: line (\d+) failed/.exec(stderr)?.[1];
	return line === undefined ? undefined : Number(line);
}
