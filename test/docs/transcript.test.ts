// The tutorial's checker: reading console blocks, masking what varies, and `…` — it must be able to fail.
import test from "ava";
import { compareOutput, maskLine, readTranscript } from "../helpers/transcript.ts";

test("console blocks become steps: the command (continuations joined), its output, its line", (t) => {
	const markdown = ["# x", "```console", "$ sudo testbed up a.yml \\", "    --name b", "lab up", "", "$ echo hi", "hi", "```", "```sh", "$ not a step", "```"].join("\n");
	t.deepEqual(readTranscript(markdown), [
		{ command: "sudo testbed up a.yml --name b", expected: ["lab up"], line: 3 },
		{ command: "echo hi", expected: ["hi"], line: 7 },
	]);
});

test("masking keeps addresses and words, and hides times, ports, counters and MACs", (t) => {
	t.is(maskLine("1    direct   39 ms     43   1.19 ms  p-full → 198.51.100.10:40702"), "# direct # ms # # ms p-full → 198.51.100.10:#");
	t.is(maskLine("    7   420 MASQUERADE  all  --  *      enp6s0  10.1.1.0/24   0.0.0.0/0"), " # # MASQUERADE all -- * enp6s0 10.1.1.0/24 0.0.0.0/0");
	t.is(maskLine("link/ether 3a:1f:00:aa:bb:cc brd ff:ff:ff:ff:ff:ff"), "link/ether ##:## brd ##:##");
	t.is(maskLine("eth0@if12 lan1 p-sym enp6s0 1,024 ports"), "eth0@if# lan1 p-sym enp6s0 # ports");
	t.is(maskLine("2 received, 0% packet loss, time 202ms; left 29s"), "# received, #% packet loss, time #ms; left #s");
	t.is(maskLine("nat host in lab \"ada\" — 2026-11-30T11:47:52.922Z"), "nat host in lab \"ada\" — #time#");
});

test("output agrees when only masked parts differ; `…` stands for any lines", (t) => {
	t.is(compareOutput(["a 10 ms", "…", "z"], ["a 12 ms", "b", "c", "z"]), undefined);
	t.is(compareOutput(["a", "…"], ["a"]), undefined);
	t.is(compareOutput(["…", "z"], ["z"]), undefined);
	t.is(compareOutput(["a", "", ""], ["a", ""]), undefined, "trailing blank lines printed or not");
	t.is(compareOutput(["verdict: dropped at nat symmetric … fell back to the relay."], ["verdict: dropped at nat symmetric (APDF): came from 1.2.3.4:5, 1.2.3.4:6. The pair fell back to the relay."]), undefined);
	t.regex(compareOutput(["verdict: dropped at nat symmetric … relay."], ["verdict: dropped at nat carrier (APDF). relay."])!, /differs/, "the text around an inline … still counts");
});

test("a different word, a different address, a missing or an extra line is a difference", (t) => {
	t.regex(compareOutput(["1 direct 39 ms"], ["1 relayed 39 ms"])!, /line 1 of the output differs/);
	t.regex(compareOutput(["to 10.1.1.2"], ["to 10.1.1.3"])!, /line 1 of the output differs/);
	t.regex(compareOutput(["a", "b"], ["a"])!, /ended before the document's line "b"/);
	t.regex(compareOutput(["a"], ["a", "b"])!, /line 2 of the output differs/);
	t.regex(compareOutput(["a", "…", "z"], ["a", "b"])!, /ended before the document's line "z"/);
});
