/* auth.c: placeholder until accounts land: everyone is anonymous. */
#include "common/compat.h"

#include "server/app.h"
#include "server/auth.h"
#include "server/http.h"

int auth_identify(struct app *app, struct http_request *req,
		  struct principal *who, struct err *err)
{
	memset(who, 0, sizeof(*who));
	if (http_request_header(req, "Authorization"))
		who->authenticated = true;
	return 0;
}

enum role auth_namespace_role(struct app *app, const struct principal *who,
			      const char *ns)
{
	return ROLE_NONE;
}

enum role auth_repo_role(struct app *app, const struct principal *who,
			 const struct repo_record *rec)
{
	return rec->private ? ROLE_NONE : ROLE_READ;
}

int auth_check_read(struct app *app, const struct principal *who,
		    const struct repo_record *rec, struct err *err)
{
	if (auth_repo_role(app, who, rec) == ROLE_NONE)
		return err_set(err, ERR_NOREPO, "Repository not found");
	return 0;
}

int auth_check_files(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err)
{
	return auth_check_read(app, who, rec, err);
}

int auth_check_write(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err)
{
	return err_set(err, ERR_FORBIDDEN, "writes are not enabled");
}

int auth_check_namespace_write(struct app *app, const struct principal *who,
			       const char *ns, struct err *err)
{
	return err_set(err, ERR_FORBIDDEN, "writes are not enabled");
}
