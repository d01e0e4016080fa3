// `testbed supervise LAB`: the supervisor of a lab's programs (testbed starts it; not for people).
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { supervise } from "../../apply/supervisor.ts";

export async function superviseCommand(lab: string): Promise<number> {
	requireRoot("supervise");
	requireLedger(lab);
	return supervise(lab);
}
