// The probe report as a table: per NAT, declared vs measured, and a verdict.
import type { NatVerdict, ProbeReport } from "../drivers/probe.ts";
import { table } from "./table.ts";

const short: Record<string, string> = { "endpoint-independent": "EI", "address-dependent": "AD", "address-and-port-dependent": "APD", unknown: "?" };
const onOff = (value: boolean | null | undefined) => (value === null || value === undefined ? "?" : value ? "on" : "off");

function cell(expected: string, measured: string, compared = true): string {
	if (!compared) return `${measured} (not compared)`;
	return expected === measured ? `${measured} ✓` : `${expected}≠${measured} ✗`;
}

/** The port-mapping protocols that answered (and whether they would grant), against the declared ones. */
function mappingCell(verdict: NatVerdict): string {
	const pm = verdict.portMapping;
	if (!pm) return "-";
	const list = (protocols: string[]) => [...protocols].sort().join(", ") || "none";
	const ok = !verdict.mismatches.some((mismatch) => mismatch.startsWith("port mapping"));
	const refusing = pm.refusing.length > 0 ? ` (${pm.refusing.sort().join(", ")}: cannot map)` : "";
	return ok ? `${list(pm.answered)}${refusing} ✓` : `${list(pm.declared)}≠${list(pm.answered)}${refusing} ✗`;
}

function row(verdict: NatVerdict, timeouts: boolean, tcp: boolean, mapping: boolean): string[] {
	const { expected, measured } = verdict;
	const base = [verdict.nat, verdict.declared, verdict.from ?? "-"];
	const extra = (timeouts ? 1 : 0) + (tcp ? 1 : 0) + (mapping ? 1 : 0);
	if (!measured) return [...base, "-", "-", "-", "-", ...Array(extra).fill("-"), verdict.note ? "skipped" : "?"];
	if (measured.error) return [...base, "-", "-", "-", "-", ...Array(extra).fill("-"), `error ✗`];
	const lifetime = measured.lifetime ? `${measured.lifetime.aliveS}–${measured.lifetime.expiredS ?? "∞"}s (${expected.udpTimeoutS}s)` : "-";
	return [
		...base,
		cell(short[expected.mapping], short[measured.mapping] ?? measured.mapping),
		cell(short[expected.filtering], short[measured.filtering] ?? measured.filtering),
		cell(onOff(expected.hairpin), onOff(measured.hairpin), expected.hairpin !== null),
		cell(onOff(expected.portPreservation), onOff(measured.portPreservation)),
		...(tcp ? [measured.unsolicitedTcp ? cell(expected.unsolicitedTcp ?? "", measured.unsolicitedTcp, expected.unsolicitedTcp !== null) : "-"] : []),
		...(timeouts ? [lifetime] : []),
		...(mapping ? [mappingCell(verdict)] : []),
		verdict.ok ? "ok" : "MISMATCH",
	];
}

export function renderProbeText(report: ProbeReport): string {
	const tcp = report.proto === "tcp";
	// The port-mapping column where some NAT declares port mapping or answers it.
	const mapping = report.nats.some((verdict) => verdict.portMapping && (verdict.portMapping.declared.length > 0 || verdict.portMapping.answered.length > 0));
	const header = ["nat", "declared", "probed from", "mapping", "filtering", "hairpin", "port pres.", ...(tcp ? ["unsolicited SYN"] : []), ...(report.timeouts ? ["lifetime (declared)"] : []), ...(mapping ? ["port mapping"] : []), "verdict"];
	const lines = [
		`${report.family === 6 ? "IPv6 firewall" : "NAT"} behaviour in lab "${report.lab}"${tcp ? " over TCP" : ""}${report.family === 6 ? " (routed, unless a gateway declares NPTv6 or NAT66)" : ""}: declared vs measured (RFC 5780 discovery${tcp ? " with testbed's connect-back filtering test" : ""} against ${report.server.temporary ? "a temporary" : "the"} STUN server on ${report.server.node}, ${report.server.addresses.join(" / ")})`,
		"",
		table([header, ...report.nats.map((verdict) => row(verdict, report.timeouts, tcp, mapping))]),
		"",
	];
	for (const verdict of report.nats) {
		if (verdict.note) lines.push(`${verdict.nat}: ${verdict.note}`);
		for (const mismatch of verdict.mismatches) lines.push(`${verdict.nat}: ${mismatch}`);
	}
	const measured = report.nats.filter((verdict) => verdict.measured);
	const good = measured.filter((verdict) => verdict.ok).length;
	const unmeasured = report.nats.length - measured.length;
	lines.push(`${good} of ${measured.length} measured ${report.family === 6 ? "firewalls" : "NATs"} behave as declared${unmeasured ? `; ${unmeasured} not measured (nothing behind them)` : ""} (${(report.durationMs / 1000).toFixed(1)} s)`);
	return `${lines.join("\n")}\n`;
}
