/*
 * card_lineage.h: rebuilds a model's lineage edges (storage/lineage.h)
 * from the README card of its default branch. Called after every change
 * of that branch: import, API commit, git push (post-receive hook).
 */
#ifndef HAVEN_CARD_LINEAGE_H
#define HAVEN_CARD_LINEAGE_H

#include <jansson.h>

#include "common/err.h"
#include "ingest/modelcard.h"
#include "storage/lineage.h"
#include "storage/store.h"

/* The edges a card declares: base_model (one id or a list) with
 * base_model_relation, or the relation inferred from the files (marked
 * inferred). *out is malloc'd (NULL when n is 0). */
int card_lineage_edges(const json_t *card, const struct modelcard_files *files,
		       struct lineage_edge **out, size_t *n);

/* Reads the default branch of rec (a model; other types are a no-op) and
 * replaces its edges in one write transaction. A malformed card is not an
 * error: its edges are removed and the reason recorded. */
int card_lineage_sync(struct store *store, const struct repo_record *rec,
		      struct err *err);

#endif
