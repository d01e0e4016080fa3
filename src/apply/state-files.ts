// Where testbed keeps its state on the host: root-only files under /run (gone at reboot, like the labs).
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { labNamePattern } from "../vocabulary/names.ts";

/** /run/testbed, or $TESTBED_RUN_DIR. */
export function runDir(): string {
	return process.env.TESTBED_RUN_DIR ?? "/run/testbed";
}

/** Only valid lab names ever become paths: a name from the command line or a file cannot escape runDir(). */
function checked(lab: string): string {
	if (!labNamePattern.test(lab)) throw new UsageError(`"${lab}" is not a lab name (1-24 characters: a-z, 0-9 and -)`);
	return lab;
}

export const ledgerPath = (lab: string) => join(runDir(), `${checked(lab)}.json`);
export const lockPath = (lab: string) => join(runDir(), `${checked(lab)}.lock`);
/** Batch and rule files of a lab while it is up. */
export const stateDir = (lab: string) => join(runDir(), checked(lab));
/** What happened to a lab while it is up (punches, events), one JSON line each: `testbed watch` tails it. */
export const journalPath = (lab: string) => join(stateDir(lab), "journal.jsonl");
/** The host-feature cache: readable by everyone (plan without root uses it), so it lives beside the root-only run dir. */
export const featuresPath = () => `${runDir()}.features.json`;
export const netnsPath = (netns: string) => join("/run/netns", netns);
