/*
 * oidset.h: a set of git oids (open addressing, grows by doubling), for
 * walks that must visit each tree or commit once.
 */
#ifndef HAVEN_OIDSET_H
#define HAVEN_OIDSET_H

#include <stddef.h>
#include <git2.h>

struct oidset {
	git_oid *slots;
	unsigned char *used;
	size_t cap, count;
};

/* 1 when added, 0 when already present, -1 when out of memory. A zeroed
 * struct is an empty set. */
int oidset_add(struct oidset *s, const git_oid *oid);

/* Frees the slots; the set is empty (and usable) again. */
void oidset_release(struct oidset *s);

#endif
