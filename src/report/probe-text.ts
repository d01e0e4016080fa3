// The probe report as a table: per NAT, declared vs measured, and a verdict.
import type { NatVerdict, ProbeReport } from "../drivers/probe.ts";
import { table } from "./table.ts";

const short: Record<string, string> = { "endpoint-independent": "EI", "address-dependent": "AD", "address-and-port-dependent": "APD", unknown: "?" };
const onOff = (value: boolean | null | undefined) => (value === null || value === undefined ? "?" : value ? "on" : "off");

function cell(expected: string, measured: string, compared = true): string {
	if (!compared) return `${measured} (not compared)`;
	return expected === measured ? `${measured} ✓` : `${expected}≠${measured} ✗`;
}

function row(verdict: NatVerdict, timeouts: boolean): string[] {
	const { expected, measured } = verdict;
	const base = [verdict.nat, verdict.declared, verdict.from ?? "-"];
	if (!measured) return [...base, "-", "-", "-", "-", ...(timeouts ? ["-"] : []), verdict.note ? "skipped" : "?"];
	if (measured.error) return [...base, "-", "-", "-", "-", ...(timeouts ? ["-"] : []), `error ✗`];
	const lifetime = measured.lifetime ? `${measured.lifetime.aliveS}–${measured.lifetime.expiredS ?? "∞"}s (${expected.udpTimeoutS}s)` : "-";
	return [
		...base,
		cell(short[expected.mapping], short[measured.mapping] ?? measured.mapping),
		cell(short[expected.filtering], short[measured.filtering] ?? measured.filtering),
		cell(onOff(expected.hairpin), onOff(measured.hairpin), expected.hairpin !== null),
		cell(onOff(expected.portPreservation), onOff(measured.portPreservation)),
		...(timeouts ? [lifetime] : []),
		verdict.ok ? "ok" : "MISMATCH",
	];
}

export function renderProbeText(report: ProbeReport): string {
	const header = ["nat", "declared", "probed from", "mapping", "filtering", "hairpin", "port pres.", ...(report.timeouts ? ["lifetime (declared)"] : []), "verdict"];
	const lines = [
		`NAT behaviour in lab "${report.lab}": declared vs measured (RFC 5780 discovery against ${report.server.temporary ? "a temporary" : "the"} STUN server on ${report.server.node}, ${report.server.addresses.join(" / ")})`,
		"",
		table([header, ...report.nats.map((verdict) => row(verdict, report.timeouts))]),
		"",
	];
	for (const verdict of report.nats) {
		if (verdict.note) lines.push(`${verdict.nat}: ${verdict.note}`);
		for (const mismatch of verdict.mismatches) lines.push(`${verdict.nat}: ${mismatch}`);
	}
	const measured = report.nats.filter((verdict) => verdict.measured);
	const good = measured.filter((verdict) => verdict.ok).length;
	const unmeasured = report.nats.length - measured.length;
	lines.push(`${good} of ${measured.length} measured NATs behave as declared${unmeasured ? `; ${unmeasured} not measured (nothing behind them)` : ""} (${(report.durationMs / 1000).toFixed(1)} s)`);
	return `${lines.join("\n")}\n`;
}
