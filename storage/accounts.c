/* accounts.c: placeholder. */
#include "common/compat.h"

#include "storage/accounts.h"

enum role role_parse(const char *name)
{
	if (!strcmp(name, "read"))
		return ROLE_READ;
	if (!strcmp(name, "write"))
		return ROLE_WRITE;
	if (!strcmp(name, "admin"))
		return ROLE_ADMIN;
	return ROLE_NONE;
}
