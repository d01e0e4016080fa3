// Where `testbed watch` reads a running lab: its ledger (the lab as events left it, read again for each
// sample, so a link taken down or a lab brought up again shows), the kernel (watch-sample.ts) and the
// lab's journal of punches and events (apply/journal.ts).
import type { Lab } from "../resolve/lab.ts";
import { LabStateError } from "../errors.ts";
import { JournalReader } from "../apply/journal.ts";
import { readLedger } from "../apply/ledger.ts";
import { journalPath } from "../apply/state-files.ts";
import { sampleLab } from "./watch-sample.ts";
import type { WatchSource } from "./watch.ts";

/** `draw`: the lab's picture as SVG (report/render-svg.ts, a stage below this one). */
export function labSource(name: string, first: Lab, draw: (lab: Lab) => Promise<string>): WatchSource {
	const journal = new JournalReader(journalPath(name));
	let lab = first;
	let drawn: { key: string; svg: string } | undefined;
	const current = (): Lab => {
		let ledger;
		try {
			ledger = readLedger(name);
		} catch {
			return lab; // written at this moment, or damaged: the last good one
		}
		if (!ledger) throw new LabStateError(`lab "${name}" is not up any more; the page goes on when it is up again`, "LAB_NOT_FOUND");
		return (lab = ledger.resolved);
	};
	return {
		lab: name,
		sample: (signal) => sampleLab(current(), signal),
		journal: () => journal.read(),
		async picture() {
			let now = lab;
			try {
				now = current();
			} catch {}
			const key = JSON.stringify(now);
			if (drawn?.key !== key) drawn = { key, svg: await draw(now) };
			return drawn.svg;
		},
	};
}
