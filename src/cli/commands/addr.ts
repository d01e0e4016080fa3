// `testbed addr LAB NODE[.IFACE|.public]`: one address, for scripts (`$(testbed addr lab stun)`).
import { requireLedger } from "../../apply/ledger.ts";
import { NodeNotFoundError } from "../../errors.ts";
import { substitute } from "../../resolve/commands.ts";
import type { Io } from "../io.ts";

export async function addrCommand(labName: string, target: string, options: { json?: boolean }, io: Io): Promise<number> {
	const lab = requireLedger(labName).resolved;
	let problem: { message: string; fix?: string } | undefined;
	const address = substitute(lab, { value: `\${${target}}`, pos: { line: 1, col: 1 } }, (_code, _pos, message, fix) => (problem ??= { message, fix }));
	if (problem) throw new NodeNotFoundError(`${problem.message.replace(/^\$\{[^}]*\} /, "")}${problem.fix ? ` (${problem.fix.replaceAll("${", "").replaceAll("}", "")})` : ""}`);
	if (options.json) io.json({ lab: lab.name, target, address });
	else io.out(address);
	return 0;
}
