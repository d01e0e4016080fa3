// Errors carry a stable `code` and the facts; only the CLI turns them into text and exit codes.
import { formatProblem, type Problem } from "./vocabulary/problems.ts";

/** Exit codes of the contract: 0 ok, 1 failure, 2 usage, 3 invalid topology, 4 host lacks a feature. */
export const ExitCode = { ok: 0, failure: 1, usage: 2, invalidTopology: 3, missingFeature: 4 } as const;

/** Every code an error testbed throws on purpose can carry (a closed set, like the problem codes). */
export const errorCodes = [
	"USAGE",
	"INVALID_TOPOLOGY",
	"MISSING_FEATURE",
	"APPLY_FAILED",
	"BAD_EVENT",
	"EVENT_FAILED",
	"ROLLBACK_FAILED",
	"TEARDOWN_FAILED",
	"DOWN_INCOMPLETE",
	"LAB_EXISTS",
	"LAB_NOT_FOUND",
	"LAB_BUSY",
	"LAB_OWNED",
	"LEDGER_DAMAGED",
	"NAMESPACE_EXISTS",
	"NODE_NOT_FOUND",
	"FILE_EXISTS",
	"NO_STUN_HOST",
	"NO_RENDEZVOUS_HOST",
	"NO_IPV6",
	"CAPTURE_FAILED",
	"BAD_COMMAND",
	"PROGRAM_FAILED",
	"PROGRAM_NOT_FOUND",
	"SUPERVISOR_FAILED",
	"GRAPH_RENDER",
	"NOTHING_TO_TEST",
	"PORT_IN_USE",
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** Base class: every error testbed throws on purpose. */
export class TestbedError extends Error {
	readonly exitCode: number = ExitCode.failure;
	constructor(message: string, readonly code: ErrorCode, options?: { cause?: unknown }) {
		super(message, options);
		this.name = new.target.name;
	}
}

/** The topology file has problems; all of them are listed. */
export class TopologyError extends TestbedError {
	override readonly exitCode = ExitCode.invalidTopology;
	constructor(
		readonly file: string,
		readonly problems: Problem[],
		readonly sourceText = "",
	) {
		super(problems.map((problem) => formatProblem(file, sourceText, problem)).join("\n"), "INVALID_TOPOLOGY");
	}
}

/** Wrong command-line usage. */
export class UsageError extends TestbedError {
	override readonly exitCode = ExitCode.usage;
	constructor(message: string) {
		super(message, "USAGE");
	}
}

/** An event asked of a running lab that cannot be done as asked (unknown kind, target, setting). */
export class EventError extends TestbedError {
	override readonly exitCode = ExitCode.usage;
	constructor(message: string) {
		super(message, "BAD_EVENT");
	}
}

/** The host lacks something the lab needs (root, a tool, a kernel feature). */
export class MissingFeatureError extends TestbedError {
	override readonly exitCode = ExitCode.missingFeature;
	constructor(message: string, readonly feature: string, readonly fix?: string) {
		super(message, "MISSING_FEATURE");
	}
}

/** A kernel operation failed while building a lab; the lab was rolled back. */
export class ApplyError extends TestbedError {
	constructor(
		message: string,
		readonly facts: { command: string; namespace?: string; stderr: string; source?: string; rolledBack: boolean },
	) {
		super(message, "APPLY_FAILED");
	}
}

/** Lab state problems: exists already, not found, locked, another user's, ledger damaged. */
export class LabStateError extends TestbedError {}

/** A node (or a node's interface) the running lab does not have, named on the command line: a usage mistake (exit 2), with the names there are. */
export class NodeNotFoundError extends LabStateError {
	override readonly exitCode = ExitCode.usage;
	constructor(message: string) {
		super(message, "NODE_NOT_FOUND");
	}
}
