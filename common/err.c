/* err.c: the error-detail struct; see err.h. */
#include "common/compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

int err_set(struct err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void err_clear(struct err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *err_code_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_NOTFOUND: return "not found";
	case ERR_EXISTS: return "exists";
	case ERR_INVALID: return "invalid";
	case ERR_TOOBIG: return "too big";
	case ERR_CONFLICT: return "conflict";
	case ERR_AUTH: return "unauthorized";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_NOREPO: return "repository not found";
	case ERR_NOREV: return "revision not found";
	case ERR_NOENTRY: return "entry not found";
	case ERR_RANGE: return "range not satisfiable";
	case ERR_CORRUPT: return "corrupt";
	case ERR_GATED: return "gated";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_MOVED: return "moved";
	case ERR_UPSTREAM: return "upstream failed";
	case ERR_TIMEOUT: return "upstream timed out";
	default: return "failure";
	}
}
