// `testbed watch LAB`: placeholder until the live page lands.
import { UsageError } from "../../errors.ts";
import type { Io } from "../io.ts";

export async function watchCommand(lab: string, _options: { port?: string; interval?: string }, _io: Io, _signal: AbortSignal): Promise<number> {
	throw new UsageError(`watch is not built yet (lab "${lab}")`);
}
