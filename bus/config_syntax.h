/* The syntax pass of configuration files (private to bus/config_parse.c): JSON text to a cJSON
 * tree, with errors that name the line and column. */
#ifndef BUS_CONFIG_SYNTAX_H
#define BUS_CONFIG_SYNTAX_H

#include <stddef.h>

struct cJSON;

/* JSON text to a cJSON tree, after a lexical scan for what cJSON accepts or reports poorly
 * (comments, NUL bytes, unclosed strings, leading zeros, mismatched brackets). `source` names
 * the text in errors. On success *root is the caller's (cJSON_Delete); on error returns
 * SHMBUS_ECONFIG with "<source>:<line>:<col>: syntax error: ..." in err (an empty text gives
 * "<source>: $: empty file ..."), or SHMBUS_ENOMEM. */
int bus_config_syntax(const char *text, size_t len, const char *source, struct cJSON **root,
                      char *err, size_t errlen);

#endif
