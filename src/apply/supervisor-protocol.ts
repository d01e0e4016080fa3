// What a lab's supervisor and its clients say to each other: the programs to start (specs), their
// states, the requests and replies on its Unix socket, and where the socket and the state file are.
import { statSync } from "node:fs";
import { join } from "node:path";
import type { LabReady } from "../resolve/commands.ts";
import { stateDir } from "./state-files.ts";

/** A program to start, as the client has made it: argv enters the node, env is complete. */
export interface ProgramSpec {
	node: string;
	name: string;
	argv: string[];
	env: Record<string, string>;
	/** Inside the node: where relative `ready: { file }` paths start. */
	cwd: string;
	/** The command as written, for people. */
	text: string;
	ready?: LabReady;
	after: string[];
	/** Started by `exec --detach` rather than the topology. */
	detached?: boolean;
	/** The node's memory limit: the file that counts its OOM kills, and the limit for messages. */
	oom?: { counter: string; limit: string };
	/** A port-mapping daemon: its lease file, mirrored into the NAT's maps (in this namespace) whenever it changes. */
	grants?: { leases: string; netns: string };
}

export type ProgramStatus = "waiting" | "starting" | "running" | "ready" | "exited" | "stopped" | "failed";

export interface ProgramState {
	node: string;
	name: string;
	text: string;
	status: ProgramStatus;
	pid?: number;
	startedAt?: string;
	readyAt?: string;
	endedAt?: string;
	exitCode?: number | null;
	signal?: string | null;
	/** Why it failed: exited before it was ready, not ready in time, could not start. */
	error?: string;
	/** Killed by the kernel's OOM killer (its node's memory limit): the reason, for ps and logs. */
	oomKilled?: string;
	log: string;
	detached?: boolean;
}

export type SupervisorRequest = { cmd: "start"; programs: ProgramSpec[] } | { cmd: "stop"; node: string; name?: string } | { cmd: "list" } | { cmd: "shutdown" };

export type SupervisorReply =
	| { ok: true; programs: ProgramState[] }
	| { ok: false; error: string; failed?: ProgramState & { tail: string[] }; programs: ProgramState[] };

/** SIGTERM, then SIGKILL after this long. */
export const stopGraceMs = 3000;

export const supervisorSocket = (lab: string) => join(stateDir(lab), "supervisor.sock");
export const programsFile = (lab: string) => join(stateDir(lab), "programs.json");

/** Whether a supervisor's socket file is there (it may still be from a dead one). */
export function socketExists(lab: string): boolean {
	try {
		return statSync(supervisorSocket(lab)).isSocket();
	} catch {
		return false;
	}
}
