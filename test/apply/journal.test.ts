// A lab's journal (what `testbed watch` tails): appended only while the lab is up, read line by line as
// it grows, a half-written line kept for later, a rotated file read from its start. No root needed.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";

const dir = mkdtempSync(join(tmpdir(), "testbed-journal-"));
process.env.TESTBED_RUN_DIR = dir;
const { appendJournal, JournalReader } = await import("../../src/apply/journal.ts");
const { journalPath, stateDir } = await import("../../src/apply/state-files.ts");

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("a lab that is not up gets no journal, and the caller no error", (t) => {
	t.notThrows(() => appendJournal("watch-down", { kind: "punch-started", a: "alice", b: "bob", run: 1 }));
	t.false(existsSync(stateDir("watch-down")), "the state dir is not made");
	t.deepEqual(new JournalReader(journalPath("watch-down")).read(), []);
	t.notThrows(() => appendJournal("Not A Lab", { kind: "event", event: "restart", label: "restart x" }));
});

test("lines are read as they are appended, each once; half a line waits for its end; junk is skipped", (t) => {
	mkdirSync(stateDir("watch-up"), { recursive: true });
	const reader = new JournalReader(journalPath("watch-up"));
	t.deepEqual(reader.read(), []);
	const before = Date.now();
	appendJournal("watch-up", { kind: "punch-started", a: "alice", b: "bob", run: 1 });
	appendJournal("watch-up", { kind: "punch-ended", a: "alice", b: "bob", run: 1, outcome: "direct", timeToConnectMs: 3.5, rttMs: 0.2 });
	const read = reader.read();
	t.deepEqual(
		read.map(({ at: _at, ...entry }) => entry),
		[
			{ kind: "punch-started", a: "alice", b: "bob", run: 1 },
			{ kind: "punch-ended", a: "alice", b: "bob", run: 1, outcome: "direct", timeToConnectMs: 3.5, rttMs: 0.2 },
		],
	);
	t.true(read.every((entry) => entry.at >= before && entry.at <= Date.now()));
	t.deepEqual(reader.read(), [], "each line once");
	appendFileSync(journalPath("watch-up"), 'not json\n{"kind":"nonsense","at":1}\n{"kind":"event","at":5,"event":"nat-reboot",');
	t.deepEqual(reader.read(), []);
	appendFileSync(journalPath("watch-up"), '"label":"nat-reboot home1"}\n');
	t.deepEqual(reader.read(), [{ kind: "event", at: 5, event: "nat-reboot", label: "nat-reboot home1" }]);
});

test("past 1 MiB the journal starts again, and a reader follows to the new file", (t) => {
	mkdirSync(stateDir("watch-big"), { recursive: true });
	const path = journalPath("watch-big");
	const reader = new JournalReader(path);
	writeFileSync(path, `${JSON.stringify({ kind: "event", at: 1, event: "restart", label: "x".repeat(1024 * 1024) })}\n`);
	t.is(reader.read().length, 1);
	appendJournal("watch-big", { kind: "punch-started", a: "alice", b: "bob", run: 7 });
	t.true(existsSync(join(stateDir("watch-big"), "journal.1.jsonl")));
	t.is(readFileSync(path, "utf8").split("\n").length, 2, "one line in the new file");
	t.deepEqual(
		reader.read().map((entry) => entry.kind === "punch-started" && entry.run),
		[7],
	);
});
