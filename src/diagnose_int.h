/* Private to src/diagnose*.c: the playbook's small expression language.
 *
 *   expr  := sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum ]
 *   sum   := term { ("+" | "-") term }
 *   term  := unary { ("*" | "/") unary }
 *   unary := "-" unary | atom
 *   atom  := NUMBER [unit] | NAME | NAME "(" expr { "," expr } ")" | "(" expr ")"
 *
 * Units on numbers: ms, s, m, h, d (seconds) and % (a ratio: 5% = 0.05).
 * Functions: max, min (1..8 arguments), ceil, floor, round, abs, has(NAME).
 * An unknown NAME is NaN ("unknown"); NaN propagates through arithmetic
 * and comparisons; has() is 1 or 0. A condition holds when its value is a
 * number other than 0.
 */
#ifndef OPSBOT_DIAGNOSE_INT_H
#define OPSBOT_DIAGNOSE_INT_H

#include <stdbool.h>
#include <stddef.h>

struct dx_expr;

/* Compiles src. Returns NULL with why ("unexpected ')' at 7"). */
struct dx_expr *dx_expr_parse(const char *src, char *why, size_t whylen);
void dx_expr_free(struct dx_expr *e);

/* The names an expression uses, one call each (for load-time checks). */
typedef void (*dx_name_fn)(void *data, const char *name);
void dx_expr_names(const struct dx_expr *e, dx_name_fn fn, void *data);

/* A name's value: NaN when unknown. */
typedef double (*dx_lookup_fn)(void *data, const char *name);
double dx_expr_eval(const struct dx_expr *e, dx_lookup_fn fn, void *data);

#endif
