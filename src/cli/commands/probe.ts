// `testbed probe LAB [--proto udp|tcp] [--timeouts] [--nat NAME]`: exit 1 when any NAT does not behave as declared.
import { probeLab } from "../../drivers/probe.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { renderProbeText } from "../../report/probe-text.ts";
import { addressFamilyOf } from "../../vocabulary/family.ts";
import type { Io } from "../io.ts";

export async function probeCommand(labName: string, options: { json?: boolean; timeouts?: boolean; nat?: string; proto?: string; family?: string }, io: Io): Promise<number> {
	const family = options.family === undefined ? 4 : addressFamilyOf(options.family);
	if (!family) throw new UsageError(`--family takes 4 or 6, not "${options.family}"`);
	if (family === 6 && options.timeouts) throw new UsageError("--family 6 probes the firewalls' filtering: it does not go with --timeouts");
	const proto = options.proto ?? "udp";
	if (proto !== "udp" && proto !== "tcp") throw new UsageError(`--proto takes udp or tcp, not "${options.proto}"`);
	if (proto === "tcp" && options.timeouts) throw new UsageError("--timeouts measures UDP mappings' lifetimes; TCP's follows tcp-timeout (hours) and is not probed");
	requireRoot("probe");
	const ledger = requireLedger(labName);
	if (!options.json && process.stderr.isTTY) io.err(`probing ${ledger.resolved.nodes.filter((node) => node.nat).length} NATs${options.timeouts ? " (with --timeouts this takes up to 1.5 × the longest udp-timeout)" : ""}…`);
	const report = await probeLab(ledger.resolved, { timeouts: options.timeouts, nats: options.nat ? options.nat.split(",") : undefined, proto, family });
	if (options.json) io.json(report);
	else io.out(renderProbeText(report));
	return report.ok ? ExitCode.ok : ExitCode.failure;
}
