// @huggingface/hub (the JS client) writing to a running Haven server:
// createRepo, uploadFiles (small files inline, a large one through LFS),
// deleteFile, listCommits, createBranch and deleteBranch, a pull request,
// deleteRepo. Every byte written is read back and compared.
//
// Run by tests/integration/t6003-client-js-upload.sh (`node
// hub-upload.test.mjs`; it uses node:test); it needs:
//   HAVEN_URL     the server, e.g. http://127.0.0.1:41234
//   HAVEN_TOKEN   a write token of HAVEN_USER
//   HAVEN_USER    the token's user (the repos are made in its namespace)
//   HAVEN_LARGE   bytes of the large file (default 12 MiB: above the
//                 10 MiB line, so the server asks for LFS)
// The LFS tests are skipped when the server has no LFS batch endpoint.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
	HubApiError,
	commit,
	createBranch,
	createRepo,
	deleteBranch,
	deleteFile,
	deleteRepo,
	downloadFile,
	listCommits,
	listFiles,
	repoExists,
	uploadFiles,
} from "@huggingface/hub";

function env(name) {
	const v = process.env[name];
	if (!v) throw new Error(`${name} is not set`);
	return v;
}

const hubUrl = env("HAVEN_URL");
const accessToken = env("HAVEN_TOKEN");
const user = env("HAVEN_USER");
const largeSize = Number(process.env.HAVEN_LARGE || 12 * 1024 * 1024);
const name = `${user}/js-upload`;
const repo = { type: "model", name };
const common = { hubUrl, accessToken, repo };

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function collect(gen) {
	const out = [];
	for await (const x of gen) out.push(x);
	return out;
}

async function download(path, revision) {
	const blob = await downloadFile({ ...common, path, revision });
	assert.ok(blob, `${path} exists`);
	return Buffer.from(await blob.arrayBuffer());
}

async function paths(revision) {
	const files = await collect(listFiles({ ...common, recursive: true, revision }));
	return files.filter((f) => f.type === "file").map((f) => f.path).sort();
}

/* Whether the server speaks the LFS batch API at all. */
async function lfsAvailable() {
	const res = await fetch(`${hubUrl}/${name}.git/info/lfs/objects/batch`, {
		method: "POST",
		headers: {
			Authorization: `Bearer ${accessToken}`,
			Accept: "application/vnd.git-lfs+json",
			"Content-Type": "application/vnd.git-lfs+json",
		},
		body: JSON.stringify({ operation: "download", objects: [] }),
	});
	await res.arrayBuffer();
	return res.status !== 404 && res.status !== 501;
}

const small = {
	"a.txt": Buffer.from("hello from js\n"),
	"dir/b.json": Buffer.from('{"b": 1}\n'),
	"dir/sub/c.md": Buffer.from("# c\n"),
};

test("createRepo: the url is on the server, a second time is 409", async () => {
	const out = await createRepo({ hubUrl, accessToken, repo });
	assert.equal(out.repoUrl, `${hubUrl}/${name}`);
	assert.match(out.id, /^[0-9a-f]{32}$/);
	await assert.rejects(createRepo({ hubUrl, accessToken, repo }), (e) => {
		assert.ok(e instanceof HubApiError);
		assert.equal(e.statusCode, 409);
		return true;
	});
});

test("uploadFiles: small files are committed inline and read back", async () => {
	const out = await uploadFiles({
		...common,
		files: Object.entries(small).map(([path, content]) => ({ path, content: new Blob([content]) })),
		commitTitle: "Small files from JS",
	});
	assert.match(out.commit.oid, /^[0-9a-f]{40}$/);
	assert.equal(out.commit.url, `${hubUrl}/${name}/commit/${out.commit.oid}`);
	assert.deepEqual(await paths(), [".gitattributes", ...Object.keys(small)].sort());
	for (const [path, content] of Object.entries(small)) {
		assert.ok(Buffer.compare(await download(path), content) === 0, path);
	}
});

