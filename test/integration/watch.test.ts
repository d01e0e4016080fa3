// `testbed watch` as a class would use it: the page open in a real browser (Debian's chromium, headless,
// driven by puppeteer-core), a punch typed in another terminal, and the punch and its mappings on the
// page within 2 s; then Ctrl-C: exit 0, the port closed, no process of it left in the lab. And the
// mistakes: an unknown lab, a bad --port or --interval, a port in use.
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { execa } from "execa";
import puppeteer from "puppeteer-core";
import { loadLabText } from "../../src/index.ts";
import { netnsInode, pidsInNamespaces } from "../../src/apply/namespaces.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) => existsSync(path));
const lab = loadLabText(readFileSync("topologies/two-nats.yml", "utf8"), "topologies/two-nats.yml", { name: "watch-two-nats" });

/** Whether something answers HTTP at `url`. */
const answers = (url: string) =>
	new Promise<boolean>((resolve) => {
		const req = request(url, { agent: false }, (res) => {
			res.resume();
			resolve(true);
		});
		req.on("error", () => resolve(false));
		req.end();
	});

rootTest("watch: the page in headless Chromium shows a punch and its mappings within 2 s; Ctrl-C ends it with exit 0 and nothing left; bad input said clearly", async (t) => {
	await inLab(t, lab, async () => {
		const badPort = await testbed(["watch", "watch-two-nats", "--port", "http"]);
		t.is(badPort.exitCode, 2);
		t.regex(badPort.stderr, /--port http: give a TCP port, 1-65535 \(leave it out for a free one\)\nusage: testbed watch LAB/);
		t.is((await testbed(["watch", "watch-two-nats", "--port", "70000"])).exitCode, 2);
		const badInterval = await testbed(["watch", "watch-two-nats", "--interval", "5"]);
		t.is(badInterval.exitCode, 2);
		t.regex(badInterval.stderr, /--interval 5: give milliseconds between samples, 100-60000/);
		const noLab = await testbed(["watch", "watch-nolab"]);
		t.is(noLab.exitCode, 1);
		t.regex(noLab.stderr, /^testbed: no lab named "watch-nolab" is up on this host; labs: .*watch-two-nats/);

		const watch = execa(process.execPath, ["bin/testbed.js", "watch", "watch-two-nats", "--interval", "300"], { reject: false, buffer: { stdout: true, stderr: true } });
		const url = await new Promise<string>((resolve, reject) => {
			let text = "";
			watch.stdout!.on("data", (chunk: Buffer) => {
				text += chunk.toString();
				const found = /watching lab "watch-two-nats" at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(text);
				if (found) resolve(found[1]);
			});
			void watch.then((result) => reject(new Error(`watch ended before printing its address: ${result.stderr}`)));
		});
		try {
			const port = new URL(url).port;
			const taken = await testbed(["watch", "watch-two-nats", "--port", port]);
			t.is(taken.exitCode, 1);
			t.regex(taken.stderr, new RegExp(`^testbed: port ${port} on 127\\.0\\.0\\.1 is in use .*give another --port, or leave it out for a free one`));

			if (!chromium) {
				const why = "watch's page not checked in a browser: Debian's chromium is not installed (make test installs it)";
				t.log(why);
				console.log(`  skipped: ${why}`);
			} else {
				const browser = await puppeteer.launch({ executablePath: chromium, headless: true, pipe: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
				try {
					const page = await browser.newPage();
					await page.goto(url);
					t.is(await page.title(), "testbed watch: watch-two-nats");
					await page.waitForSelector('body[data-state="live"]', { timeout: 30_000 });
					await page.waitForFunction(() => document.querySelectorAll("#nats section.nat").length === 2, { timeout: 30_000 });
					t.true(await page.$eval("#picture", (element) => Boolean(element.querySelector("svg")) && element.textContent!.includes("home1")), "the lab's picture");
					t.is(await page.$eval("#links", (element) => element.querySelectorAll("tbody tr").length), 5, "a row per link");

					const punch = await testbed(["punch", "watch-two-nats", "alice", "bob"]);
					t.is(punch.exitCode, 0, punch.stderr);
					// From the moment the student's punch returns: on the page within 2 s.
					const shown = await page
						.waitForFunction(
							() => {
								const events = document.getElementById("events")!.textContent!;
								const nats = document.getElementById("nats")!.textContent!;
								return /alice ↔ bob started/.test(events) && /alice ↔ bob connected: direct/.test(events) && /home1 new mapping 192\.168\.1\.2:\d+ → 198\.51\.100\.2:\d+ ↔ 198\.51\.100\.6:\d+/.test(events) && /198\.51\.100\.6:\d+/.test(nats);
							},
							{ timeout: 2000, polling: 50 },
						)
						.then(
							() => true,
							() => false,
						);
					t.true(shown, `the punch and its mappings on the page within 2 s; the page shows:\n${await page.$eval("#nats", (element) => (element as HTMLElement).innerText)}\n${await page.$eval("#events", (element) => (element as HTMLElement).innerText)}`);
					t.regex(await page.$eval("#links", (element) => element.textContent!), /alice:eth0\s*\d+ →/);
				} finally {
					// Ctrl-C while the page is open and the lab is being sampled.
					watch.kill("SIGINT");
					await browser.close();
				}
			}
		} finally {
			watch.kill("SIGINT");
		}
		const ended = await watch;
		t.is(ended.exitCode, 0, ended.stderr);
		t.notRegex(ended.stderr, /error/i);
		t.false(await answers(url), "the port is closed");
		const inodes = new Set(lab.nodes.map((node) => netnsInode(node.netns)).filter((inode): inode is number => inode !== null));
		t.deepEqual(pidsInNamespaces(inodes), [], "no process left in the lab's namespaces");
	});
});
