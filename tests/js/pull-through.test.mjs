// @huggingface/hub (the JS client) against a Haven that pulls through
// from another Haven: the traffic of a snapshot download (file listing,
// then every file) on a cache that starts empty.
//
// Run by tests/integration/t8103-pull-through-js.sh; it needs:
//   HAVEN_URL          the pull-through server
//   HAVEN_REPO         a model repo of the upstream (main = HAVEN_MODEL_DIR)
//   HAVEN_MODEL_DIR    the source folder imported on main upstream
//   HAVEN_MAIN_SHA     the upstream commit of main
//   HAVEN_TMP          scratch folder for the cache
// Every downloaded byte is compared with the source files.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { downloadFile, downloadFileToCacheDir, listFiles, modelInfo } from "@huggingface/hub";

function env(name) {
	const v = process.env[name];
	if (!v) throw new Error(`${name} is not set`);
	return v;
}

const hubUrl = env("HAVEN_URL");
const repoName = env("HAVEN_REPO");
const repo = { type: "model", name: repoName };
const modelDir = env("HAVEN_MODEL_DIR");
const mainSha = env("HAVEN_MAIN_SHA");

async function filesOf(dir) {
	const out = [];
	async function walk(d) {
		for (const e of await readdir(d, { withFileTypes: true })) {
			const p = join(d, e.name);
			if (e.isDirectory()) await walk(p);
			else if (e.isFile()) out.push(relative(dir, p).split(sep).join("/"));
		}
	}
	await walk(dir);
	return out.sort();
}

function assertSameBytes(got, want, what) {
	assert.equal(got.length, want.length, `${what}: length`);
	assert.ok(Buffer.compare(got, want) === 0, `${what}: bytes differ`);
}

test("modelInfo of a repository the cache did not hold: the upstream's commit", async () => {
	const info = await modelInfo({ name: repoName, hubUrl, additionalFields: ["sha"] });
	assert.equal(info.sha, mainSha);
});

test("snapshot: listFiles, then downloadFileToCacheDir for every file", async () => {
	const want = await filesOf(modelDir);
	const listed = [];
	for await (const f of listFiles({ repo, hubUrl, recursive: true, revision: mainSha })) {
		if (f.type === "file" && f.path !== ".gitattributes") listed.push(f.path);
	}
	assert.deepEqual(listed.sort(), want);
	const cacheDir = await mkdtemp(join(env("HAVEN_TMP"), "hub-cache-"));
	await Promise.all(want.map(async (path) => {
		const p = await downloadFileToCacheDir({ repo, hubUrl, path, revision: mainSha, cacheDir });
		assert.ok(p.includes(mainSha), "snapshot folder named by the commit");
		assertSameBytes(await readFile(await realpath(p)), await readFile(join(modelDir, path)), path);
	}));
});

test("downloadFile: every file again, now from the cache, and a range", async () => {
	for (const path of await filesOf(modelDir)) {
		const blob = await downloadFile({ repo, hubUrl, path });
		assertSameBytes(Buffer.from(await blob.arrayBuffer()), await readFile(join(modelDir, path)), path);
	}
	const want = await readFile(join(modelDir, "extra/large.dat"));
	const blob = await downloadFile({ repo, hubUrl, path: "extra/large.dat" });
	const part = Buffer.from(await blob.slice(1000, 70000).arrayBuffer());
	assertSameBytes(part, want.subarray(1000, 70000), "range");
});
