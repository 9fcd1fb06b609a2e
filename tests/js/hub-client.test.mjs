// @huggingface/hub (the JS client) against a running Haven server.
//
// Run by tests/integration/t6001-client-js.sh (`node hub-client.test.mjs`,
// or `node --test`: it uses node:test); it needs:
//   HAVEN_URL          the server, e.g. http://127.0.0.1:41234
//   HAVEN_REPO         the model repo (main = HAVEN_MODEL_DIR, dev = HAVEN_DEV_DIR)
//   HAVEN_MODEL_DIR    the source folder imported on main (tag v1.0)
//   HAVEN_DEV_DIR      the source folder imported on branch dev
//   HAVEN_MAIN_SHA, HAVEN_DEV_SHA   the commits of main and dev
//   HAVEN_DATASET      a dataset repo holding HAVEN_DATASET_DIR on main
//   HAVEN_DATASET_DIR
// Every downloaded byte is compared with the source files.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import {
	HubApiError,
	countCommits,
	datasetInfo,
	downloadFile,
	downloadFileToCacheDir,
	fileDownloadInfo,
	fileExists,
	listCommits,
	listFiles,
	listModels,
	modelInfo,
	repoExists,
} from "@huggingface/hub";

function env(name) {
	const v = process.env[name];
	if (!v) throw new Error(`${name} is not set`);
	return v;
}

const hubUrl = env("HAVEN_URL");
const repoName = env("HAVEN_REPO");
const repo = { type: "model", name: repoName };
const modelDir = env("HAVEN_MODEL_DIR");
const devDir = env("HAVEN_DEV_DIR");
const mainSha = env("HAVEN_MAIN_SHA");
const devSha = env("HAVEN_DEV_SHA");
const owner = repoName.split("/")[0];

/** Every file below dir, as sorted repo-relative paths with "/". */
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

