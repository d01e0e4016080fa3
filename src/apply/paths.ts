// Where testbed keeps its state on the host: root-only files under /run (gone at reboot, like the labs).
import { join } from "node:path";

/** /run/testbed, or $TESTBED_RUN_DIR. */
export function runDir(): string {
	return process.env.TESTBED_RUN_DIR ?? "/run/testbed";
}

export const ledgerPath = (lab: string) => join(runDir(), `${lab}.json`);
export const lockPath = (lab: string) => join(runDir(), `${lab}.lock`);
/** Batch and rule files of a lab while it is up. */
export const stateDir = (lab: string) => join(runDir(), lab);
export const netnsPath = (netns: string) => join("/run/netns", netns);
