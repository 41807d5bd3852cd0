/* SPDX-License-Identifier: MIT */
/* Appending formatted problems to a struct diag (config.h), shared by the spec parser and
 * the bundle manifest checks. */
#pragma once

#include "config.h"
#include "util.h"

/* Appends "fmt..." to d (d may be NULL: the problem is only counted by the caller).
 * Returns -EINVAL, or -ENOMEM when the message could not be stored. */
int diag_push(struct diag *d, const char *fmt, ...) _printf_(2, 3);
/* Logs every message as an error. */
void diag_log(const struct diag *d);