test("uploadFiles: a large file goes through LFS (multipart when offered)", async (t) => {
	if (!(await lfsAvailable())) {
		t.skip("the server has no LFS batch endpoint");
		return;
	}
	const big = randomBytes(largeSize);
	const tiny = randomBytes(1000);
	await uploadFiles({
		...common,
		files: [
			{ path: "weights/large.dat", content: new Blob([big]) },
			{ path: "tiny.bin", content: new Blob([tiny]) },
		],
		commitTitle: "Large file from JS",
	});
	const files = await collect(listFiles({ ...common, recursive: true, path: "weights" }));
	const large = files.find((f) => f.path === "weights/large.dat");
	assert.ok(large, "weights/large.dat is listed");
	assert.equal(large.size, big.length);
	assert.equal(large.lfs?.oid, sha256(big), "listed as an LFS file");
	assert.equal(sha256(await download("weights/large.dat")), sha256(big));
	assert.equal(sha256(await download("tiny.bin")), sha256(tiny));
	const attrs = (await download(".gitattributes")).toString();
	assert.match(attrs, /^weights\/large\.dat filter=lfs diff=lfs merge=lfs -text$/m);
});

test("deleteFile: the file is gone from the next commit", async () => {
	await deleteFile({ ...common, path: "dir/b.json" });
	const now = await paths();
	assert.ok(!now.includes("dir/b.json"));
	assert.ok(now.includes("dir/sub/c.md"));
});

test("listCommits: newest first, down to the initial commit", async () => {
	const commits = await collect(listCommits({ ...common }));
	const titles = commits.map((c) => c.title);
	assert.equal(titles[0], "Delete dir/b.json");
	assert.ok(titles.includes("Small files from JS"));
	assert.equal(titles.at(-1), "initial commit");
	for (const c of commits) {
		assert.match(c.oid, /^[0-9a-f]{40}$/);
		assert.ok(!Number.isNaN(c.date.getTime()));
	}
	assert.equal(commits[0].authors[0].username, user);
});

test("createBranch / deleteBranch, and a commit on the branch", async () => {
	await createBranch({ ...common, branch: "js-dev" });
	await assert.rejects(createBranch({ ...common, branch: "js-dev" }), (e) => {
		assert.ok(e instanceof HubApiError);
		assert.equal(e.statusCode, 409);
		return true;
	});
	await uploadFiles({
		...common,
		branch: "js-dev",
		files: [{ path: "dev.txt", content: new Blob(["dev\n"]) }],
	});
	assert.ok((await paths("js-dev")).includes("dev.txt"));
	assert.ok(!(await paths()).includes("dev.txt"), "main is untouched");
	await createBranch({ ...common, branch: "js-empty", empty: true });
	assert.deepEqual(await paths("js-empty"), []);
	await deleteBranch({ ...common, branch: "js-dev" });
	await deleteBranch({ ...common, branch: "js-empty" });
	await assert.rejects(deleteBranch({ ...common, branch: "js-dev" }), (e) => {
		assert.ok(e instanceof HubApiError);
		assert.equal(e.statusCode, 404);
		return true;
	});
});

test("commit with isPullRequest: refs/pr/1 and its pullRequestUrl", async () => {
	const out = await commit({
		...common,
		title: "Proposed change",
		isPullRequest: true,
		operations: [{ operation: "addOrUpdate", path: "pr.txt", content: new Blob(["pr\n"]) }],
	});
	assert.equal(out.pullRequestUrl, `${hubUrl}/${name}/discussions/1`);
	assert.ok((await paths("refs/pr/1")).includes("pr.txt"));
	assert.ok(!(await paths()).includes("pr.txt"));
});

test("deleteRepo: the repo no longer exists", async () => {
	await deleteRepo({ hubUrl, accessToken, repo });
	assert.equal(await repoExists({ hubUrl, accessToken, repo }), false);
});
