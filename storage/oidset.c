/*
 * oidset.c: see oidset.h. An oid's first bytes are already uniformly
 * distributed, so they serve as the hash.
 */
#include "common/compat.h"

#include "storage/oidset.h"

static size_t oid_hash(const git_oid *oid)
{
	size_t h;

	memcpy(&h, oid->id, sizeof(h));
	return h;
}

static int oidset_grow(struct oidset *s)
{
	struct oidset bigger = { 0 };

	bigger.cap = s->cap ? s->cap * 2 : 1024;
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	bigger.used = calloc(bigger.cap, 1);
	if (!bigger.slots || !bigger.used) {
		free(bigger.slots);
		free(bigger.used);
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (s->used[i])
			oidset_add(&bigger, &s->slots[i]);
	}
	free(s->slots);
	free(s->used);
	*s = bigger;
	return 0;
}

int oidset_add(struct oidset *s, const git_oid *oid)
{
	size_t i;

	if ((s->count + 1) * 2 > s->cap && oidset_grow(s) < 0)
		return -1;
	for (i = oid_hash(oid) & (s->cap - 1); s->used[i];
	     i = (i + 1) & (s->cap - 1)) {
		if (git_oid_equal(&s->slots[i], oid))
			return 0;
	}
	s->used[i] = 1;
	git_oid_cpy(&s->slots[i], oid);
	s->count++;
	return 1;
}

void oidset_release(struct oidset *s)
{
	free(s->slots);
	free(s->used);
	memset(s, 0, sizeof(*s));
}