/** The folders that hold files, as the tree API lists them. */
function foldersOf(files) {
	const dirs = new Set();
	for (const f of files) {
		const parts = f.split("/");
		for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
	}
	return [...dirs].sort();
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const gitBlobSha1 = (buf) =>
	createHash("sha1").update(`blob ${buf.length}\0`).update(buf).digest("hex");
const lfsPointer = (buf) =>
	`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(buf)}\nsize ${buf.length}\n`;

async function collect(gen) {
	const out = [];
	for await (const x of gen) out.push(x);
	return out;
}

function assertSameBytes(got, want, what) {
	assert.equal(got.length, want.length, `${what}: length`);
	assert.ok(Buffer.compare(got, want) === 0, `${what}: bytes differ`);
}

test("modelInfo: default revision (HEAD)", async () => {
	const info = await modelInfo({ name: repoName, hubUrl, additionalFields: ["sha", "filePaths"] });
	assert.equal(info.name, repoName);
	assert.equal(typeof info.id, "string");
	assert.ok(info.id.length > 0, "_id must be present");
	assert.equal(info.private, false);
	assert.equal(info.gated, false);
	assert.equal(info.sha, mainSha);
	assert.ok(!Number.isNaN(info.updatedAt.getTime()), "lastModified must parse");
	const files = await filesOf(modelDir);
	for (const f of files) assert.ok(info.filePaths.includes(f), `filePaths lacks ${f}`);
});

test("modelInfo: cardData and tags from the model card", async () => {
	const info = await modelInfo({ name: repoName, hubUrl, additionalFields: ["cardData", "tags"] });
	assert.ok(info.cardData, "cardData is present");
	assert.equal(info.cardData.license, "apache-2.0");
	assert.equal(info.cardData.base_model, "haven-test/base");
	assert.ok(info.tags.includes("test"));
});

test("modelInfo: branch, tag, sha and an encoded branch name", async () => {
	const cases = [
		["main", mainSha],
		["dev", devSha],
		["v1.0", mainSha],
		[mainSha, mainSha],
		[devSha, devSha],
		["feature/x", mainSha],
	];
	for (const [revision, sha] of cases) {
		const info = await modelInfo({ name: repoName, hubUrl, revision, additionalFields: ["sha"] });
		assert.equal(info.sha, sha, `revision ${revision}`);
		assert.equal(info.name, repoName);
	}
});

test("modelInfo: a missing repo and a missing revision throw HubApiError", async () => {
	await assert.rejects(modelInfo({ name: `${owner}/no-such-model`, hubUrl }), (e) => {
		assert.ok(e instanceof HubApiError);
		assert.ok([401, 404].includes(e.statusCode), `status ${e.statusCode}`);
		assert.ok(e.requestId, "X-Request-Id is read into requestId");
		return true;
	});
	await assert.rejects(modelInfo({ name: repoName, hubUrl, revision: "no-such-branch" }), (e) => {
		assert.ok(e instanceof HubApiError);
		assert.equal(e.statusCode, 404);
		assert.match(e.message, /Invalid rev id/);
		return true;
	});
});

test("repoExists and fileExists", async () => {
	assert.equal(await repoExists({ repo, hubUrl }), true);
	assert.equal(await repoExists({ repo: { type: "model", name: `${owner}/no-such-model` }, hubUrl }), false);
	assert.equal(await fileExists({ repo, hubUrl, path: "config.json" }), true);
	assert.equal(await fileExists({ repo, hubUrl, path: "no-such-file.json" }), false);
	assert.equal(await fileExists({ repo, hubUrl, path: "DEV.md", revision: "dev" }), true);
});

test("listModels: by owner and by search query", async () => {
	const byOwner = await collect(listModels({ hubUrl, search: { owner }, additionalFields: ["sha"] }));
	const mine = byOwner.find((m) => m.name === repoName);
	assert.ok(mine, `owner=${owner} lists ${repoName}`);
	assert.equal(mine.sha, mainSha);
	assert.ok(byOwner.every((m) => m.name.startsWith(`${owner}/`)));
	assert.ok(typeof mine.id === "string" && mine.id.length > 0, "_id is mapped to id");

	const byQuery = await collect(listModels({ hubUrl, search: { query: repoName.split("/")[1].toLowerCase() } }));
	assert.ok(byQuery.some((m) => m.name === repoName), "search query finds the repo");

	const none = await collect(listModels({ hubUrl, search: { owner: "no-such-owner-anywhere" } }));
	assert.deepEqual(none, []);

	const limited = await collect(listModels({ hubUrl, limit: 1 }));
	assert.equal(limited.length, 1);
});

test("listModels: follows Link pagination (limit above the page size)", async () => {
	const all = await collect(listModels({ hubUrl, search: { owner } }));
	const paged = await collect(listModels({ hubUrl, search: { owner }, limit: all.length + 10 }));
	assert.deepEqual(paged.map((m) => m.name).sort(), all.map((m) => m.name).sort());
});

test("listFiles recursive: every file and folder, oids and LFS info", async () => {
	const entries = await collect(listFiles({ repo, hubUrl, recursive: true }));
	const files = await filesOf(modelDir);
	const gotFiles = entries.filter((e) => e.type === "file").map((e) => e.path).sort();
	const gotDirs = entries.filter((e) => e.type === "directory").map((e) => e.path).sort();
	assert.deepEqual(gotFiles.filter((p) => p !== ".gitattributes"), files);
	assert.ok(gotFiles.includes(".gitattributes"));
	assert.deepEqual(gotDirs, foldersOf(files));
	for (const e of entries.filter((x) => x.type === "file" && x.path !== ".gitattributes")) {
		const buf = await readFile(join(modelDir, e.path));
		assert.equal(e.size, buf.length, `size of ${e.path}`);
		assert.equal(e.xetHash, undefined, "no xetHash");
		if (e.lfs) {
			assert.equal(e.lfs.oid, sha256(buf), `lfs.oid of ${e.path}`);
			assert.equal(e.lfs.size, buf.length);
			assert.equal(e.lfs.pointerSize, Buffer.byteLength(lfsPointer(buf)));
			assert.equal(e.oid, gitBlobSha1(Buffer.from(lfsPointer(buf))), `pointer oid of ${e.path}`);
		} else {
			assert.equal(e.oid, gitBlobSha1(buf), `oid of ${e.path}`);
		}
	}
	const lfsPaths = entries.filter((e) => e.lfs).map((e) => e.path).sort();
	assert.deepEqual(lfsPaths, ["extra/large.dat", "model.safetensors", "sub/weights.bin"]);
});

test("listFiles on a subpath, recursive and not", async () => {
	const flat = await collect(listFiles({ repo, hubUrl, path: "sub" }));
	assert.deepEqual(flat.map((e) => `${e.type} ${e.path}`).sort(), ["directory sub/dir", "file sub/weights.bin"]);
	const deep = await collect(listFiles({ repo, hubUrl, path: "sub", recursive: true }));
	assert.deepEqual(deep.map((e) => e.path).sort(), ["sub/dir", "sub/dir/notes.txt", "sub/weights.bin"]);
});

test("listFiles on dev with expand: lastCommit", async () => {
	const entries = await collect(listFiles({ repo, hubUrl, revision: "dev", expand: true }));
	const dev = entries.find((e) => e.path === "DEV.md");
	assert.ok(dev, "DEV.md is on dev");
	assert.equal(dev.lastCommit.id, devSha);
	assert.equal(dev.lastCommit.title, "Dev changes");
	const readme = entries.find((e) => e.path === "README.md");
	assert.equal(readme.lastCommit.id, mainSha);
});

test("fileDownloadInfo: size and etag (sha1 for git files, sha256 for LFS)", async () => {
	for (const path of await filesOf(modelDir)) {
		const buf = await readFile(join(modelDir, path));
		const info = await fileDownloadInfo({ repo, hubUrl, path });
		assert.ok(info, `info for ${path}`);
		assert.equal(info.size, buf.length, `size of ${path}`);
		assert.equal(info.xet, undefined, "no Xet");
		const etag = info.etag.replace(/^W\//, "").replace(/"/g, "");
		const lfs = ["extra/large.dat", "model.safetensors", "sub/weights.bin"].includes(path);
		assert.equal(etag, lfs ? sha256(buf) : gitBlobSha1(buf), `etag of ${path}`);
	}
	assert.equal(await fileDownloadInfo({ repo, hubUrl, path: "no-such-file.json" }), null);
	const raw = await fileDownloadInfo({ repo, hubUrl, path: "model.safetensors", raw: true });
	const buf = await readFile(join(modelDir, "model.safetensors"));
	assert.equal(raw.size, Buffer.byteLength(lfsPointer(buf)));
});

test("downloadFile: every file of main and of dev, byte for byte", async () => {
	for (const [revision, dir] of [["main", modelDir], ["dev", devDir], ["v1.0", modelDir], [mainSha, modelDir]]) {
		for (const path of await filesOf(dir)) {
			const blob = await downloadFile({ repo, hubUrl, path, revision });
			assert.ok(blob, `${revision}:${path}`);
			const got = Buffer.from(await blob.arrayBuffer());
			assertSameBytes(got, await readFile(join(dir, path)), `${revision}:${path}`);
		}
	}
});

test("downloadFile with ranges: blob.slice(a, b)", async () => {
	for (const path of ["model.safetensors", "extra/large.dat", "tokenizer.json"]) {
		const want = await readFile(join(modelDir, path));
		const blob = await downloadFile({ repo, hubUrl, path });
		assert.equal(blob.size, want.length);
		const n = want.length;
		const ranges = [
			[0, 1],
			[0, 8],
			[8, 8 + 100],
			[1000, 5000],
			[n - 10, n],
			[Math.floor(n / 3), Math.floor(n / 3) + 1048576],
			[n - 1, n],
			[0, n],
		];
		for (const [a, b] of ranges) {
			const part = Buffer.from(await blob.slice(a, b).arrayBuffer());
			assertSameBytes(part, want.subarray(a, Math.min(b, n)), `${path} [${a}, ${b})`);
		}
		const nested = Buffer.from(await blob.slice(100, 200000).slice(50, 150).arrayBuffer());
		assertSameBytes(nested, want.subarray(150, 250), `${path} nested slice`);
	}
});

test("downloadFile: the safetensors header through ranges", async () => {
	const blob = await downloadFile({ repo, hubUrl, path: "model.safetensors" });
	const len = Number(Buffer.from(await blob.slice(0, 8).arrayBuffer()).readBigUInt64LE(0));
	const header = JSON.parse(Buffer.from(await blob.slice(8, 8 + len).arrayBuffer()).toString("utf8"));
	assert.deepEqual(header["model.weight"].shape, [3072, 1024]);
});

test("downloadFile raw: the LFS pointer", async () => {
	const blob = await downloadFile({ repo, hubUrl, path: "model.safetensors", raw: true });
	const want = lfsPointer(await readFile(join(modelDir, "model.safetensors")));
	assert.equal(await blob.text(), want);
});

test("downloadFile: a missing file is null, a missing revision throws", async () => {
	assert.equal(await downloadFile({ repo, hubUrl, path: "no-such-file.json" }), null);
	await assert.rejects(downloadFile({ repo, hubUrl, path: "config.json", revision: "no-such-branch" }), HubApiError);
});

test("downloadFileToCacheDir (paths-info with a JSON body)", async () => {
	const cacheDir = await mkdtemp(join(process.env.HAVEN_TMP || tmpdir(), "hub-cache-"));
	for (const path of ["config.json", "model.safetensors", "sub/dir/notes.txt"]) {
		const p = await downloadFileToCacheDir({ repo, hubUrl, path, cacheDir });
		assertSameBytes(await readFile(await realpath(p)), await readFile(join(modelDir, path)), path);
	}
	const p = await downloadFileToCacheDir({ repo, hubUrl, path: "config.json", revision: devSha, cacheDir });
	assert.ok(p.includes(devSha), "snapshot folder named by the commit");
	assertSameBytes(await readFile(p), await readFile(join(devDir, "config.json")), "dev config.json");
});

test("listCommits and countCommits", async () => {
	const commits = await collect(listCommits({ repo, hubUrl, revision: "dev", batchSize: 1 }));
	assert.deepEqual(commits.map((c) => c.oid).slice(0, 2), [devSha, mainSha]);
	const last = commits[commits.length - 1];
	assert.equal(last.title, "initial commit");
	assert.equal(last.authors[0].username, "system");
	assert.equal(await countCommits({ repo, hubUrl, revision: "dev" }), commits.length);
});

test("datasets: datasetInfo and downloadFile", { skip: !process.env.HAVEN_DATASET }, async () => {
	const name = process.env.HAVEN_DATASET;
	const dir = env("HAVEN_DATASET_DIR");
	const info = await datasetInfo({ name, hubUrl, additionalFields: ["sha"] });
	assert.equal(info.name, name);
	for (const path of await filesOf(dir)) {
		const blob = await downloadFile({ repo: { type: "dataset", name }, hubUrl, path });
		assertSameBytes(Buffer.from(await blob.arrayBuffer()), await readFile(join(dir, path)), path);
	}
});
