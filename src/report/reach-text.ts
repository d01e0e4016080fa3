// The reachability matrix as a table: rows send, columns answer.
import type { ReachMatrix } from "../drivers/reach.ts";

export function renderReachText(matrix: ReachMatrix, color = false): string {
	const names = matrix.nodes;
	const width = Math.max(9, ...names.map((name) => name.length));
	const cell = (from: string, to: string) => {
		if (from === to) return "·";
		const found = matrix.cells.find((entry) => entry.from === from && entry.to === to);
		const ok = found?.ok;
		const mark = found && found.addresses.length === 0 ? "?" : ok ? "✓" : "✗";
		return color ? (ok ? `\x1b[32m${mark}\x1b[0m` : `\x1b[31m${mark}\x1b[0m`) : mark;
	};
	const header = `${"from \\ to".padEnd(width)}  ${names.map((name) => name.padEnd(width)).join(" ")}`;
	const rows = names.map((from) => `${from.padEnd(width)}  ${names.map((to) => cell(from, to) + " ".repeat(width - 1)).join(" ")}`);
	const reached = matrix.cells.filter((entry) => entry.ok).length;
	const unknown = matrix.cells.some((entry) => entry.addresses.length === 0) ? ["? = not measured: every address of that node is also held by another node, and ICMP replies do not say who answered", ""] : [];
	return [`${matrix.proto.toUpperCase()}${matrix.family === 6 ? " over IPv6" : ""} reachability in lab "${matrix.lab}" (✓ = the row's node opened a flow to the column's node and got an answer)`, "", header, ...rows, "", `${reached} of ${matrix.cells.length} ordered pairs reach each other`, "", ...unknown].join("\n");
}
