/*
 * modelcard.c: see modelcard.h. libyaml loads the front matter into a
 * document; nodes are turned into JSON with YAML 1.1's plain-scalar rules
 * (true/false, null, integers and floats); quoted scalars stay strings.
 */
#include "common/compat.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <yaml.h>

#include "ingest/modelcard.h"

#define CARD_DEPTH_MAX 64

/* Finds the front matter: "---" on the first line up to the next line
 * that is exactly "---". */
static bool front_matter(const char *text, size_t len, const char **start,
			 size_t *yaml_len)
{
	const char *p, *end = text + len;

	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;	/* a UTF-8 byte order mark */
	}
	if ((size_t)(end - text) < 4 || memcmp(text, "---", 3) ||
	    (text[3] != '\n' && text[3] != '\r'))
		return false;
	p = memchr(text, '\n', (size_t)(end - text));
	*start = p + 1;
	for (p = *start; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n == 3 && !memcmp(p, "---", 3)) {
			*yaml_len = (size_t)(p - *start);
			return true;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return false;
}

static json_t *plain_scalar(const char *s, size_t len)
{
	char *end;
	double d;
	long long ll;

	if ((len == 4 && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))))
		return json_true();
	if ((len == 5 && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))))
		return json_false();
	if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return json_null();
	errno = 0;
	ll = strtoll(s, &end, 10);
	if (!*end && !errno && (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
		return json_integer(ll);
	errno = 0;
	d = strtod(s, &end);
	if (!*end && !errno && isfinite(d) && strpbrk(s, ".eE") &&
	    (s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
		return json_real(d);
	return json_stringn(s, len);
}

static json_t *node_to_json(yaml_document_t *doc, yaml_node_t *node, int depth)
{
	json_t *out = NULL;

	if (!node || depth > CARD_DEPTH_MAX)
		return NULL;
	switch (node->type) {
	case YAML_SCALAR_NODE: {
		const char *v = (const char *)node->data.scalar.value;
		size_t len = node->data.scalar.length;
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return plain_scalar(v, len);
		return json_stringn(v, len);
	}
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     out && i < node->data.sequence.items.top; i++) {
			json_t *v = node_to_json(doc, yaml_document_get_node(doc, *i),
						 depth + 1);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     out && p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			json_t *v;
			if (!k || k->type != YAML_SCALAR_NODE)
				continue;	/* JSON keys are strings only */
			v = node_to_json(doc, yaml_document_get_node(doc, p->value),
					 depth + 1);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_object_setn_new(out, (const char *)k->data.scalar.value,
					     k->data.scalar.length, v);
		}
		return out;
	default:
		return NULL;
	}
}

int modelcard_parse(json_t **out, const char *text, size_t len,
		    struct err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	const char *yaml;
	size_t ylen;
	yaml_node_t *root;
	int rc = 0;

	*out = NULL;
	if (!front_matter(text, len, &yaml, &ylen))
		return 0;
	if (!yaml_parser_initialize(&parser))
		return err_set(err, ERR_FAIL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, ylen);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = err_set(err, ERR_INVALID, "invalid YAML in the model card "
			     "at line %zu: %s", parser.problem_mark.line + 2,
			     parser.problem ? parser.problem : "syntax error");
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	if (root && root->type == YAML_MAPPING_NODE)
		*out = node_to_json(&doc, root, 0);
	else if (root)
		rc = err_set(err, ERR_INVALID, "the model card's front matter is "
			     "not a mapping");
	if (root && root->type == YAML_MAPPING_NODE && !*out)
		rc = err_set(err, ERR_INVALID, "the model card's front matter "
			     "is too deeply nested");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* Adds s to the array unless it is there already. */
static void add_tag(json_t *tags, const char *prefix, const char *s)
{
	char tag[512];
	size_t i;
	json_t *v;

	if (!s || !*s)
		return;
	snprintf(tag, sizeof(tag), "%s%s", prefix, s);
	json_array_foreach(tags, i, v) {
		if (!strcmp(json_string_value(v), tag))
			return;
	}
	json_array_append_new(tags, json_string(tag));
}

/* Adds each string of a value that is a string or a list of strings. */
static void add_each(json_t *tags, const char *prefix, const json_t *value)
{
	size_t i;
	json_t *v;

	if (json_is_string(value))
		add_tag(tags, prefix, json_string_value(value));
	json_array_foreach(value, i, v) {
		if (json_is_string(v))
			add_tag(tags, prefix, json_string_value(v));
	}
}

/* base_model_relation, or the Hub's inference when the card has none. */
static const char *base_relation(const json_t *card, const json_t *bases,
				 const struct modelcard_files *files)
{
	static const char *const known[] = { "adapter", "merge", "quantized",
					     "finetune" };
	const char *rel = json_string_value(json_object_get(card, "base_model_relation"));

	for (size_t i = 0; rel && i < ARRAY_SIZE(known); i++) {
		if (!strcmp(rel, known[i]))
			return known[i];
	}
	if (json_is_array(bases) && json_array_size(bases) >= 2)
		return "merge";
	if (files && files->has_adapter_config)
		return "adapter";
	if (files && files->has_gguf)
		return "quantized";
	return "finetune";
}

json_t *modelcard_tags(const json_t *card, const struct modelcard_files *files)
{
	json_t *tags = json_array();
	const json_t *bases;
	char prefix[64];

	if (!card || !tags)
		return tags;
	add_each(tags, "", json_object_get(card, "tags"));
	add_each(tags, "", json_object_get(card, "library_name"));
	add_each(tags, "", json_object_get(card, "language"));
	add_each(tags, "license:", json_object_get(card, "license"));
	add_each(tags, "dataset:", json_object_get(card, "datasets"));
	bases = json_object_get(card, "base_model");
	if (json_is_string(bases) || json_is_array(bases)) {
		add_each(tags, "base_model:", bases);
		snprintf(prefix, sizeof(prefix), "base_model:%s:",
			 base_relation(card, bases, files));
		add_each(tags, prefix, bases);
	}
	return tags;
}
