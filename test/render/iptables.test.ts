// The lecture's iptables lines: as the lecture types them, as iptables-restore reads them, and the
// file line iptables-restore names when it refuses one (both its nft and its legacy wording).
import test from "ava";
import { iptablesCommand, iptablesFailedLine, renderIptablesRestore, type IptablesOperation } from "../../src/render/iptables.ts";

const pos = { line: 3, col: 5 };
const rule = (table: "nat" | "filter", text: string): IptablesOperation => ({ op: "iptables", netns: "lab-host", table, rule: text, pos });
const masquerade = [rule("nat", "-A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE"), rule("nat", "-A POSTROUTING -s 10.1.2.0/24 -o enp6s0 -j MASQUERADE"), rule("filter", "-A FORWARD -j ACCEPT")];

test("each rule as the lecture types it; filter is iptables' default table", (t) => {
	t.deepEqual(masquerade.map(iptablesCommand), [
		"iptables -t nat -A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE",
		"iptables -t nat -A POSTROUTING -s 10.1.2.0/24 -o enp6s0 -j MASQUERADE",
		"iptables -A FORWARD -j ACCEPT",
	]);
});

test("one block per table for iptables-restore, each line with the rule it comes from", (t) => {
	const lines = renderIptablesRestore(masquerade);
	t.deepEqual(lines.map((line) => line.text), ["*nat", masquerade[0].rule, masquerade[1].rule, "COMMIT", "*filter", "-A FORWARD -j ACCEPT", "COMMIT"]);
	t.deepEqual(lines.map((line) => masquerade.indexOf(line.op)), [0, 0, 1, 1, 2, 2, 2]);
});

test("the refused line, as iptables-nft and iptables-legacy say it", (t) => {
	t.is(iptablesFailedLine("iptables-restore v1.8.9 (nf_tables): Chain 'MASQUERAD' does not exist\nError occurred at line: 3\nTry `iptables-restore -h' for more information."), 3);
	t.is(iptablesFailedLine("iptables-restore: line 2 failed"), 2);
	t.is(iptablesFailedLine("iptables-restore: unable to initialize table 'nat'"), undefined);
});
