/*
 * meta_keys.h: the LMDB key layout, written down once.
 *
 * One environment in <data>/meta/, with named databases. Every key starts
 * with a version byte (META_KEY_V1) so a later layout can live beside this
 * one during a migration. Values are a version byte followed by JSON text
 * (jansson), which keeps records readable with mdb_dump and lets fields be
 * added without a migration.
 *
 *   db "repos"     key  V1 <type> '/' <lower-case namespace/name>
 *                  val  V1 {"id","type","name","created","private","gated"}
 *                  The name keeps its original case; lookups are
 *                  case-insensitive because the key is lower-cased.
 *   db "repo_ids"  key  V1 <32-hex repo id>
 *                  val  V1 <the "repos" key of that repo>
 *   db "listings"  key  V1 <40-hex commit id>
 *                  val  V1 [[kind, path, git oid, size, lfs sha256|null,
 *                          pointer size], ...] sorted by path; kind is "f"
 *                  (file) or "d" (directory). Derived from git and safe to
 *                  drop: a missing listing is rebuilt from the commit.
 *   db "redirects" key  V1 <type> '/' <lower-case old namespace/name>
 *                  val  V1 <32-hex repo id>
 *                  Left by a move, so old URLs redirect to the current
 *                  name of that id; removed when the repository is.
 *
 * Accounts (storage/accounts.c). Names are compared case-insensitively,
 * so keys hold them lower-cased and values keep the original case:
 *   db "accounts"  key  V1 <lower name>
 *                  val  V1 {"type": "user"|"org", "name", "admin", "created"}
 *                  Users and organisations share this one namespace.
 *   db "members"   key  V1 <lower user> '/' <lower org>
 *                  val  V1 {"user", "org", "role"}   role: read|write|admin
 *                  Keyed by user first: "the orgs of a user" is one range.
 *   db "tokens"    key  V1 <64-hex sha256 of the token text>
 *                  val  V1 {"user", "role", "name", "created", "revoked"}
 *                  The token itself is never stored; its id is the first
 *                  16 hex digits of the hash.
 *   db "access"    key  V1 <32-hex repo id> '/' <lower user>
 *                  val  V1 {"user", "status", "time"}  status: pending|
 *                  accepted|rejected; keyed by repo id so a rename keeps it.
 *   db "lfs_claims" key V1 <32-hex repo id> '/' <64-hex sha256>
 *                  val  V1 {"time"}
 *                  The LFS objects a repository may name: ones uploaded
 *                  through it (their bytes were verified then), imported
 *                  into it, or already in its history. The blob store is
 *                  shared, so this is what keeps one repository's objects
 *                  out of another's commits and downloads.
 *
 * Usage (storage/stats.c):
 *   db "downloads" key  V1 <32-hex repo id> '/' <YYYY-MM-DD (UTC)>
 *                  val  V1 {"n": count}   downloads of that repo that day
 *                  key  V1 <32-hex repo id> '/' "total"
 *                  val  V1 {"n": count}   all-time total, so that
 *                  downloadsAllTime is one read. Keyed by repo id so a
 *                  rename keeps the history. Written in batches by the
 *                  server (server/download_count.c), never per request.
 *   db "likes"     key  V1 <32-hex repo id> '/' <lower user>
 *                  val  V1 {"user", "time"}   one like per user and repo
 *   db "user_likes" key V1 <lower user> '/' <32-hex repo id>
 *                  val  V1 {"time"}   the same likes keyed by user, so
 *                  "what a user liked" is one range. Both records are
 *                  written and removed in one transaction; deleting a
 *                  repository removes its counters and likes.
 *
 * Model lineage (storage/lineage.c), derived from the README card of each
 * model's default branch and rewritten whenever that branch moves:
 *   db "lineage_up"   key V1 <32-hex child repo id> '/' <lower base id>
 *                     val V1 {"base": "<as written>", "relation", "inferred"}
 *   db "lineage_down" key V1 <lower base id> '/' <32-hex child repo id>
 *                     val V1 {"relation", "inferred"}
 *                     The base is keyed by the current name of the model
 *                     Haven holds under that id (a moved base is
 *                     re-keyed) or, for a model it does not hold
 *                     ("external"), by the id as written, lower-cased. A
 *                     deleted child loses its edges; the edges of its
 *                     children stay, now external, re-keyed to
 *                     <lower base id> '#' <32-hex id of the deleted
 *                     model> so that a model created later under the
 *                     same name does not inherit them.
 *   db "card_errors"  key V1 <32-hex repo id>
 *                     val V1 {"error"}  why the card of the default branch
 *                     could not be read (it never blocks a commit).
 *   The git ref moves first (git is the source of truth); the edges follow
 *   it in the next transaction (import, API commit, post-receive hook).
 *
 * Mirrored and pulled-through repositories (storage/mirror_state.c):
 *   db "mirrors"      key V1 <32-hex repo id>
 *                     val V1 {"type", "name", "upstream", "mode":
 *                     "mirror"|"pull-through", "upstream_private",
 *                     "upstream_gated", "revisions": [], "include": [],
 *                     "exclude": [], "last_attempt", "last_success",
 *                     "status": "ok"|"running"|"failed", "error",
 *                     "bytes_total"}
 *                     Written after a sync publishes its refs; deleting
 *                     the repository removes it.
 *
 * Git refs, for read replicas (storage/repo_refs.c):
 *   db "git_refs"     key V1 <32-hex repo id>
 *                     val V1 {"refs/heads/main": "<40-hex>", ...} every
 *                     branch and tag, written after they moved. A replica
 *                     fetches a repository whose record changed.
 *
 * The change log (storage/changes.c, docs/replication.md):
 *   db "changes"      key <8-byte big-endian seq>
 *                     val <8-byte ms time> <4-byte op count> <ops>, one
 *                     entry per write transaction, in the same
 *                     transaction; every database but listings, changes
 *                     and replication. The newest 100,000 are kept,
 *                     none older than an hour.
 *   db "replication"  this node's own state, never logged: "log_id" (the
 *                     log's random id), and on a replica "primary_log_id"
 *                     and "applied" (the last seq applied).
 *
 * Git holds content, history and refs; nothing here points at a git object
 * or a blob that is not already durable.
 */
#ifndef HAVEN_META_KEYS_H
#define HAVEN_META_KEYS_H

#define META_KEY_V1 '\x01'
#define META_VAL_V1 '\x01'

#define META_DB_REPOS "repos"
#define META_DB_REPO_IDS "repo_ids"
#define META_DB_LISTINGS "listings"
#define META_DB_REDIRECTS "redirects"
#define META_DB_ACCOUNTS "accounts"
#define META_DB_MEMBERS "members"
#define META_DB_TOKENS "tokens"
#define META_DB_ACCESS "access"
#define META_DB_LFS_CLAIMS "lfs_claims"
#define META_DB_LINEAGE_UP "lineage_up"
#define META_DB_LINEAGE_DOWN "lineage_down"
#define META_DB_CARD_ERRORS "card_errors"
#define META_DB_DOWNLOADS "downloads"
#define META_DB_LIKES "likes"
#define META_DB_USER_LIKES "user_likes"
#define META_DB_MIRRORS "mirrors"
#define META_DB_GIT_REFS "git_refs"
#define META_DB_CHANGES "changes"
#define META_DB_REPLICATION "replication"

#endif
