// How the namespace configuration is split between helper processes (src/apply/configure.ts): pure.
import test from "ava";
import { shareOut } from "../../src/apply/configure.ts";

test("shares have about equal cost, each item lands in exactly one, and order within a share follows cost", (t) => {
	// 100 NATs (cost 4) and 101 hosts (cost 1), interleaved as a plan lists them.
	const items = Array.from({ length: 201 }, (_, index) => ({ index, cost: index % 2 === 1 ? 4 : 1 }));
	const shares = shareOut(items, 2, (item) => item.cost);
	t.is(shares.length, 2);
	t.deepEqual(shares.flat().map((item) => item.index).sort((a, b) => a - b), items.map((item) => item.index));
	const costs = shares.map((share) => share.reduce((sum, item) => sum + item.cost, 0));
	t.true(Math.abs(costs[0] - costs[1]) <= 4, `costs ${costs.join(" / ")}`);
	t.true(shares.every((share) => share.filter((item) => item.cost === 4).length === 50), "the NATs are split evenly, not all in one share");
});

test("more workers than items: no empty shares; one worker: everything", (t) => {
	t.deepEqual(shareOut([1, 2], 8, () => 1).map((share) => share.length), [1, 1]);
	t.deepEqual(shareOut([1, 2, 3], 1, () => 1), [[1, 2, 3]]);
	t.deepEqual(shareOut([], 2, () => 1), []);
});
