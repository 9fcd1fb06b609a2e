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

#endif
