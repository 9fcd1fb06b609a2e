#!/usr/bin/python3
"""huggingface_hub (the Python client) against a running Haven server.

Run by tests/integration/t6002-client-python.sh, twice:

    hf_client_check.py online    HF_ENDPOINT = the server
    hf_client_check.py offline   HF_HUB_OFFLINE=1, HF_ENDPOINT unreachable:
                                 everything must come from the cache that
                                 the online pass filled

huggingface_hub is imported from the source folder named by
$HAVEN_HF_HUB_SRC (a checkout's src/ folder); it is not vendored here. The
other inputs are environment variables: HAVEN_REPO, HAVEN_MODEL_DIR,
HAVEN_DEV_DIR, HAVEN_MAIN_SHA, HAVEN_DEV_SHA, HAVEN_DATASET,
HAVEN_DATASET_DIR, HF_HOME. Output: one "ok - ..." or "not ok - ..." line a
check, diagnostics as "# ..." lines; the exit status is 1 if a check failed.
"""

import os
import sys
import tempfile
import traceback

SRC = os.environ.get("HAVEN_HF_HUB_SRC", "")
if SRC:
    sys.path.insert(0, SRC)

failures = 0


def check(desc):
    """Decorator: run the function now and report it as one check."""

    def run(fn):
        global failures
        try:
            fn()
            print("ok - " + desc, flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported
            failures += 1
            print("not ok - " + desc, flush=True)
            for line in traceback.format_exc().splitlines()[-25:]:
                print("#   " + line, flush=True)
        return fn

    return run


def env(name):
    v = os.environ.get(name)
    if not v:
        raise SystemExit("%s is not set" % name)
    return v


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files_of(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    return sorted(out)


def folders_of(files):
    dirs = set()
    for f in files:
        parts = f.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def expect_raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except Exception as e:  # noqa: BLE001
        raise AssertionError("expected %s, got %s: %s" % (exc_type.__name__, type(e).__name__, e)) from e
    raise AssertionError("expected %s, nothing was raised" % exc_type.__name__)


REPO = env("HAVEN_REPO")
MODEL = env("HAVEN_MODEL_DIR")
DEV = env("HAVEN_DEV_DIR")
MAIN_SHA = env("HAVEN_MAIN_SHA")
DEV_SHA = env("HAVEN_DEV_SHA")
DATASET = os.environ.get("HAVEN_DATASET", "")
DATASET_DIR = os.environ.get("HAVEN_DATASET_DIR", "")
OWNER = REPO.split("/")[0]
LFS = {"model.safetensors", "extra/large.dat", "sub/weights.bin"}

import huggingface_hub  # noqa: E402
from huggingface_hub import (  # noqa: E402
    HfApi,
    HfFileSystem,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

api = HfApi()


def online():
    @check("huggingface_hub %s is imported from $HAVEN_HF_HUB_SRC" % huggingface_hub.__version__)
    def _():
        assert SRC, "HAVEN_HF_HUB_SRC is not set"
        here = os.path.realpath(huggingface_hub.__file__)
        assert here.startswith(os.path.realpath(SRC) + os.sep), here
        assert huggingface_hub.constants.ENDPOINT == os.environ["HF_ENDPOINT"].rstrip("/")

    @check("hf_hub_download by branch (main): bytes equal, refs/main holds the commit")
    def _():
        for f in ["config.json", "model.safetensors", "extra/large.dat", "docs/hello w\u00f6rld.txt", "README.md"]:
            p = hf_hub_download(REPO, f)
            assert read(p) == read(os.path.join(MODEL, f)), f
            assert ("/snapshots/%s/" % MAIN_SHA) in p, p
        cache = os.path.join(os.environ["HF_HOME"], "hub", "models--" + REPO.replace("/", "--"))
        assert read(os.path.join(cache, "refs", "main")).decode().strip() == MAIN_SHA

    @check("hf_hub_download by branch dev, tag v1.0, full sha and short sha")
    def _():
        for rev, src, sha in [("dev", DEV, DEV_SHA), ("v1.0", MODEL, MAIN_SHA), (MAIN_SHA, MODEL, MAIN_SHA),
                              (DEV_SHA, DEV, DEV_SHA), (MAIN_SHA[:7], MODEL, MAIN_SHA)]:
            p = hf_hub_download(REPO, "config.json", revision=rev)
            assert read(p) == read(os.path.join(src, "config.json")), rev
            assert ("/snapshots/%s/" % sha) in p, (rev, p)
        p = hf_hub_download(REPO, "DEV.md", revision="dev")
        assert read(p) == read(os.path.join(DEV, "DEV.md"))

    @check("hf_hub_download with subfolder, with an encoded branch, into local_dir")
    def _():
        p = hf_hub_download(REPO, "notes.txt", subfolder="sub/dir")
        assert read(p) == read(os.path.join(MODEL, "sub/dir/notes.txt"))
        p = hf_hub_download(REPO, "config.json", revision="feature/x")
        assert read(p) == read(os.path.join(MODEL, "config.json"))
        with tempfile.TemporaryDirectory(dir=os.environ["HF_HOME"]) as d:
            for f in ["config.json", "model.safetensors"]:
                p = hf_hub_download(REPO, f, local_dir=d)
                assert os.path.realpath(p) == os.path.realpath(os.path.join(d, f)), p
                assert read(p) == read(os.path.join(MODEL, f)), f

    @check("snapshot_download(allow_patterns=['*.json'])")
    def _():
        want = [f for f in files_of(MODEL) if f.endswith(".json")]
        # A fresh cache: exactly the JSON files.
        with tempfile.TemporaryDirectory(dir=os.environ["HF_HOME"]) as cache:
            d = snapshot_download(REPO, allow_patterns=["*.json"], cache_dir=cache)
            assert os.path.basename(d.rstrip("/")) == MAIN_SHA, d
            assert files_of(d) == want, (files_of(d), want)
            for f in want:
                assert read(os.path.join(d, f)) == read(os.path.join(MODEL, f)), f
        # The default cache, used again by the offline pass.
        d = snapshot_download(REPO, allow_patterns=["*.json"])
        assert os.path.basename(d.rstrip("/")) == MAIN_SHA, d
        for f in want:
            assert read(os.path.join(d, f)) == read(os.path.join(MODEL, f)), f
        assert not os.path.exists(os.path.join(d, "sub", "weights.bin"))

    @check("snapshot_download of dev: every file, byte for byte")
    def _():
        d = snapshot_download(REPO, revision="dev")
        assert os.path.basename(d.rstrip("/")) == DEV_SHA, d
        got = [f for f in files_of(d) if f != ".gitattributes"]
        assert got == files_of(DEV), (got, files_of(DEV))
        for f in got:
            assert read(os.path.join(d, f)) == read(os.path.join(DEV, f)), f

    @check("model_info: sha, siblings, dates; files_metadata=True")
    def _():
        info = api.model_info(REPO)
        assert info.id == REPO and info.sha == MAIN_SHA, (info.id, info.sha)
        names = {s.rfilename for s in info.siblings}
        assert set(files_of(MODEL)) <= names, names
        assert info.last_modified is not None and info.created_at is not None
        assert api.model_info(REPO, revision="dev").sha == DEV_SHA
        full = api.model_info(REPO, files_metadata=True)
        sib = {s.rfilename: s for s in full.siblings}
        for f in files_of(MODEL):
            assert sib[f].size == os.path.getsize(os.path.join(MODEL, f)), f
            assert (sib[f].lfs is not None) == (f in LFS), f
        import hashlib
        st = read(os.path.join(MODEL, "model.safetensors"))
        assert sib["model.safetensors"].lfs.sha256 == hashlib.sha256(st).hexdigest()

    @check("model_info: card data from the README front matter")
    def _():
        info = api.model_info(REPO)
        assert info.card_data is not None, "no cardData"
        assert info.card_data["license"] == "apache-2.0", info.card_data
        assert info.card_data["base_model"] == "haven-test/base", info.card_data
        assert "test" in info.tags, info.tags

    @check("list_models(author=..., search=..., limit=...)")
    def _():
        ids = [m.id for m in api.list_models(author=OWNER)]
        assert REPO in ids and all(i.startswith(OWNER + "/") for i in ids), ids
        assert REPO in [m.id for m in api.list_models(search=REPO.split("/")[1].lower())]
        assert list(api.list_models(author="no-such-owner-anywhere")) == []
        assert len(list(api.list_models(limit=1))) == 1

    @check("list_models(filter='test'): by a model card tag")
    def _():
        assert REPO in [m.id for m in api.list_models(filter="test")]

    @check("list_repo_tree: recursive and on a subfolder")
    def _():
        entries = list(api.list_repo_tree(REPO, recursive=True))
        files = sorted(e.path for e in entries if e.__class__.__name__ == "RepoFile")
        dirs = sorted(e.path for e in entries if e.__class__.__name__ == "RepoFolder")
        assert [f for f in files if f != ".gitattributes"] == files_of(MODEL), files
        assert dirs == folders_of(files_of(MODEL)), dirs
        sub = sorted(e.path for e in api.list_repo_tree(REPO, path_in_repo="sub"))
        assert sub == ["sub/dir", "sub/weights.bin"], sub
        deep = sorted(e.path for e in api.list_repo_tree(REPO, path_in_repo="sub/dir", revision="dev"))
        assert deep == ["sub/dir/notes.txt"], deep
        assert "DEV.md" in api.list_repo_files(REPO, revision="dev")

    @check("get_paths_info, list_repo_refs, list_repo_commits")
    def _():
        infos = {i.path: i for i in api.get_paths_info(REPO, ["config.json", "sub", "nope"], expand=True)}
        assert sorted(infos) == ["config.json", "sub"], infos
        assert infos["config.json"].last_commit.oid == MAIN_SHA
        refs = api.list_repo_refs(REPO)
        assert {b.name: b.target_commit for b in refs.branches}["dev"] == DEV_SHA
        assert {t.name: t.target_commit for t in refs.tags} == {"v1.0": MAIN_SHA}
        commits = api.list_repo_commits(REPO, revision="dev")
        assert [c.commit_id for c in commits][:2] == [DEV_SHA, MAIN_SHA]
        assert commits[-1].title == "initial commit" and commits[-1].authors == ["system"]

    @check("repo_exists, revision_exists, file_exists")
    def _():
        assert api.repo_exists(REPO) and not api.repo_exists(OWNER + "/no-such-model")
        assert api.revision_exists(REPO, "dev") and not api.revision_exists(REPO, "no-such-branch")
        assert api.file_exists(REPO, "config.json") and not api.file_exists(REPO, "no-such.json")

    @check("get_safetensors_metadata (range requests, clipped past EOF)")
    def _():
        meta = api.get_safetensors_metadata(REPO)
        assert meta.parameter_count == {"F32": 3072 * 1024}, meta.parameter_count

    @check("HfFileSystem: open, seek and read a range; ls; find; info")
    def _():
        fs = HfFileSystem()
        src = read(os.path.join(MODEL, "model.safetensors"))
        with fs.open(REPO + "/model.safetensors", "rb", block_size=1 << 20) as f:
            f.seek(3_000_000)
            assert f.read(100_000) == src[3_000_000:3_100_000]
            f.seek(len(src) - 10)
            assert f.read(100) == src[-10:]
            f.seek(5)
            assert f.read(3) == src[5:8]
        with fs.open(REPO + "@dev/config.json", "rb") as f:
            assert f.read() == read(os.path.join(DEV, "config.json"))
        names = sorted(p.split("/", 2)[2] for p in fs.ls(REPO + "/sub", detail=False))
        assert names == ["sub/dir", "sub/weights.bin"], names
        # find() lists the tree recursively (what glob uses underneath).
        found = sorted(p.split("/", 2)[2] for p in fs.find(REPO, detail=False))
        assert [f for f in found if f != ".gitattributes"] == files_of(MODEL), found
        assert fs.info(REPO + "/model.safetensors")["size"] == len(src)
        assert fs.exists(REPO + "/sub/dir") and not fs.exists(REPO + "/nope")

    @check("missing repo: RepositoryNotFoundError")
    def _():
        expect_raises(RepositoryNotFoundError, hf_hub_download, OWNER + "/no-such-model", "config.json")
        expect_raises(RepositoryNotFoundError, api.model_info, OWNER + "/no-such-model")
        expect_raises(RepositoryNotFoundError, lambda: list(api.list_repo_tree(OWNER + "/no-such-model")))

    @check("missing revision: RevisionNotFoundError")
    def _():
        expect_raises(RevisionNotFoundError, hf_hub_download, REPO, "config.json", revision="no-such-branch")
        expect_raises(RevisionNotFoundError, api.model_info, REPO, revision="no-such-branch")

    @check("missing file: RemoteEntryNotFoundError (an EntryNotFoundError), cached as .no_exist")
    def _():
        e = expect_raises(RemoteEntryNotFoundError, hf_hub_download, REPO, "no-such-file.json")
        assert isinstance(e, EntryNotFoundError)
        cache = os.path.join(os.environ["HF_HOME"], "hub", "models--" + REPO.replace("/", "--"))
        assert os.path.exists(os.path.join(cache, ".no_exist", MAIN_SHA, "no-such-file.json"))
        expect_raises(EntryNotFoundError, lambda: list(api.list_repo_tree(REPO, path_in_repo="no-such-dir")))

    if DATASET:
        @check("datasets: hf_hub_download and dataset_info with repo_type='dataset'")
        def _():
            for f in files_of(DATASET_DIR):
                p = hf_hub_download(DATASET, f, repo_type="dataset")
                assert read(p) == read(os.path.join(DATASET_DIR, f)), f
            assert api.dataset_info(DATASET).id == DATASET


def offline():
    @check("HF_HUB_OFFLINE=1 is in effect")
    def _():
        assert huggingface_hub.constants.HF_HUB_OFFLINE

    @check("offline: hf_hub_download of cached files by branch, tag and sha")
    def _():
        for rev, src, f in [("main", MODEL, "config.json"), ("main", MODEL, "model.safetensors"),
                            ("dev", DEV, "config.json"), ("v1.0", MODEL, "config.json"),
                            (MAIN_SHA, MODEL, "config.json"), (None, MODEL, "extra/large.dat")]:
            p = hf_hub_download(REPO, f, revision=rev)
            assert read(p) == read(os.path.join(src, f)), (rev, f)

    @check("offline: snapshot_download(allow_patterns=['*.json']) from the cache")
    def _():
        d = snapshot_download(REPO, allow_patterns=["*.json"])
        assert os.path.basename(d.rstrip("/")) == MAIN_SHA, d
        for f in ["config.json", "tokenizer.json"]:
            assert read(os.path.join(d, f)) == read(os.path.join(MODEL, f)), f

    @check("offline: a file never downloaded at main is not fetched")
    def _():
        expect_raises(LocalEntryNotFoundError, hf_hub_download, REPO, "sub/weights.bin")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "online"
    {"online": online, "offline": offline}[mode]()
    sys.exit(1 if failures else 0)
