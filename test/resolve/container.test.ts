// A node's private directories, files and limits resolved: layers named, files placed in their
// innermost directory with placeholders replaced; what the host lacks found at load, with line:col.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { checkSource } from "../../src/load.ts";
import { parseSource } from "../../src/parse/source.ts";

const check = (text: string) => checkSource(parseSource("/tmp/box.yml", text));
const twoNodes = (alice: string) => `name: box\nnodes:\n  alice: ${alice}\n  bob: {}\nlinks:\n  - { endpoints: [alice:eth0, bob:eth0], subnet: 10.0.0.0/24 }\n`;

test("private directories are ordered parents first with their own layers; files go to the innermost one, placeholders replaced", (t) => {
	const { lab, problems } = check(twoNodes('{ private: [/etc/ssl, /tmp, /etc], files: { /etc/ssl/certs/me.pem: { text: "x", mode: "0600" }, /etc/peer.conf: "peer = ${bob}\\n" }, limits: { disk: 2M } }'));
	t.deepEqual(problems, []);
	const node = lab!.nodes.find((candidate) => candidate.name === "alice")!;
	t.deepEqual(node.private!.dirs.map((dir) => `${dir.path} ${dir.key}`), ["/tmp 0-tmp", "/etc 1-etc", "/etc/ssl 2-etc-ssl"]);
	t.deepEqual(node.private!.files.map((file) => [file.path, file.dir, file.relative, file.text, file.mode]), [
		["/etc/ssl/certs/me.pem", "/etc/ssl", "certs/me.pem", "x", 0o600],
		["/etc/peer.conf", "/etc", "peer.conf", "peer = 10.0.0.2\n", 0o644],
	]);
	t.is(node.private!.diskBytes, 2 * 1024 ** 2);
	t.is(node.limits, undefined, "`disk:` alone is no cgroup");
	t.is(lab!.nodes.find((candidate) => candidate.name === "bob")!.private, undefined);
});

test("a private directory missing on this host, one that is a file, and a `from:` that cannot be read: line:col and the fix", (t) => {
	const { problems } = check(twoNodes("{ private: [/nonexistent-tb-dir, /etc/hostname, /etc], files: { /etc/key: { from: no-such-file } } }"));
	t.deepEqual(
		problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message}`),
		[
			'BAD_PRIVATE 3:22 private directory "/nonexistent-tb-dir" does not exist on this host',
			'BAD_PRIVATE 3:43 private directory "/etc/hostname" is not a directory on this host',
			"BAD_FILE 3:74 file \"/etc/key\" is to be copied from /tmp/no-such-file, which does not exist",
		],
	);
	t.regex(problems[0].fix!, /mkdir -p \/nonexistent-tb-dir/);
});

test("symbolic links: a private directory through one (/var/run is /run) and a file below one in the host's layer are refused, naming the real path", (t) => {
	const root = mkdtempSync(join(tmpdir(), "tb-links-"));
	try {
		mkdirSync(join(root, "real/certs"), { recursive: true });
		symlinkSync(join(root, "real"), join(root, "link"));
		symlinkSync("real/certs", join(root, "real/current"));
		const { problems } = check(twoNodes(`{ private: [${root}/link, ${root}/real], files: { ${root}/real/current/me.pem: "x", ${root}/real/certs: "a directory" } }`));
		t.deepEqual(
			problems.map((problem) => `${problem.code} ${problem.message}`),
			[
				`BAD_PRIVATE private directory "${root}/link" is ${root}/real on this host (a symbolic link on the way)`,
				`BAD_FILE file "${root}/real/current/me.pem" cannot be placed: ${root}/real/current is a symbolic link on this host`,
				`BAD_FILE file "${root}/real/certs" cannot be placed: ${root}/real/certs is a directory on this host`,
			],
		);
	} finally {
		rmSync(root, { recursive: true, force: true });
	}
});
